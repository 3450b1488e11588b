//! actix-web 4 serving the TechEmpower database endpoints (/db,
//! /queries?q=N, /fortunes, /updates?q=N) from Postgres.
//! Usage: peer-actix-db --port P --threads N --database-url URL [--pool C]
//!
//! Each actix worker is a single-threaded runtime, so each keeps its own pool
//! (C / N connections, opened on that worker): no connection is shared across
//! threads, as in TechEmpower's actix entries.

use actix_web::http::header::{HeaderValue, CONTENT_TYPE, SERVER};
use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use clap::Parser;
use db_peers::{
    fortunes_page, pool, query_count, query_param, random_world, random_worlds, update_worlds,
    Options,
};
use deadpool_postgres::{Pool, PoolError};
use serde::Serialize;

fn respond(content_type: &'static str, body: String) -> HttpResponse {
    let mut response = HttpResponse::with_body(StatusCode::OK, body);
    let headers = response.headers_mut();
    headers.insert(SERVER, HeaderValue::from_static("A"));
    headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response.map_into_boxed_body()
}

fn json<T: Serialize>(result: Result<T, PoolError>) -> HttpResponse {
    match result {
        Ok(value) => respond(
            "application/json",
            serde_json::to_string(&value).expect("JSON of worlds"),
        ),
        Err(error) => database_error(error),
    }
}

fn database_error(error: PoolError) -> HttpResponse {
    HttpResponse::InternalServerError().body(format!("database error: {error}\n"))
}

fn count(request: &HttpRequest) -> usize {
    query_count(query_param(request.query_string(), "q"))
}

async fn db(pool: web::Data<Pool>) -> HttpResponse {
    json(random_world(&pool).await)
}

async fn queries(pool: web::Data<Pool>, request: HttpRequest) -> HttpResponse {
    json(random_worlds(&pool, count(&request)).await)
}

async fn updates(pool: web::Data<Pool>, request: HttpRequest) -> HttpResponse {
    json(update_worlds(&pool, count(&request)).await)
}

async fn fortunes(pool: web::Data<Pool>) -> HttpResponse {
    match fortunes_page(&pool).await {
        Ok(page) => respond("text/html; charset=utf-8", page),
        Err(error) => database_error(error),
    }
}

fn main() -> std::io::Result<()> {
    let options = Options::parse();
    let per_worker = options.pool_size().div_ceil(options.threads.max(1));
    let url = options.database_url.clone();
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(move || {
            // Called on each worker's thread: its pool opens connections there.
            App::new()
                .app_data(web::Data::new(pool(&url, per_worker)))
                .route("/db", web::get().to(db))
                .route("/queries", web::get().to(queries))
                .route("/fortunes", web::get().to(fortunes))
                .route("/updates", web::get().to(updates))
        })
        .workers(options.threads)
        .backlog(1024) // as in TechEmpower
        .bind(("127.0.0.1", options.port))?
        .run()
        .await
    })
}
