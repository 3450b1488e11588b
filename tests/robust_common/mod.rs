//! Helpers for the robustness tests (admission, limits, smuggling, faults).
//!
//! Every server here binds 127.0.0.1:0, runs unpinned with small limits and
//! short timeouts, and every client read or write has a timeout, so a
//! misbehaving server makes a test fail instead of hang.

#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shardd::{App, Config, Request, Response, Server, ServerHandle, StatsSnapshot};

/// Longest any single client read may block.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// A config for tests: loopback, port 0, unpinned, short drain, small limits
/// and timeouts long enough not to fire unless a test wants them to.
pub fn test_config(shards: usize) -> Config {
    let mut config = Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        shards,
        pin: false,
        drain_timeout_ms: 1_000,
        ..Config::default()
    };
    config.limits.max_request_line = 256;
    config.limits.max_head_bytes = 1024;
    config.limits.max_headers = 16;
    config.limits.max_body_bytes = 1024;
    config.limits.header_timeout_ms = 5_000;
    config.limits.idle_timeout_ms = 5_000;
    config.limits.body_timeout_ms = 5_000;
    config.limits.send_timeout_ms = 5_000;
    config
}

/// Knobs shared by every shard's [`TestApp`], so a test can steer handlers.
#[derive(Clone, Default)]
pub struct Controls {
    /// While true, `/hold` does not answer.
    pub holding: Arc<AtomicBool>,
    /// Every path the app was called with, in order.
    pub seen: Arc<Mutex<Vec<String>>>,
}

impl Controls {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn hold(&self) {
        self.holding.store(true, SeqCst);
    }

    pub fn release(&self) {
        self.holding.store(false, SeqCst);
    }

