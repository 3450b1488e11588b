//! Starting a test server, the apps it serves, and checks that need one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shardd::{
    app_fn, App, Config, Request, Response, Server, ServerHandle, ShardInfo, StatsSnapshot,
};

use super::client::Client;
use super::response::HttpResponse;
use super::wait::poll_until;

/// A config for `shards` shards on 127.0.0.1, port 0, unpinned, a 1 s drain, default limits.
pub fn config(shards: usize) -> Config {
    Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)).into(),
        shards,
        pin: false,
        drain_timeout_ms: 1_000,
        ..Config::default()
    }
}

/// [`config`] with small size limits and 5 s timeouts, which fire only when a test waits for them.
pub fn bounded_config(shards: usize) -> Config {
    let mut config = config(shards);
    config.limits.max_request_line = 256;
    config.limits.max_head_bytes = 1024;
    config.limits.max_headers = 16;
    config.limits.max_body_bytes = 1024;
    config.limits.header_timeout = std::time::Duration::from_millis(5_000);
    config.limits.idle_timeout = std::time::Duration::from_millis(5_000);
    config.limits.body_timeout = std::time::Duration::from_millis(5_000);
    config.limits.send_timeout = std::time::Duration::from_millis(5_000);
    config
}

/// Knobs shared by every shard's [`TestApp`], so a test can steer handlers.
#[derive(Clone, Default)]
pub struct Controls {
    /// While true, `/hold` does not answer.
    pub holding: Arc<AtomicBool>,
    /// Every target the app was called with, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Controls {
    /// Makes `/hold` wait until [`Controls::release`].
    pub fn hold(&self) {
        self.holding.store(true, SeqCst);
    }

    /// Lets every waiting and future `/hold` answer.
    pub fn release(&self) {
        self.holding.store(false, SeqCst);
    }

    /// Returns every target the app was called with so far, in order.
    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// The app [`TestServer::start`] serves:
/// - `/` → `ok`
/// - `/shard` → the id of the shard that answered
/// - `/echo` → the request body
/// - `/boom` → panics at once; `/boom-later` panics after an await
/// - `/sleep?ms=N` → answers after N ms (async: the shard keeps serving)
/// - `/hold` → answers once the test calls [`Controls::release`] (at most 10 s)
/// - `/big?n=N` → a body of N bytes
pub struct TestApp {
    pub shard: usize,
    pub controls: Controls,
}

/// Returns the number after `key=` in the request's query, if any.
fn query_number(request: &Request<'_>, key: &str) -> Option<u64> {
    request.query()?.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.parse().ok()).flatten()
    })
}

impl App for TestApp {
    async fn call(&self, request: &Request<'_>) -> Response {
        self.controls
            .seen
            .lock()
            .unwrap()
            .push(request.target().to_owned());
        match request.path() {
            "/" => Response::text("ok"),
            "/shard" => Response::text(self.shard.to_string()),
            "/echo" => Response::text(request.body().to_vec()),
            "/boom" => panic!("handler panic requested by test"),
            "/boom-later" => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                panic!("handler panic after an await, requested by test");
            }
            "/sleep" => {
                let ms = query_number(request, "ms").unwrap_or(100);
                tokio::time::sleep(Duration::from_millis(ms)).await;
                Response::text("slept")
            }
            "/hold" => {
                let until = Instant::now() + Duration::from_secs(10);
                while self.controls.holding.load(SeqCst) && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                Response::text("released")
            }
            "/big" => {
                let n = query_number(request, "n").unwrap_or(65_536) as usize;
                Response::text(vec![b'x'; n])
            }
            _ => Response::not_found(),
        }
    }
}

/// An app that shows what the server handed it: `/echo` answers
/// `METHOD TARGET len=N body=BODY`; `/plaintext` answers `Hello, World!`;
/// a path under `/path/` answers its target; anything else is a 404.
pub fn echo_app() -> impl App {
    app_fn(|req| match req.path() {
        "/echo" => Response::text(format!(
            "{} {} len={} body={}",
            req.method(),
            req.target(),
            req.body().len(),
            String::from_utf8_lossy(req.body())
        )),
        "/plaintext" => Response::text("Hello, World!"),
        path if path.starts_with("/path/") => Response::text(req.target().to_string()),
        _ => Response::not_found(),
    })
}

/// A running server on an ephemeral port.
pub struct TestServer {
    pub handle: ServerHandle,
    pub addr: SocketAddr,
    /// Steer the [`TestApp`]; unused by other apps.
    pub controls: Controls,
}

impl TestServer {
    /// Starts `config` serving a [`TestApp`] on every shard; panics if it cannot.
    pub fn start(config: Config) -> TestServer {
        let controls = Controls::default();
        let shared = controls.clone();
        let mut server = TestServer::start_with(config, move |ctx| TestApp {
            shard: ctx.shard_id,
            controls: shared.clone(),
        });
        server.controls = controls;
        server
    }

    /// Starts `config` serving the app `app` builds on each shard; panics if it cannot.
    pub fn start_with<F, A>(config: Config, app: F) -> TestServer
    where
        F: Fn(&ShardInfo) -> A + Send + Sync + 'static,
        A: App,
    {
        let handle = Server::bind(config)
            .expect("bind 127.0.0.1:0")
            .serve(app)
            .expect("spawn server");
        let addr = handle.local_addr().expect("bound address");
        TestServer {
            handle,
            addr,
            controls: Controls::default(),
        }
    }

    /// Returns the server's counters now.
    pub fn stats(&self) -> StatsSnapshot {
        self.handle.stats()
    }

    /// Returns a new client connected to the server.
    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Returns the first stats that satisfy `check`; panics naming `what` after `within`.
    pub fn wait_stats(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(&StatsSnapshot) -> bool,
    ) -> StatsSnapshot {
        poll_until(what, within, || self.stats(), check)
    }

    /// Asserts a fresh connection gets the [`TestApp`]'s `200 ok` for `GET /`: the server still serves.
    pub fn assert_serves(&self) {
        let mut client = self.connect();
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let response = client.response().expect("a fresh connection is served");
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(response.body, b"ok");
    }
}

/// Returns which shard serves `client`, asking the [`TestApp`]'s `/shard`; panics unless it answers 200.
pub fn shard_of(client: &mut Client) -> usize {
    client.send(b"GET /shard HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = client.response().expect("shard answers");
    assert_eq!(response.status, 200, "{response:?}");
    response.body_str().parse().expect("a shard id")
}

/// Asserts `raw` on a fresh connection gets one `status` response saying
/// `Connection: close`, then a close with nothing more, and that the server
/// still serves fresh connections; returns the response.
pub fn refused_and_closed(server: &TestServer, raw: &[u8], status: u16) -> HttpResponse {
    let shown = String::from_utf8_lossy(raw);
    let mut client = server.connect();
    client.send(raw);
    let response = client
        .response()
        .unwrap_or_else(|e| panic!("{shown:?}: {e}"));
    assert_eq!(response.status, status, "{shown:?} -> {response:?}");
    assert!(
        response.closes(),
        "{shown:?}: refusal must say Connection: close: {response:?}"
    );
    let (_, rest) = client.read_until_closed(Duration::from_secs(4));
    assert!(
        rest.is_empty(),
        "{shown:?}: nothing may follow the refusal, got {:?}",
        String::from_utf8_lossy(&rest)
    );
    server.assert_serves();
    response
}
