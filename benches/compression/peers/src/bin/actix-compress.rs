//! actix-web 4 with `middleware::Compress` (gzip level 1 in actix-http),
//! serving /json and /list. Usage: actix-compress --port P --threads N
use actix_web::{get, middleware::Compress, App, HttpResponse, HttpServer};
use compression_peers::{arg, list, Message};

#[get("/json")]
async fn json() -> HttpResponse {
    HttpResponse::Ok().json(Message {
        message: "Hello, World!",
    })
}

#[get("/list")]
async fn items() -> HttpResponse {
    HttpResponse::Ok().json(list())
}

fn main() -> std::io::Result<()> {
    let port = arg("--port", 8080) as u16;
    let threads = arg("--threads", 2);
    actix_web::rt::System::new().block_on(async move {
        HttpServer::new(|| {
            App::new()
                .wrap(Compress::default())
                .service(json)
                .service(items)
        })
        .workers(threads)
        .backlog(1024)
        .bind(("127.0.0.1", port))?
        .run()
        .await
    })
}
