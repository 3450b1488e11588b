//! Per-connection limits and timeouts over real sockets: the status each
//! limit maps to, the close after it, and that the server keeps serving.
//!
//! The timeouts' exact durations (header, idle, body, send, drain grace,
//! and what restarts them) are tested on tokio's paused clock, over
//! in-memory pipes, in shardd-shards' `connection::tests::timeouts`. Here
//! each timeout set in the public config is seen to reach the shards over
//! TCP, with the close a socket sees (FIN, not RST) and the server's stats;
//! and a client that stops reading meets the kernel's socket buffers.

mod support;

use std::time::{Duration, Instant};

use support::{bounded_config, refused_and_closed, Closed, TestServer};

/// Small limits and short timeouts, set through the public config.
fn small_limits() -> shardd::Config {
    let mut config = bounded_config(1);
    config.limits.max_request_line = 64;
    config.limits.max_head_bytes = 256;
    config.limits.max_headers = 8;
    config.limits.max_body_bytes = 100;
    config.limits.header_timeout = std::time::Duration::from_millis(300);
    config.limits.idle_timeout = std::time::Duration::from_millis(300);
    config.limits.body_timeout = std::time::Duration::from_millis(300);
    config.limits.send_timeout = std::time::Duration::from_millis(300);
    config
}

/// A timeout fired about when configured: not early, not (much) late.
fn assert_about(elapsed: Duration, configured_ms: u64) {
    let configured = Duration::from_millis(configured_ms);
    assert!(
        elapsed + Duration::from_millis(20) >= configured,
        "fired early: {elapsed:?} < {configured:?}"
    );
    assert!(
        elapsed < configured + Duration::from_millis(1_500),
        "fired late: {elapsed:?} vs {configured:?}"
    );
}

#[test]
fn long_request_line_is_414() {
    let server = TestServer::start(small_limits());
    let raw = format!("GET /{} HTTP/1.1\r\nHost: t\r\n\r\n", "a".repeat(100));
    refused_and_closed(&server, raw.as_bytes(), 414);
    // Also before the line is complete.
    let partial = format!("GET /{}", "a".repeat(100));
    refused_and_closed(&server, partial.as_bytes(), 414);
}

#[test]
fn large_head_is_431() {
    let server = TestServer::start(small_limits());
    let raw = format!(
        "GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(300)
    );
    refused_and_closed(&server, raw.as_bytes(), 431);
    // Before the head is complete.
    let partial = format!("GET / HTTP/1.1\r\nHost: t\r\nX-Big: {}", "b".repeat(300));
    refused_and_closed(&server, partial.as_bytes(), 431);
}

#[test]
fn too_many_header_fields_is_431() {
    let server = TestServer::start(small_limits());
    let mut raw = String::from("GET / HTTP/1.1\r\nHost: t\r\n");
    for i in 0..10 {
        raw.push_str(&format!("X-{i}: {i}\r\n"));
    }
    raw.push_str("\r\n");
    refused_and_closed(&server, raw.as_bytes(), 431);
    let stats = server.stats();
    assert_eq!(stats.shards[0].bad_requests, 1, "{stats:#?}");
}

#[test]
fn content_length_over_the_limit_is_413() {
    let server = TestServer::start(small_limits());
    // Refused on the head alone, with or without the body following.
    refused_and_closed(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 101\r\n\r\n",
        413,
    );
    let mut raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n".to_vec();
    raw.extend(std::iter::repeat_n(b'z', 5000));
    refused_and_closed(&server, &raw, 413);
    // At the limit it is served.
    let mut client = server.connect();
    let mut raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n".to_vec();
    raw.extend([b'y'; 100]);
    client.send(&raw);
    let response = client.response().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, [b'y'; 100]);
}

#[test]
fn chunked_body_over_the_limit_is_413() {
    let server = TestServer::start(small_limits());
    // One chunk over the limit (0x65 = 101), refused before its data arrives.
    refused_and_closed(
        &server,
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n65\r\n",
        413,
    );
    // Chunks that only add up to more than the limit.
    let mut raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..3 {
        raw.extend_from_slice(b"28\r\n");
        raw.extend([b'c'; 40]);
        raw.extend_from_slice(b"\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    refused_and_closed(&server, &raw, 413);
    // Within the limit it is served, de-chunked.
    let mut client = server.connect();
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
    );
    let response = client.response().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"hello world");
}

