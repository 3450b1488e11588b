//! axum 0.8 with tower-http's CompressionLayer (gzip, level 1, every size:
//! its default predicate skips bodies under 32 bytes, which would leave
//! TechEmpower's json uncompressed), serving /json and /list.
//! Usage: axum-compress --port P --threads N
use axum::{routing::get, Json, Router};
use compression_peers::{arg, list, List, Message};
use tower_http::compression::predicate::SizeAbove;
use tower_http::compression::{CompressionLayer, CompressionLevel};

async fn json() -> Json<Message> {
    Json(Message {
        message: "Hello, World!",
    })
}

async fn items() -> Json<List> {
    Json(list())
}

fn main() {
    let port = arg("--port", 8080) as u16;
    let threads = arg("--threads", 2);
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .unwrap()
        .block_on(async move {
            let app = Router::new()
                .route("/json", get(json))
                .route("/list", get(items))
                .layer(
                    CompressionLayer::new()
                        .gzip(true)
                        .no_br()
                        .no_deflate()
                        .no_zstd()
                        .quality(CompressionLevel::Fastest)
                        .compress_when(SizeAbove::new(0)),
                );
            let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap();
            axum::serve(listener, app).await.unwrap();
        });
}
