//! axum 0.8 serving the TechEmpower database endpoints (/db, /queries?q=N,
//! /fortunes, /updates?q=N) from Postgres, with axum::serve on a tokio
//! multi-thread runtime, the way an axum user deploys it.
//! Usage: peer-axum-db --port P --threads N --database-url URL [--pool C]
//!
//! One pool of C connections for the whole server: tokio moves tasks
//! between its worker threads, so the pool is shared by all of them.

use axum::extract::{RawQuery, State};
use axum::http::header::{HeaderValue, CONTENT_TYPE, SERVER};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use clap::Parser;
use db_peers::{
    fortunes_page, pool, query_count, query_param, random_world, random_worlds, update_worlds,
    Options, World,
};
use deadpool_postgres::{Pool, PoolError};
use serde::Serialize;

type Params = RawQuery;

fn json<T: Serialize>(result: Result<T, PoolError>) -> Response {
    match result {
        Ok(value) => ([(SERVER, HeaderValue::from_static("A"))], Json(value)).into_response(),
        Err(error) => database_error(error),
    }
}

fn database_error(error: PoolError) -> Response {
    (
        StatusCode::INTERNAL_SERVER_ERROR,
        format!("database error: {error}\n"),
    )
        .into_response()
}

fn count(params: &Params) -> usize {
    query_count(
        params
            .0
            .as_deref()
            .and_then(|query| query_param(query, "q")),
    )
}

async fn db(State(pool): State<Pool>) -> Response {
    json::<World>(random_world(&pool).await)
}

async fn queries(State(pool): State<Pool>, params: Params) -> Response {
    json(random_worlds(&pool, count(&params)).await)
}

async fn updates(State(pool): State<Pool>, params: Params) -> Response {
    json(update_worlds(&pool, count(&params)).await)
}

async fn fortunes(State(pool): State<Pool>) -> Response {
    match fortunes_page(&pool).await {
        Ok(page) => (
            [
                (SERVER, HeaderValue::from_static("A")),
                (
                    CONTENT_TYPE,
                    HeaderValue::from_static("text/html; charset=utf-8"),
                ),
            ],
            page,
        )
            .into_response(),
        Err(error) => database_error(error),
    }
}

fn main() {
    let options = Options::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads)
        .enable_io()
        .enable_time()
        .build()
        .expect("start the tokio runtime");
    runtime.block_on(async move {
        let app = Router::new()
            .route("/db", get(db))
            .route("/queries", get(queries))
            .route("/fortunes", get(fortunes))
            .route("/updates", get(updates))
            .with_state(pool(&options.database_url, options.pool_size()));
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", options.port))
            .await
            .unwrap_or_else(|e| panic!("bind 127.0.0.1:{}: {e}", options.port));
        axum::serve(listener, app).await.expect("serve");
    });
}
