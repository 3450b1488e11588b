//! A real axum `Router` served by shardd through the tower adapter
//! (feature `tower`, which the crate's dev-dependency on itself turns on):
//! path parameters, `Json` in and out, `State`, `Query`, a streamed body,
//! a tower-http layer, a panicking handler, a drain with a request in
//! flight, what the adapter does with framing fields, and services that are
//! not always ready or whose futures are not `Send`.

mod support;

use std::cell::Cell;
use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::header::{HeaderMap, HeaderValue, CONNECTION};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use bytes::Bytes;
use futures_util::stream;
use serde::{Deserialize, Serialize};
use shardd::tower::{serve_tower, RequestBody};
use shardd::{PeerAddr, ShardInfo};
use support::{bounded_config, config, wait_until, Client, TestServer};
use tower::limit::ConcurrencyLimit;
use tower::service_fn;
use tower_http::timeout::TimeoutLayer;

/// What the test steers and watches, shared by every shard's Router.
#[derive(Clone, Default)]
struct Shared {
    /// Requests that reached `/slow`.
    slow_started: Arc<AtomicUsize>,
    /// While false, `/stream` holds back everything after its first chunk.
    release_stream: Arc<AtomicBool>,
}

/// A Router's `State`: the shard it runs on, a counter of its own, and the test's knobs.
#[derive(Clone)]
struct AppState {
    shard: usize,
    visits: Arc<AtomicU64>,
    shared: Shared,
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    age: u32,
}

#[derive(Serialize)]
struct User {
    id: u64,
    name: String,
    adult: bool,
}

#[derive(Deserialize)]
struct Slow {
    ms: u64,
}

async fn post_of_user(Path((user, post)): Path<(u32, String)>) -> String {
    format!("user {user}, post {post}")
}

async fn create_user(Json(new): Json<NewUser>) -> impl IntoResponse {
    let user = User {
        id: 7,
        name: new.name,
        adult: new.age >= 18,
    };
    (StatusCode::CREATED, Json(user))
}

async fn visit(State(state): State<AppState>) -> String {
    let n = state.visits.fetch_add(1, SeqCst) + 1;
    format!("shard {} visit {n}", state.shard)
}

async fn slow(State(state): State<AppState>, Query(slow): Query<Slow>) -> &'static str {
    state.shared.slow_started.fetch_add(1, SeqCst);
    tokio::time::sleep(Duration::from_millis(slow.ms)).await;
    "slept"
}

/// Three chunks; after the first it waits (at most 10 s) for the test's release.
async fn streamed(State(state): State<AppState>) -> Body {
    let release = state.shared.release_stream.clone();
    let chunks = stream::unfold(0, move |i| {
        let release = release.clone();
        async move {
            if i == 3 {
                return None;
            }
            if i == 1 {
                let until = Instant::now() + Duration::from_secs(10);
                while !release.load(SeqCst) && Instant::now() < until {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            Some((
                Ok::<_, std::io::Error>(Bytes::from(format!("chunk {i};"))),
                i + 1,
            ))
        }
    });
    Body::from_stream(chunks)
}

async fn boom() -> &'static str {
    panic!("handler panic requested by test");
}

async fn boom_later() -> &'static str {
    tokio::time::sleep(Duration::from_millis(10)).await;
    panic!("handler panic after an await, requested by test");
}

async fn whoami(Extension(peer): Extension<PeerAddr>, headers: HeaderMap) -> String {
    let agent = headers
        .get("x-agent")
        .and_then(|value| value.to_str().ok())
        .unwrap_or("none");
    match peer {
        PeerAddr::Tcp(addr) => format!("{} {agent}", addr.ip()),
        other => format!("{other:?} {agent}"),
    }
}

async fn odd_headers() -> impl IntoResponse {
    (
        [
            ("x-custom", HeaderValue::from_static("yes")),
            (
                "x-utf8",
                HeaderValue::from_bytes("café".as_bytes()).unwrap(),
            ),
        ],
        "odd",
    )
}

