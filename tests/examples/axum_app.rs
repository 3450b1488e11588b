//! An axum `Router` served by shardd: one `Router` per shard, built on the
//! shard by the app factory, its handlers run on the shard's thread.
//!
//! ```sh
//! cargo run --release --example axum_app -- --bind 127.0.0.1:8080 --shards 2
//! curl http://127.0.0.1:8080/plaintext            # Hello, World!
//! curl http://127.0.0.1:8080/json                 # {"message":"Hello, World!"}
//! curl http://127.0.0.1:8080/hello/ada            # Hello, ada, from shard 0 (request 1 on this shard)
//! curl -d '[1, 2, 3]' -H 'Content-Type: application/json' http://127.0.0.1:8080/sum   # {"sum":6}
//! ```
//!
//! `/plaintext` and `/json` answer exactly as the `peer-axum` baseline does
//! (axum on its own hyper server), so the load bench can compare the two.
//! SIGINT or SIGTERM drains: requests in flight finish, then it exits 0; a
//! second one exits at once (130 or 143).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::header::{HeaderValue, CONTENT_TYPE, SERVER};
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use clap::Parser;
use serde::Serialize;
use shardd::tower::serve_tower;
use shardd::{Config, ListenerMode, Server, ShardInfo};

/// An axum Router on shardd.
#[derive(Debug, Parser)]
struct Args {
    /// Address and port to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
    /// Number of shards [default: one per core].
    #[arg(long, default_value_t = 0)]
    shards: usize,
    /// Where shards get connections.
    #[arg(long, value_enum, default_value = "handoff")]
    listener: ListenerMode,
    /// Do not pin shard threads to cores.
    #[arg(long)]
    no_pin: bool,
}

/// What the handlers of one shard share: `State` is cloned into each
/// request. axum wants it `Send + Sync`, but since each shard builds its
/// own Router, no other core ever touches this counter.
#[derive(Clone)]
struct ShardState {
    shard: usize,
    /// Requests to `/hello` on this shard.
    hellos: Arc<AtomicU64>,
}

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

#[derive(Serialize)]
struct Sum {
    sum: i64,
}

/// TechEmpower plaintext, as `peer-axum` answers it.
async fn plaintext() -> impl IntoResponse {
    (
        [
            (SERVER, HeaderValue::from_static("A")),
            (CONTENT_TYPE, HeaderValue::from_static("text/plain")),
        ],
        "Hello, World!",
    )
}

/// TechEmpower json, as `peer-axum` answers it.
async fn json() -> impl IntoResponse {
    (
        [(SERVER, HeaderValue::from_static("A"))],
        Json(Message {
            message: "Hello, World!",
        }),
    )
}

async fn hello(State(state): State<ShardState>, Path(name): Path<String>) -> String {
    let count = state.hellos.fetch_add(1, Ordering::Relaxed) + 1;
    format!(
        "Hello, {name}, from shard {} (request {count} on this shard)\n",
        state.shard
    )
}

async fn sum(Json(numbers): Json<Vec<i64>>) -> Json<Sum> {
    Json(Sum {
        sum: numbers.iter().sum(),
    })
}

/// The app, built once on each shard.
fn router(shard: &ShardInfo) -> Router {
    Router::new()
        .route("/plaintext", get(plaintext))
        .route("/json", get(json))
        .route("/hello/{name}", get(hello))
        .route("/sum", post(sum))
        .with_state(ShardState {
            shard: shard.shard_id,
            hellos: Arc::default(),
        })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // What shardd and the adapter report (a service error, a header it cannot send).
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let args = Args::parse();
    let config = Config {
        bind: args.bind.into(),
        shards: args.shards,
        listener: args.listener,
        pin: !args.no_pin,
        ..Config::default()
    };
    let server = Server::bind(config)?.serve(|shard| serve_tower(router(shard)))?;
    if let Some(addr) = server.local_addr() {
        println!("axum on shardd: http://{addr}/plaintext (Ctrl-C to stop)");
    }
    // SIGINT/SIGTERM: drain (logged), then return; a second one exits at once.
    server.wait_for_shutdown()?;
    println!("stopped");
    Ok(())
}