#[test]
fn slowloris_partial_head_gets_408_within_header_timeout() {
    let server = TestServer::start(small_limits());
    let mut client = server.connect();
    let started = Instant::now();
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n");
    let response = client.response().expect("a 408, not silence");
    assert_eq!(response.status, 408, "{response:?}");
    assert!(response.closes());
    assert_about(started.elapsed(), 300);
    client.expect_nothing_more_then_close(Duration::from_secs(4));
    let stats = server.stats();
    assert!(stats.shards[0].timeouts >= 1, "{stats:#?}");
    server.assert_serves();
}

#[test]
fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    let mut config = small_limits();
    config.limits.idle_timeout = std::time::Duration::from_millis(400);
    config.limits.header_timeout = std::time::Duration::from_millis(5_000);
    let server = TestServer::start(config);
    let mut client = server.connect();
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = client.response().unwrap();
    assert_eq!(response.status, 200);
    assert!(!response.closes(), "keep-alive: {response:?}");
    let idle_since = Instant::now();
    // No response on an idle close.
    let closed = client.expect_nothing_more_then_close(Duration::from_secs(4));
    assert_about(idle_since.elapsed(), 400);
    assert_eq!(closed, Closed::Eof, "an idle close is orderly");
    server.wait_stats("connection gone", Duration::from_secs(2), |s| {
        s.open_connections() == 0
    });
}

#[test]
fn stalled_content_length_body_gets_408() {
    let server = TestServer::start(small_limits());
    let mut client = server.connect();
    client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n0123456789");
    let stalled_at = Instant::now();
    let response = client.response().expect("a 408");
    assert_eq!(response.status, 408, "{response:?}");
    assert!(response.closes());
    assert_about(stalled_at.elapsed(), 300);
    client.expect_nothing_more_then_close(Duration::from_secs(4));
    server.assert_serves();
}

#[test]
fn client_that_never_reads_is_bounded_and_cut_after_send_timeout() {
    let mut config = small_limits();
    config.limits.max_output_bytes = 16 * 1024;
    config.limits.send_timeout = std::time::Duration::from_millis(700);
    config.limits.idle_timeout = std::time::Duration::from_millis(5_000);
    config.limits.header_timeout = std::time::Duration::from_millis(5_000);
    let server = TestServer::start(config);

    // A small receive buffer on the client so the stall comes quickly.
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .set_write_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    socket
        .connect_timeout(&server.addr.into(), Duration::from_secs(5))
        .unwrap();
    let mut greedy: std::net::TcpStream = socket.into();

    // 1000 pipelined requests for 64 KiB each (~64 MB if all were answered), never read.
    const REQUESTS: u64 = 1000;
    let request = b"GET /big?n=65536 HTTP/1.1\r\nHost: t\r\n\r\n";
    let mut all = Vec::new();
    for _ in 0..REQUESTS {
        all.extend_from_slice(request);
    }
    use std::io::Write;
    let sent = greedy.write_all(&all);
    assert!(
        sent.is_ok(),
        "the requests fit in the socket buffers: {sent:?}"
    );

    server.wait_stats(
        "the server to start answering",
        Duration::from_secs(5),
        |s| s.requests() > 0,
    );
    std::thread::sleep(Duration::from_millis(100));
    // Other clients are served while that connection is stuck.
    let before = Instant::now();
    server.assert_serves();
    assert!(before.elapsed() < Duration::from_millis(500));

    // The stuck connection is closed after the send timeout...
    let stats = server.wait_stats("the stuck connection closed", Duration::from_secs(5), |s| {
        s.open_connections() == 0
    });
    assert!(stats.shards[0].timeouts >= 1, "{stats:#?}");
    // ...having answered only what fits in the socket buffers and the output bound.
    let answered = stats.requests() - 1;
    eprintln!("answered {answered} of {REQUESTS} pipelined requests before the cut");
    assert!(
        answered < REQUESTS / 2,
        "output must be bounded: answered {answered} of {REQUESTS} without the client reading"
    );
    // The server still serves.
    server.assert_serves();
    drop(greedy);
}

