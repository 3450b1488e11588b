//! The first example: two routes, served until Ctrl-C, then drained.
//!
//! ```sh
//! cargo run --example hello                    # on 127.0.0.1:8080
//! cargo run --example hello -- 127.0.0.1:3000  # elsewhere (port 0: any free port)
//! curl http://127.0.0.1:8080/shard             # served by shard 0
//! ```

use shardd::{app_fn, Config, Response, Server};

fn main() -> Result<(), shardd::Error> {
    let bind = std::env::args().nth(1).unwrap_or("127.0.0.1:8080".into());
    let server = Server::bind(Config {
        bind: bind.parse()?,
        ..Config::default()
    })?;
    let handle = server.serve(|shard| {
        let id = shard.shard_id;
        app_fn(move |req| match req.path() {
            "/" => Response::text("hello\n"),
            "/shard" => Response::text(format!("served by shard {id}\n")),
            _ => Response::not_found(),
        })
    })?;
    if let Some(addr) = handle.local_addr() {
        println!("serving on http://{addr} (Ctrl-C to stop)");
    }
    // Ctrl-C or SIGTERM: requests in flight finish, then it returns.
    // A second Ctrl-C exits at once.
    handle.wait_for_shutdown()?;
    println!("stopped");
    Ok(())
}