async fn latin1() -> impl IntoResponse {
    (
        [("x-latin1", HeaderValue::from_bytes(b"caf\xe9").unwrap())],
        "never sent",
    )
}

async fn bye() -> impl IntoResponse {
    ([(CONNECTION, "close")], "bye")
}

/// The Router every test serves, built on each shard.
fn router(shard: &ShardInfo, shared: &Shared) -> Router {
    Router::new()
        .route("/users/{user}/posts/{post}", get(post_of_user))
        .route("/users", post(create_user))
        .route("/visit", get(visit))
        .route("/slow", get(slow))
        .route("/stream", get(streamed))
        .route("/boom", get(boom))
        .route("/boom-later", get(boom_later))
        .route("/whoami", get(whoami))
        .route("/odd", get(odd_headers))
        .route("/latin1", get(latin1))
        .route("/bye", get(bye))
        .route("/plaintext", get(|| async { "Hello, World!" }))
        .with_state(AppState {
            shard: shard.shard_id,
            visits: Arc::default(),
            shared: shared.clone(),
        })
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(1_500),
        ))
}

fn start(shards: usize) -> (TestServer, Shared) {
    start_with_config(config(shards))
}

fn start_with_config(config: shardd::Config) -> (TestServer, Shared) {
    let shared = Shared::default();
    let knobs = shared.clone();
    let server = TestServer::start_with(config, move |shard| {
        serve_tower(router(shard, &knobs)).with_peer_addr()
    });
    (server, shared)
}

#[test]
fn path_parameters_reach_the_handler() {
    let (server, _) = start(1);
    let response = server.connect().get("/users/42/posts/hello-world");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body_str(), "user 42, post hello-world");
    assert_eq!(
        response.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    // A parameter that does not parse is axum's 400, not a server error.
    assert_eq!(server.connect().get("/users/x/posts/y").status, 400);
}

