//! HTTP/1.1 behaviour a client sees, over real TCP connections.

mod support;

use std::time::Duration;

use shardd::TechEmpower;
use support::{assert_valid_date, config, echo_app, TestServer};

const GET_PLAINTEXT: &str = "GET /plaintext HTTP/1.1\r\nHost: test\r\n\r\n";

/// Two shards serving the TechEmpower app.
fn techempower() -> TestServer {
    TestServer::start_with(config(2), |_| TechEmpower)
}

/// Two shards serving [`echo_app`].
fn echo() -> TestServer {
    TestServer::start_with(config(2), |_| echo_app())
}

#[test]
fn plaintext_has_exact_body_and_headers() {
    let server = techempower();
    let mut client = server.connect();
    let response = client.get("/plaintext");
    assert_eq!(response.version, "HTTP/1.1");
    assert_eq!(response.status, 200);
    assert_eq!(response.reason, "OK");
    assert_eq!(response.body, b"Hello, World!");
    assert_eq!(response.header("Content-Type"), Some("text/plain"));
    assert_eq!(response.header("Content-Length"), Some("13"));
    assert_eq!(response.header("Server"), Some("shardd"));
    assert_valid_date(response.header("Date").expect("a Date header"));
    assert!(!response.closes(), "HTTP/1.1 keeps the connection open");
}

#[test]
fn json_has_exact_body_and_headers() {
    let server = techempower();
    let mut client = server.connect();
    let response = client.get("/json");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, br#"{"message":"Hello, World!"}"#);
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert_eq!(response.header("Content-Length"), Some("27"));
    assert_eq!(response.header("Server"), Some("shardd"));
    assert_valid_date(response.header("Date").expect("a Date header"));
}

#[test]
fn unknown_path_is_404() {
    let server = techempower();
    let mut client = server.connect();
    let response = client.get("/nope");
    assert_eq!(response.status, 404);
    assert_eq!(response.body, b"not found\n");
    // The connection survives a 404.
    assert_eq!(client.get("/plaintext").body, b"Hello, World!");
}

#[test]
fn sixteen_pipelined_requests_in_one_write_are_answered_in_order() {
    let server = techempower();
    let mut client = server.connect();
    let paths: Vec<String> = (0..16)
        .map(|i| match i % 3 {
            0 => "/plaintext".to_string(),
            1 => "/json".to_string(),
            _ => format!("/missing/{i}"),
        })
        .collect();
    let batch: String = paths
        .iter()
        .map(|p| format!("GET {p} HTTP/1.1\r\nHost: test\r\n\r\n"))
        .collect();
    client.send(batch);
    for (i, response) in client.responses(16).unwrap().into_iter().enumerate() {
        let (status, body): (u16, &[u8]) = match i % 3 {
            0 => (200, b"Hello, World!"),
            1 => (200, br#"{"message":"Hello, World!"}"#),
            _ => (404, b"not found\n"),
        };
        assert_eq!(
            (response.status, response.body.as_slice()),
            (status, body),
            "response {i} (to {})",
            paths[i]
        );
    }
    client.expect_silent_and_open(Duration::from_millis(100));
}

#[test]
fn sixteen_pipelined_distinct_targets_are_answered_in_order() {
    let server = echo();
    let mut client = server.connect();
    let batch: String = (0..16)
        .map(|i| format!("GET /path/{i}?q={i} HTTP/1.1\r\nHost: test\r\n\r\n"))
        .collect();
    client.send(batch);
    let bodies: Vec<String> = client
        .responses(16)
        .unwrap()
        .iter()
        .map(|r| r.body_str().to_string())
        .collect();
    let expected: Vec<String> = (0..16).map(|i| format!("/path/{i}?q={i}")).collect();
    assert_eq!(bodies, expected);
}

#[test]
fn request_sent_one_byte_per_write_is_answered() {
    let server = techempower();
    let mut client = server.connect();
    for byte in GET_PLAINTEXT.bytes() {
        client.send([byte]);
        std::thread::sleep(Duration::from_millis(1));
    }
    let response = client.response().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"Hello, World!");
    // The connection is still usable afterwards.
    assert_eq!(client.get("/json").status, 200);
}

