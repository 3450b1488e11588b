//! The shardd server of benches/compression.sh: `/json` (TechEmpower's
//! message) and `/list` (50 items, HttpArena's `json` shape, ~5 KiB), each
//! serialized per request through the router, compressed by
//! `App::compressed` (gzip level 1 and every size, as the peers do).
//!
//! ```sh
//! cargo run --release --example compression_server -- --port 8080 --shards 1 [--off]
//! ```

use serde::Serialize;
use shardd::compression::CompressionSettings;
use shardd::router::{get, Json, Router};
use shardd::{App, Config, Server};

#[derive(Serialize)]
struct Message {
    message: &'static str,
}

#[derive(Serialize)]
struct Item {
    id: u32,
    name: String,
    category: &'static str,
    price: f64,
    quantity: u32,
    active: bool,
    tags: [&'static str; 2],
}

#[derive(Serialize)]
struct List {
    items: Vec<Item>,
    count: usize,
}

/// The same 50 items as benches/compression/peers/src/lib.rs.
fn list() -> List {
    let categories = ["electronics", "books", "clothing", "garden"];
    let items: Vec<Item> = (0..50)
        .map(|id| Item {
            id,
            name: format!("Item {id}"),
            category: categories[id as usize % 4],
            price: 9.99 + f64::from(id) * 1.5,
            quantity: id * 7 % 100,
            active: id % 3 != 0,
            tags: ["popular", "sale"],
        })
        .collect();
    List {
        count: items.len(),
        items,
    }
}

fn arg(name: &str, default: usize) -> usize {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(|v| v.parse().expect("a number"))
        .unwrap_or(default)
}

fn main() -> Result<(), shardd::Error> {
    let port = arg("--port", 8080) as u16;
    let settings = CompressionSettings {
        enabled: !std::env::args().any(|a| a == "--off"),
        min_size: arg("--min-size", 0),
        gzip_level: arg("--gzip-level", 1) as u32,
        ..CompressionSettings::default()
    };
    let server = Server::bind(Config {
        bind: std::net::SocketAddr::from(([127, 0, 0, 1], port)).into(),
        shards: arg("--shards", 1),
        pin: false,
        ..Config::default()
    })?;
    let handle = server.serve(move |_| {
        Router::new()
            .route(
                "/json",
                get(async |_| {
                    Json(Message {
                        message: "Hello, World!",
                    })
                }),
            )
            .route("/list", get(async |_| Json(list())))
            .compressed(settings.clone())
    })?;
    handle.wait_for_shutdown()?;
    Ok(())
}