#[test]
fn json_in_and_json_out() {
    let (server, _) = start(1);
    let mut client = server.connect();
    let body = r#"{"name":"Ada","age":36}"#;
    client.send(format!(
        "POST /users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    ));
    let response = client.response().unwrap();
    assert_eq!(response.status, 201, "{response:?}");
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    let user: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        user,
        serde_json::json!({"id": 7, "name": "Ada", "adult": true})
    );
    assert_eq!(
        response.header("Content-Length"),
        Some(response.body.len().to_string().as_str())
    );

    // The same body sent chunked reaches the extractor whole.
    client.send(
        "POST /users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
         a\r\n{\"name\":\"B\r\nd\r\nob\",\"age\":12}\r\n0\r\n\r\n",
    );
    let response = client.response().unwrap();
    assert_eq!(response.status, 201, "{response:?}");
    let user: serde_json::Value = serde_json::from_slice(&response.body).unwrap();
    assert_eq!(
        user,
        serde_json::json!({"id": 7, "name": "Bob", "adult": false})
    );

    // Bad JSON and a missing content type are the extractor's own refusals.
    client.send("POST /users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 4\r\n\r\n{\"na");
    assert_eq!(client.response().unwrap().status, 400);
    client.send("POST /users HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\n{}");
    assert_eq!(client.response().unwrap().status, 415);
}

#[test]
fn state_is_per_shard_and_kept_between_requests() {
    let (server, _) = start(2);
    let mut seen = Vec::new();
    // Round-robin: consecutive connections land on alternate shards.
    for _ in 0..4 {
        seen.push(server.connect().get("/visit").body_str().to_owned());
    }
    seen.sort();
    assert_eq!(
        seen,
        [
            "shard 0 visit 1",
            "shard 0 visit 2",
            "shard 1 visit 1",
            "shard 1 visit 2"
        ]
    );
}

#[test]
fn query_headers_and_the_peer_address_reach_the_handler() {
    let (server, _) = start(1);
    let mut client = server.connect();
    client.send("GET /whoami HTTP/1.1\r\nHost: t\r\nX-Agent: tester\r\n\r\n");
    let response = client.response().unwrap();
    assert_eq!(response.body_str(), "127.0.0.1 tester");
    // A query that does not deserialize is axum's 400.
    assert_eq!(client.get("/slow?ms=soon").status, 400);
    assert_eq!(client.get("/slow?ms=1").body_str(), "slept");
}

#[test]
fn a_streamed_body_is_forwarded_frame_by_frame() {
    let (server, shared) = start(1);
    let mut stream = TcpStream::connect(server.addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(b"GET /stream HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    // The head and the first chunk arrive while the handler's stream is still held back.
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("chunk 0;") {
        let n = stream
            .read(&mut buf)
            .expect("the first chunk before the release");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).into_owned();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    assert!(text.contains("Transfer-Encoding: chunked\r\n"), "{text}");
    assert!(!text.contains("chunk 1;"), "{text}");
    shared.release_stream.store(true, SeqCst);
    while !got.ends_with(b"0\r\n\r\n") {
        let n = stream.read(&mut buf).expect("the rest of the stream");
        assert!(n > 0, "closed early: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
    let (response, used) = support::parse_response(&got, "GET", false)
        .unwrap()
        .expect("one complete chunked response");
    assert_eq!(used, got.len(), "nothing after the last chunk");
    assert_eq!(response.body_str(), "chunk 0;chunk 1;chunk 2;");
    // The connection is still good.
    stream
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut got = Vec::new();
    while !got.ends_with(b"Hello, World!") {
        let n = stream.read(&mut buf).expect("the next response");
        assert!(n > 0, "closed: {:?}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn a_tower_http_timeout_layer_answers_for_a_slow_handler() {
    let (server, _) = start(1);
    let mut client = server.connect();
    let started = Instant::now();
    client.send("GET /slow?ms=5000 HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = client.response().unwrap();
    assert_eq!(response.status, 408, "{response:?}");
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    // The shard's timers drive the layer; the connection goes on.
    assert_eq!(client.get("/slow?ms=10").body_str(), "slept");
}

#[test]
fn a_panicking_handler_is_a_500_and_a_close_while_the_shard_serves_on() {
    let (server, _) = start(1);
    for boom in ["/boom", "/boom-later"] {
        let mut client = server.connect();
        // A request pipelined behind the panicking one is not answered.
        client.send(format!(
            "GET {boom} HTTP/1.1\r\nHost: t\r\n\r\nGET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n"
        ));
        let response = client.response().expect("a 500");
        assert_eq!(response.status, 500, "{boom}: {response:?}");
        assert!(response.closes(), "{boom}: {response:?}");
        client.expect_nothing_more_then_close(Duration::from_secs(4));
        assert_eq!(
            server.connect().get("/plaintext").body_str(),
            "Hello, World!"
        );
    }
}

#[test]
fn a_drain_lets_the_request_in_flight_finish_then_closes() {
    // A drain deadline well beyond the request, even on a busy machine.
    let mut config = config(1);
    config.drain_timeout_ms = 5_000;
    let (server, shared) = start_with_config(config);
    let TestServer { handle, addr, .. } = server;
    let mut busy = Client::connect(addr);
    busy.send("GET /slow?ms=400 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("the slow request to start", Duration::from_secs(5), || {
        shared.slow_started.load(SeqCst) == 1
    });
    let started = Instant::now();
    let stopper = std::thread::spawn(move || handle.stop());
    let response = busy.response().expect("the request in flight finishes");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body_str(), "slept");
    assert!(response.closes(), "{response:?}");
    busy.expect_nothing_more_then_close(Duration::from_secs(2));
    stopper.join().unwrap();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn a_service_that_is_not_ready_makes_requests_wait_not_fail() {
    // At most one request in the Router at a time: the second waits for
    // readiness (on a clone), then both are answered, and the service is
    // ready again for a third.
    let shared = Shared::default();
    let knobs = shared.clone();
    let server = TestServer::start_with(config(1), move |shard| {
        serve_tower(ConcurrencyLimit::new(router(shard, &knobs), 1))
    });
    let mut slow = server.connect();
    slow.send("GET /slow?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("the slow request to start", Duration::from_secs(5), || {
        shared.slow_started.load(SeqCst) == 1
    });
    let started = Instant::now();
    let mut waiting = server.connect();
    assert_eq!(waiting.get("/plaintext").body_str(), "Hello, World!");
    assert!(
        started.elapsed() >= Duration::from_millis(150),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(slow.response().unwrap().body_str(), "slept");
    for _ in 0..3 {
        assert_eq!(server.connect().get("/plaintext").status, 200);
    }
}

#[test]
fn a_service_whose_futures_are_not_send_is_served() {
    // Shard-local state behind an `Rc`, held across an await: neither the
    // service nor its futures are `Send`, and the shard does not need them to be.
    let server = TestServer::start_with(config(1), |_| {
        let count = Rc::new(Cell::new(0u64));
        serve_tower(service_fn(
            move |request: axum::http::Request<RequestBody>| {
                let count = Rc::clone(&count);
                async move {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                    count.set(count.get() + 1);
                    let text = format!("{} #{}", request.uri().path(), count.get());
                    Ok::<_, Infallible>(axum::http::Response::new(text))
                }
            },
        ))
    });
    let mut client = server.connect();
    assert_eq!(client.get("/a").body_str(), "/a #1");
    assert_eq!(client.get("/b").body_str(), "/b #2");
}

#[test]
fn limits_apply_before_the_service_runs() {
    let (server, _) = start_with_config(bounded_config(1));
    let mut client = server.connect();
    client.send(format!(
        "POST /users HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\nContent-Length: 2000\r\n\r\n{}",
        "x".repeat(2000)
    ));
    let response = client.response().unwrap();
    assert_eq!(response.status, 413, "{response:?}");
    assert!(response.closes());
}

#[test]
fn framing_and_header_text_are_the_servers() {
    let (server, _) = start(1);
    let mut client = server.connect();
    // HEAD states the length the GET body has, and sends none.
    client.send("HEAD /plaintext HTTP/1.1\r\nHost: t\r\n\r\nGET /odd HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.response_to_head().unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("13"));
    // Custom names and UTF-8 values go out as they are.
    let odd = client.response().unwrap();
    assert_eq!(odd.header("x-custom"), Some("yes"));
    assert_eq!(
        odd.headers
            .iter()
            .find(|(name, _)| name == "x-utf8")
            .map(|(_, value)| value.as_str()),
        Some("café")
    );
    assert_eq!(odd.header("Content-Length"), Some("3"));
    // A value that is not UTF-8 cannot be sent: a 500 instead.
    let latin1 = client.get("/latin1");
    assert_eq!(latin1.status, 500, "{latin1:?}");
    // `Connection: close` from the service closes the connection after the response.
    let bye = client.get("/bye");
    assert_eq!(bye.body_str(), "bye");
    assert!(bye.closes(), "{bye:?}");
    client.expect_nothing_more_then_close(Duration::from_secs(4));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let (server, _) = start(1);
    let mut client = server.connect();
    let mut batch = String::new();
    for i in 0..20 {
        batch.push_str(&format!(
            "GET /users/{i}/posts/p{i} HTTP/1.1\r\nHost: t\r\n\r\n"
        ));
    }
    client.send(batch);
    for (i, response) in client.responses(20).unwrap().iter().enumerate() {
        assert_eq!(response.body_str(), format!("user {i}, post p{i}"));
    }
}