#[test]
fn post_body_then_pipelined_get_in_one_write() {
    let server = echo();
    let mut client = server.connect();
    client.send(
        "POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 11\r\n\r\nhello world\
         GET /plaintext HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    let [post, get] = <[_; 2]>::try_from(client.responses(2).unwrap()).unwrap();
    assert_eq!(post.status, 200);
    assert_eq!(post.body_str(), "POST /echo len=11 body=hello world");
    assert_eq!(get.status, 200);
    assert_eq!(get.body, b"Hello, World!");
}

#[test]
fn body_split_across_writes_is_reassembled() {
    let server = echo();
    let mut client = server.connect();
    client.send("POST /echo HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\r\n01234");
    client.expect_silent_and_open(Duration::from_millis(100));
    client.send("56789");
    assert_eq!(
        client.response().unwrap().body_str(),
        "POST /echo len=10 body=0123456789"
    );
}

#[test]
fn chunked_post_then_pipelined_get_in_one_write() {
    let server = echo();
    let mut client = server.connect();
    client.send(
        "POST /echo HTTP/1.1\r\nHost: test\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n\
         GET /plaintext HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    let [post, get] = <[_; 2]>::try_from(client.responses(2).unwrap()).unwrap();
    assert_eq!(post.status, 200);
    assert_eq!(post.body_str(), "POST /echo len=11 body=hello world");
    assert_eq!(get.body, b"Hello, World!");
}

#[test]
fn head_has_headers_but_no_body_and_pipelining_continues() {
    let server = techempower();
    let mut client = server.connect();
    client.send(
        "HEAD /plaintext HTTP/1.1\r\nHost: test\r\n\r\n\
         GET /json HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    let head = client.response_to_head().unwrap();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("Content-Length"), Some("13"));
    assert_eq!(head.header("Content-Type"), Some("text/plain"));
    assert!(head.body.is_empty());
    // Had the HEAD response carried a body, this would not parse as a status line.
    let get = client.response().unwrap();
    assert_eq!(get.status, 200);
    assert_eq!(get.body, br#"{"message":"Hello, World!"}"#);
}

#[test]
fn http_1_0_is_answered_then_closed() {
    let server = techempower();
    let mut client = server.connect();
    client.send("GET /plaintext HTTP/1.0\r\n\r\n");
    let response = client.response().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"Hello, World!");
    client.expect_nothing_more_then_close(Duration::from_secs(3));
}

#[test]
fn http_1_0_keep_alive_stays_open() {
    let server = techempower();
    let mut client = server.connect();
    let request = "GET /plaintext HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    client.send(request);
    let first = client.response().unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.header("Connection"), Some("keep-alive"));
    client.expect_silent_and_open(Duration::from_millis(100));
    client.send(request);
    let second = client.response().unwrap();
    assert_eq!(second.body, b"Hello, World!");
}

#[test]
fn connection_close_is_honoured() {
    let server = techempower();
    let mut client = server.connect();
    // A request pipelined after the `close` one must not be answered.
    client.send(
        "GET /plaintext HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n\
         GET /json HTTP/1.1\r\nHost: test\r\n\r\n",
    );
    let response = client.response().unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"Hello, World!");
    assert!(response.closes(), "headers: {:?}", response.headers);
    client.expect_nothing_more_then_close(Duration::from_secs(3));
}

#[test]
fn malformed_request_gets_400_and_close_then_new_connection_is_served() {
    let server = techempower();
    let mut client = server.connect();
    client.send("this is not http\r\n\r\n");
    let response = client.response().unwrap();
    assert_eq!(response.status, 400);
    assert!(response.closes(), "headers: {:?}", response.headers);
    client.expect_nothing_more_then_close(Duration::from_secs(3));

    let mut fresh = server.connect();
    assert_eq!(fresh.get("/plaintext").body, b"Hello, World!");
}