    pub fn seen(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

/// The app every robustness test serves:
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

/// A running test server.
pub struct TestServer {
    pub handle: ServerHandle,
    pub addr: SocketAddr,
    pub controls: Controls,
}

impl TestServer {
    pub fn start(config: Config) -> TestServer {
        let controls = Controls::new();
        let shared = controls.clone();
        let handle = Server::bind(config)
            .expect("bind")
            .spawn(move |ctx| TestApp {
                shard: ctx.shard_id,
                controls: shared.clone(),
            })
            .expect("spawn");
        let addr = handle.local_addr().expect("bound address");
        TestServer {
            handle,
            addr,
            controls,
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        self.handle.stats()
    }

    pub fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Wait until `check` holds for the stats (panics after `within`).
    pub fn wait_stats(
        &self,
        what: &str,
        within: Duration,
        check: impl Fn(&StatsSnapshot) -> bool,
    ) -> StatsSnapshot {
        let until = Instant::now() + within;
        loop {
            let stats = self.stats();
            if check(&stats) {
                return stats;
            }
            if Instant::now() >= until {
                panic!("timed out waiting for {what}; stats: {stats:#?}");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
    }

    /// A fresh connection gets `200 ok` for `GET /`: the server still serves.
    pub fn assert_serves(&self) {
        let mut client = self.connect();
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
        let response = client.response().expect("a fresh connection is served");
        assert_eq!(response.status, 200, "{response:?}");
        assert_eq!(response.body, b"ok");
    }
}

/// Wait until `check()` is true (panics after `within`).
pub fn wait_until(what: &str, within: Duration, check: impl Fn() -> bool) {
    let until = Instant::now() + within;
    while !check() {
        if Instant::now() >= until {
            panic!("timed out waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// One parsed response.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resp {
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn closes(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// How a read that expected the end of a connection ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// Orderly close (FIN).
    Eof,
    /// Connection reset.
    Reset,
}

/// A blocking client whose every read and write times out.
pub struct Client {
    pub stream: TcpStream,
    /// Bytes read but not yet consumed by [`Client::response`].
    pub buf: Vec<u8>,
}

impl Client {
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.set_nodelay(true).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).expect("send");
    }

    /// Send, ignoring errors (the server may already have closed).
    pub fn try_send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// Half-close: tell the server no more bytes are coming.
    pub fn shutdown_write(&self) {
        let _ = self.stream.shutdown(Shutdown::Write);
    }

    fn fill(&mut self, timeout: Duration) -> std::io::Result<usize> {
        self.stream.set_read_timeout(Some(timeout))?;
        let mut chunk = [0u8; 16 * 1024];
        let result = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other,
            }
        };
        let n = result?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    /// Read one complete response (an interim 1xx counts as one).
    pub fn response(&mut self) -> std::io::Result<Resp> {
        self.response_within(READ_TIMEOUT)
    }

    pub fn response_within(&mut self, within: Duration) -> std::io::Result<Resp> {
        let until = Instant::now() + within;
        loop {
            if let Some((resp, used)) = parse_response(&self.buf)? {
                self.buf.drain(..used);
                return Ok(resp);
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    ErrorKind::TimedOut,
                    format!(
                        "no complete response; have {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
            if self.fill(left)? == 0 {
                return Err(std::io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!(
                        "closed before a complete response; have {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
        }
    }

    /// Read until the server closes; returns how it closed and the bytes
    /// that arrived first. Panics if the connection is still open after `within`.
    pub fn expect_closed(&mut self, within: Duration) -> (End, Vec<u8>) {
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                panic!(
                    "connection still open after {within:?}; read {:?}",
                    String::from_utf8_lossy(&self.buf)
                );
            }
            match self.fill(left) {
                Ok(0) => return (End::Eof, std::mem::take(&mut self.buf)),
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
                Err(_) => return (End::Reset, std::mem::take(&mut self.buf)),
            }
        }
    }

    /// Nothing at all (no byte, no close) arrives for `quiet`.
    pub fn assert_silent_for(&mut self, quiet: Duration) {
        match self.fill(quiet) {
            Err(e) if e.kind() == ErrorKind::WouldBlock || e.kind() == ErrorKind::TimedOut => {}
            Ok(0) => panic!("connection closed while it should have waited"),
            Ok(_) => panic!(
                "unexpected bytes while waiting: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) => panic!("connection failed while it should have waited: {e}"),
        }
    }
}

/// Parse one response from the start of `buf`: `Ok(None)` if incomplete.
pub fn parse_response(buf: &[u8]) -> std::io::Result<Option<(Resp, usize)>> {
    let bad = |why: &str| {
        std::io::Error::new(
            ErrorKind::InvalidData,
            format!("{why}: {:?}", String::from_utf8_lossy(buf)),
        )
    };
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..end]).map_err(|_| bad("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not an HTTP/1.x status line"));
    }
    let status: u16 = parts
        .next()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("bad status code"))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| bad("bad header line"))?;
        headers.push((name.trim().to_owned(), value.trim().to_owned()));
    }
    let head_len = end + 4;
    let length = headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.parse::<usize>().map_err(|_| bad("bad Content-Length")))
        .transpose()?
        .unwrap_or(0);
    if buf.len() < head_len + length {
        return Ok(None);
    }
    let body = buf[head_len..head_len + length].to_vec();
    Ok(Some((
        Resp {
            status,
            reason,
            headers,
            body,
        },
        head_len + length,
    )))
}

/// Send `raw` on a fresh connection; expect one response with `status` and
/// `Connection: close`, then the connection closed (not reset first), and
/// the server still serving fresh connections.
pub fn refused_and_closed(server: &TestServer, raw: &[u8], status: u16) -> Resp {
    let mut client = server.connect();
    client.send(raw);
    let response = client
        .response()
        .unwrap_or_else(|e| panic!("{:?}: {e}", String::from_utf8_lossy(raw)));
    assert_eq!(
        response.status,
        status,
        "{:?} -> {response:?}",
        String::from_utf8_lossy(raw)
    );
    assert!(
        response.closes(),
        "{:?}: refusal must say Connection: close: {response:?}",
        String::from_utf8_lossy(raw)
    );
    let (_, rest) = client.expect_closed(Duration::from_secs(4));
    assert!(
        rest.is_empty() && client.buf.is_empty(),
        "{:?}: nothing may follow the refusal, got {:?}",
        String::from_utf8_lossy(raw),
        String::from_utf8_lossy(&rest)
    );
    server.assert_serves();
    response
}
