//! Request bodies an app reads as they arrive (`App::streams_body`):
//! uploads larger than `max_body_bytes`, by length or chunked, with
//! `100 Continue`, backpressure when the app reads slowly, and a close when
//! the app answers before the body ends. Over real sockets.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use shardd::http::StatusCode;
use shardd::{App, Request, Response};
use support::{config, Client, TestServer};

/// Counts the bytes of `/upload` bodies as they stream in; `/early` answers
/// without reading; anything else is buffered as usual.
struct Counter;

impl App for Counter {
    fn streams_body(&self, head: &Request<'_>) -> bool {
        matches!(head.path(), "/upload" | "/early" | "/slow")
    }

    async fn call(&self, request: &Request<'_>) -> Response {
        let Some(mut body) = request.body_stream() else {
            return Response::text(format!("buffered {}\n", request.body().len()));
        };
        match request.path() {
            "/early" => return Response::new(StatusCode::UNAUTHORIZED).with_body("no\n"),
            "/slow" => tokio::time::sleep(Duration::from_millis(1500)).await,
            _ => {}
        }
        let mut total = 0;
        while let Some(chunk) = body.chunk().await {
            match chunk {
                Ok(bytes) => total += bytes.len(),
                Err(error) => {
                    return Response::new(StatusCode::BAD_REQUEST).with_body(format!("{error}\n"))
                }
            }
        }
        Response::text(format!("streamed {total}\n"))
    }
}

fn start() -> TestServer {
    let mut config = config(1);
    config.limits.max_body_bytes = 1024;
    TestServer::start_with(config, |_| Counter)
}

/// Send `head` then `body` from another thread (the server may read slowly).
fn send_in_background(client: &Client, head: String, body: Vec<u8>) -> std::thread::JoinHandle<()> {
    let mut stream = client.stream().try_clone().unwrap();
    std::thread::spawn(move || {
        let _ = stream.write_all(head.as_bytes());
        let _ = stream.write_all(&body);
    })
}

#[test]
fn a_body_larger_than_the_limit_streams_to_the_app_by_length() {
    let server = start();
    let mut client = server.connect();
    let body = vec![b'x'; 3 << 20];
    let head = format!(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let sender = send_in_background(&client, head, body);
    assert_eq!(
        client.response().unwrap().body_str(),
        format!("streamed {}\n", 3 << 20)
    );
    sender.join().unwrap();
    // Kept alive: the next request on the connection is answered.
    assert_eq!(client.get("/other").status, 200);
}

#[test]
fn a_chunked_upload_streams_and_the_next_pipelined_request_follows() {
    let server = start();
    let mut client = server.connect();
    let mut body = Vec::new();
    for _ in 0..200 {
        body.extend_from_slice(format!("{:x}\r\n", 10_000).as_bytes());
        body.extend_from_slice(&[b'y'; 10_000]);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\nGET /after HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = "POST /upload HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n".to_owned();
    let sender = send_in_background(&client, head, body);
    assert_eq!(client.response().unwrap().body_str(), "streamed 2000000\n");
    assert_eq!(client.response().unwrap().body_str(), "buffered 0\n");
    sender.join().unwrap();
}

#[test]
fn expect_continue_is_answered_before_the_body_streams() {
    let server = start();
    let mut client = server.connect();
    client.send(
        "POST /upload HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\nExpect: 100-continue\r\n\r\n",
    );
    let interim = client.response().unwrap();
    assert_eq!(interim.status, 100);
    client.send(vec![b'z'; 5000]);
    assert_eq!(client.response().unwrap().body_str(), "streamed 5000\n");
}

#[test]
fn a_route_that_buffers_still_refuses_a_body_over_the_limit() {
    let server = start();
    let mut client = server.connect();
    client.send("POST /other HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n");
    assert_eq!(client.response().unwrap().status, 413);
}

#[test]
fn an_app_that_answers_before_the_body_ends_closes_the_connection() {
    let server = start();
    let mut client = server.connect();
    client.send("POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\npartial");
    let response = client.response().unwrap();
    assert_eq!(response.status, 401);
    assert!(
        response.closes(),
        "the unread body makes the connection unusable"
    );
}

#[test]
fn a_slow_reader_holds_the_client_back() {
    let server = start();
    let client = server.connect();
    // 256 MiB cannot all be written in the 1.5 s the app waits before
    // reading: the server reads no further than its window ahead of the app.
    let mut stream = client.stream().try_clone().unwrap();
    stream
        .set_write_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    stream
        .write_all(b"POST /slow HTTP/1.1\r\nHost: t\r\nContent-Length: 268435456\r\n\r\n")
        .unwrap();
    let started = Instant::now();
    let chunk = vec![b's'; 1 << 20];
    let mut written = 0usize;
    while started.elapsed() < Duration::from_millis(1000) {
        match stream.write(&chunk) {
            Ok(n) => written += n,
            Err(_) => break, // the write timed out: the server stopped reading
        }
    }
    assert!(
        written < 64 << 20,
        "{} MiB accepted while the app was not reading",
        written >> 20
    );
}

/// Answers at once with a body that echoes the request body as it reads it
/// (what the HTTP/2 chapter's example does): over HTTP/1.1 it can only
/// echo what has arrived by the time it answers.
struct EchoLater;

impl App for EchoLater {
    fn streams_body(&self, _head: &Request<'_>) -> bool {
        true
    }

    async fn call(&self, request: &Request<'_>) -> Response {
        let body = request.body_stream().expect("a streamed body");
        let chunks = futures_util::stream::unfold(body, |mut body| async move {
            Some((body.chunk().await?, body))
        });
        Response::new(StatusCode::OK).with_body(shardd::Body::stream(chunks))
    }
}

#[test]
fn a_response_that_reads_the_body_after_answering_gets_what_arrived_and_never_hangs() {
    let server = TestServer::start_with(config(1), |_| EchoLater);
    // A small body, sent with its head: the answer echoes it whole, and the
    // connection stays open for the next request.
    let mut client = server.connect();
    client.send(b"POST /a HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello");
    let response = client.response().expect("the echo");
    assert_eq!(
        (response.status, response.body.as_slice()),
        (200, &b"hello"[..])
    );
    client.send(b"POST /b HTTP/1.1\r\nHost: t\r\nContent-Length: 2\r\n\r\nok");
    assert_eq!(client.response().unwrap().body, b"ok");

    // A body still coming when the app answers: the response ends (cut,
    // so the client can tell) and the connection closes, at once.
    let mut client = server.connect();
    client.send(b"POST /c HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n\r\nfirst");
    let started = Instant::now();
    let (_, bytes) = client.read_until_closed(Duration::from_secs(5));
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
    let text = String::from_utf8_lossy(&bytes);
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(text.contains("first"), "what arrived is echoed: {text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the chunked body is not ended as if whole: {text}"
    );
}