#[test]
fn expect_100_continue_gets_an_interim_100() {
    let server = TestServer::start(small_limits());
    let mut client = server.connect();
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n",
    );
    let interim = client
        .response_within(Duration::from_secs(2))
        .expect("an interim 100 before the body is sent");
    assert_eq!(interim.status, 100, "{interim:?}");
    client.send(b"hello");
    let response = client.response().unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, b"hello");
    // The next request on the same connection gets no stray 100.
    client.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nhi");
    let response = client.response().unwrap();
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, b"hi");
}

#[test]
fn expect_100_continue_over_the_limit_gets_413_not_100() {
    let server = TestServer::start(small_limits());
    let mut client = server.connect();
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\nExpect: 100-continue\r\n\r\n",
    );
    let response = client.response().unwrap();
    assert_eq!(response.status, 413, "{response:?}");
}

#[test]
fn chunk_extensions_do_not_bypass_the_body_limit() {
    let server = TestServer::start(small_limits());
    // 90 one-byte chunks, each with a 900-byte extension: ~81 KB on the
    // wire, 90 bytes decoded. With max_body_bytes = 100 and max_head_bytes =
    // 256 the server must not buffer and accept ~800x its body limit (each
    // line is under the 1 KiB chunk-line cap, so nothing else stops it).
    let mut raw = b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    for _ in 0..90 {
        raw.extend_from_slice(b"1;");
        raw.extend(std::iter::repeat_n(b'e', 900));
        raw.extend_from_slice(b"\r\nx\r\n");
    }
    raw.extend_from_slice(b"0\r\n\r\n");
    let mut client = server.connect();
    let _ = client.try_send(&raw);
    let response = client.response().expect("a response");
    assert!(
        [400, 413, 431].contains(&response.status),
        "{} bytes of chunked framing for a {}-byte body were accepted: {} {}",
        raw.len(),
        response.body.len(),
        response.status,
        response.reason
    );
}

#[test]
fn http_1_0_expect_continue_gets_no_interim_response() {
    let server = TestServer::start(small_limits());
    let mut client = server.connect();
    client.send(b"POST /echo HTTP/1.0\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    std::thread::sleep(Duration::from_millis(50));
    client.send(b"hi");
    let response = client.response().unwrap();
    assert_eq!(
        response.status, 200,
        "RFC 9110 §10.1.1: ignore Expect from HTTP/1.0: {response:?}"
    );
    assert_eq!(response.body, b"hi");
}

/// Spends `n` units of its task's tokio budget (`/spend?n=N`), then answers.
struct BudgetSpender;

impl shardd::App for BudgetSpender {
    async fn call(&self, request: &shardd::Request<'_>) -> shardd::Response {
        let n: u32 = request
            .query()
            .and_then(|query| query.strip_prefix("n="))
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        for _ in 0..n {
            tokio::task::coop::consume_budget().await;
        }
        shardd::Response::text("spent")
    }
}

#[test]
fn idle_timeout_fires_after_an_app_that_spent_its_tasks_budget() {
    // tokio turns away a poll once the task's budget (128 units) is spent; an
    // app that stops right at that point must not leave the connection's
    // timer unarmed. Every count around the budget, each on its own connection.
    let mut config = bounded_config(1);
    config.limits.idle_timeout = Duration::from_millis(150);
    let server = TestServer::start_with(config, |_| BudgetSpender);
    let mut clients: Vec<_> = (110..140u32)
        .map(|n| {
            let mut client = server.connect();
            assert_eq!(client.get(&format!("/spend?n={n}")).status, 200);
            (n, client)
        })
        .collect();
    for (n, client) in &mut clients {
        let closed = client.expect_nothing_more_then_close(Duration::from_secs(3));
        assert_eq!(closed, Closed::Eof, "n={n}");
    }
}
