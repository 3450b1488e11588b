//! A test-only example for tests/shutdown.rs: `hello` with a slow route, to
//! have a request in flight when the signal lands. Not for users (see hello.rs).
//!
//! Arguments: the address to bind, and the drain timeout in ms. Prints
//! `serving on http://ADDR` when it serves, `handling /slow` when a slow
//! request has reached its handler, `stopped` when `wait_for_shutdown`
//! returns; the library's log lines go to stderr.

use std::time::Duration;

use shardd::{App, Config, Request, Response, Server};

/// `/slow?ms=N` answers `slept` after N ms; anything else `hello` at once.
struct Probe;

impl App for Probe {
    async fn call(&self, request: &Request<'_>) -> Response {
        if request.path() != "/slow" {
            return Response::text("hello\n");
        }
        let ms = request
            .query()
            .and_then(|query| query.strip_prefix("ms="))
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(500);
        println!("handling /slow");
        tokio::time::sleep(Duration::from_millis(ms)).await;
        Response::text("slept\n")
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let mut args = std::env::args().skip(1);
    let bind = args.next().unwrap_or("127.0.0.1:0".into()).parse()?;
    let drain_timeout_ms = args.next().unwrap_or("10000".into()).parse()?;
    let config = Config {
        bind,
        shards: 1,
        pin: false,
        drain_timeout_ms,
        ..Config::default()
    };
    let handle = Server::bind(config)?.serve(|_shard| Probe)?;
    println!(
        "serving on http://{}",
        handle.local_addr().ok_or("not TCP")?
    );
    handle.wait_for_shutdown()?;
    println!("stopped");
    Ok(())
}
