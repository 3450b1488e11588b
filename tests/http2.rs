//! HTTP/2 over real sockets: curl and h2load as users run them, and the
//! `h2` crate's client (what hyper's client is built on) for what curl
//! cannot show: trailers, a full-duplex stream, a reset, a client that
//! does not read.
//!
//! Every wait has a deadline, so a misbehaving server fails a test instead
//! of hanging it.

mod support;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use shardd::{App, Body, BodyFrame, Config, Request, Response, TechEmpower, TlsConfig};
use support::{config, echo_app, TestServer};
use tokio::net::TcpStream;

/// Longest any client step may take.
const STEP: Duration = Duration::from_secs(10);

// ---------------------------------------------------------------------------
// curl and h2load

/// Run `program` with `args`, bounded in time by curl's own `--max-time` or h2load's count.
fn run(program: &str, args: &[&str]) -> Output {
    Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|error| {
            panic!("cannot run {program} ({error}): the README's test command installs it")
        })
}

/// `curl -sS -i ARGS URL`: the exit status and what it printed (head and body).
fn curl(args: &[&str], url: &str) -> (bool, String) {
    let mut all = vec!["-sS", "-i", "--max-time", "10"];
    all.extend_from_slice(args);
    all.push(url);
    let output = run("curl", &all);
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

fn plaintext_server(mut config: Config) -> TestServer {
    config.shards = 1;
    TestServer::start_with(config, |_| TechEmpower)
}

#[test]
fn cleartext_http2_with_prior_knowledge_and_http11_share_one_port() {
    let server = plaintext_server(config(1));
    let url = format!("http://{}/plaintext", server.addr);
    let (ok, text) = curl(&["--http2-prior-knowledge"], &url);
    assert!(ok, "{text}");
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.contains("content-length: 13"), "{text}");
    assert!(text.contains("date: "), "{text}");
    assert!(text.ends_with("Hello, World!"), "{text}");

    let (ok, text) = curl(&["--http1.1"], &url);
    assert!(ok && text.starts_with("HTTP/1.1 200"), "{text}");
    assert_eq!(server.stats().shards[0].http2.connections, 1);
}

#[test]
fn h2load_many_multiplexed_streams_on_a_few_connections_all_succeed() {
    let server = plaintext_server(config(1));
    let url = format!("http://{}/plaintext", server.addr);
    let output = run("h2load", &["-n", "4000", "-c", "4", "-m", "50", &url]);
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{report}");
    assert!(
        report.contains("4000 succeeded, 0 failed, 0 errored"),
        "{report}"
    );
    assert!(report.contains("status codes: 4000 2xx"), "{report}");
    let shard = &server.stats().shards[0];
    assert_eq!(shard.http2.connections, 4);
    assert!(shard.requests >= 4000, "{shard:?}");
}

/// A self-signed certificate for `localhost`, as PEM files in a fresh directory.
fn certificate() -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!(
        "shardd-http2-{}-{}",
        std::process::id(),
        rand_suffix()
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    (cert_path, key_path)
}

fn rand_suffix() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    NEXT.fetch_add(1, SeqCst)
}

fn tls_config(http2: bool) -> Config {
    let (cert, key) = certificate();
    let mut config = config(1);
    config.tls = Some(TlsConfig::new(cert, key));
    config.http2.enabled = http2;
    config
}

#[test]
fn over_tls_alpn_chooses_h2_and_a_client_asking_for_http11_gets_it() {
    let server = plaintext_server(tls_config(true));
    let url = format!("https://localhost:{}/plaintext", server.addr.port());
    let (ok, text) = curl(&["-k", "--http2"], &url);
    assert!(ok, "{text}");
    assert!(text.starts_with("HTTP/2 200"), "{text}");
    assert!(text.ends_with("Hello, World!"), "{text}");

    let (ok, text) = curl(&["-k", "--http1.1"], &url);
    assert!(ok && text.starts_with("HTTP/1.1 200"), "{text}");
    let shard = &server.stats().shards[0];
    assert_eq!((shard.http2.connections, shard.tls_handshakes), (1, 2));
}

#[test]
fn with_http2_off_tls_offers_http11_only_and_the_preface_is_refused() {
    let server = plaintext_server(tls_config(false));
    let url = format!("https://localhost:{}/plaintext", server.addr.port());
    let (ok, text) = curl(&["-k", "--http2"], &url);
    assert!(ok && text.starts_with("HTTP/1.1 200"), "{text}");

    let mut plain = config(1);
    plain.http2.enabled = false;
    let server = plaintext_server(plain);
    let url = format!("http://{}/plaintext", server.addr);
    let (ok, text) = curl(&["--http2-prior-knowledge"], &url);
    assert!(!ok, "prior knowledge must fail with HTTP/2 off: {text}");
    assert_eq!(server.stats().shards[0].http2.connections, 0);
}

// ---------------------------------------------------------------------------
// The h2 crate's client

/// A client connection on its own current-thread runtime.
struct H2Client {
    runtime: tokio::runtime::Runtime,
    send: h2::client::SendRequest<Bytes>,
}

impl H2Client {
    fn connect(addr: SocketAddr) -> H2Client {
        Self::connect_with(addr, h2::client::Builder::new())
    }

    fn connect_with(addr: SocketAddr, builder: h2::client::Builder) -> H2Client {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let send = runtime.block_on(async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let (send, connection) = builder.handshake(tcp).await.expect("HTTP/2 handshake");
            tokio::spawn(async move {
                let _ = connection.await;
            });
            send
        });
        H2Client { runtime, send }
    }

    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        self.runtime.block_on(async {
            tokio::time::timeout(STEP, future)
                .await
                .expect("client step timed out")
        })
    }

    /// Send `method path` with `body`; the status, the whole body and the trailers.
    fn request(
        &mut self,
        method: &str,
        path: &str,
        body: &[u8],
    ) -> (u16, Vec<u8>, Option<http::HeaderMap>) {
        let request = http::Request::builder()
            .method(method)
            .uri(format!("http://localhost{path}"))
            .body(())
            .unwrap();
        let send = self.send.clone();
        let body = Bytes::copy_from_slice(body);
        self.block_on(async move {
            let mut send = send.ready().await.unwrap();
            let (response, mut stream) = send.send_request(request, body.is_empty()).unwrap();
            if !body.is_empty() {
                stream.send_data(body, true).unwrap();
            }
            let response = response.await.expect("response head");
            let status = response.status().as_u16();
            let mut received = response.into_body();
            let mut bytes = Vec::new();
            while let Some(chunk) = received.data().await {
                let chunk = chunk.expect("body chunk");
                let _ = received.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            let trailers = received.trailers().await.expect("trailers");
            (status, bytes, trailers)
        })
    }
}

/// Streams `n` chunks `part0;part1;…`, then trailers `grpc-status: 0`.
fn body_with_trailers(n: usize) -> Body {
    let mut frames: Vec<Result<BodyFrame, std::io::Error>> = (0..n)
        .map(|i| Ok(BodyFrame::Data(Bytes::from(format!("part{i};")))))
        .collect();
    let mut trailers = http::HeaderMap::new();
    trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
    trailers.insert("grpc-message", http::HeaderValue::from_static("done"));
    frames.push(Ok(BodyFrame::Trailers(trailers)));
    Body::stream_with_trailers(stream::iter(frames))
}

#[test]
fn a_streamed_body_and_its_trailers_reach_the_client() {
    let server = TestServer::start_with(config(1), |_| {
        shardd::app_fn(|_| Response::new(http::StatusCode::OK).with_body(body_with_trailers(3)))
    });
    let mut client = H2Client::connect(server.addr);
    let (status, body, trailers) = client.request("GET", "/", b"");
    assert_eq!(status, 200);
    assert_eq!(body, b"part0;part1;part2;");
    let trailers = trailers.expect("trailers after the body");
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(trailers["grpc-message"], "done");
}

#[test]
fn buffered_request_bodies_reach_the_app_and_an_oversized_one_gets_413() {
    let mut config = config(1);
    config.limits.max_body_bytes = 1024;
    let server = TestServer::start_with(config, |_| echo_app());
    let mut client = H2Client::connect(server.addr);
    let (status, body, _) = client.request("POST", "/echo?x=1", b"hello");
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&body),
        "POST /echo?x=1 len=5 body=hello"
    );
    let (status, _, _) = client.request("POST", "/echo", &[b'x'; 4096]);
    assert_eq!(status, 413);
    // The connection survives a refused stream.
    let (status, _, _) = client.request("GET", "/plaintext", b"");
    assert_eq!(status, 200);
}

/// Echoes a streamed request body upper-cased, chunk by chunk, from its
/// response body: it answers before the request has ended.
struct UpperEcho;

impl App for UpperEcho {
    async fn call(&self, request: &Request<'_>) -> Response {
        let Some(body) = request.body_stream() else {
            return Response::text("no stream");
        };
        let chunks = futures_util::stream::unfold(body, |mut body| async move {
            let chunk = body.chunk().await?;
            let upper = chunk.map(|chunk| Bytes::from(chunk.to_ascii_uppercase()));
            Some((upper, body))
        });
        Response::new(http::StatusCode::OK).with_body(Body::stream(chunks))
    }

    fn streams_body(&self, _head: &Request<'_>) -> bool {
        true
    }
}

#[test]
fn a_bidirectional_stream_answers_each_piece_while_the_client_still_sends() {
    let server = TestServer::start_with(config(1), |_| UpperEcho);
    let client = H2Client::connect(server.addr);
    let send = client.send.clone();
    client.block_on(async move {
        let mut send = send.ready().await.unwrap();
        let request = http::Request::post("http://localhost/chat")
            .body(())
            .unwrap();
        let (response, mut outgoing) = send.send_request(request, false).unwrap();
        outgoing
            .send_data(Bytes::from_static(b"ping one"), false)
            .unwrap();
        let response = response
            .await
            .expect("the head comes before the request ends");
        assert_eq!(response.status(), 200);
        let mut incoming = response.into_body();
        for (sent, expected) in [
            (&b"ping two"[..], &b"PING ONE"[..]),
            (b"ping three", b"PING TWO"),
        ] {
            let echoed = incoming.data().await.expect("an echo").unwrap();
            assert_eq!(&echoed[..], expected);
            let _ = incoming.flow_control().release_capacity(echoed.len());
            outgoing.send_data(Bytes::from_static(sent), false).unwrap();
        }
        let last = incoming.data().await.expect("the last echo").unwrap();
        assert_eq!(&last[..], b"PING THREE");
        outgoing.send_data(Bytes::new(), true).unwrap();
        // The end of the stream may come as an empty DATA frame.
        while let Some(after) = incoming.data().await {
            assert_eq!(after.unwrap(), "", "nothing after the last echo");
        }
    });
}

/// Never answers; says when its future is dropped.
struct Hang {
    dropped: Arc<AtomicBool>,
}

struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, SeqCst);
    }
}

impl App for Hang {
    async fn call(&self, _request: &Request<'_>) -> Response {
        let _guard = SetOnDrop(self.dropped.clone());
        std::future::pending::<()>().await;
        Response::text("never")
    }
}

#[test]
fn a_stream_the_client_resets_drops_its_handler() {
    let dropped = Arc::new(AtomicBool::new(false));
    let seen = dropped.clone();
    let server = TestServer::start_with(config(1), move |_| Hang {
        dropped: seen.clone(),
    });
    let client = H2Client::connect(server.addr);
    let send = client.send.clone();
    client.block_on(async move {
        let mut send = send.ready().await.unwrap();
        let request = http::Request::get("http://localhost/hang")
            .body(())
            .unwrap();
        let (response, mut stream) = send.send_request(request, true).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!dropped.load(SeqCst), "the handler runs until the reset");
        stream.send_reset(h2::Reason::CANCEL);
        drop(response);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        while !dropped.load(SeqCst) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(
            dropped.load(SeqCst),
            "the reset dropped the handler's future"
        );
    });
    server.wait_stats("the reset counted", STEP, |stats| {
        stats.shards[0].http2.resets_by_client == 1
    });
}

#[test]
fn a_client_that_does_not_read_holds_the_producer_to_its_window() {
    let produced = Arc::new(AtomicUsize::new(0));
    let counter = produced.clone();
    let server = TestServer::start_with(config(1), move |_| {
        let counter = counter.clone();
        shardd::app_fn(move |_| {
            let counter = counter.clone();
            // An endless body of 16 KiB chunks, counted as they are made.
            let chunks = stream::repeat_with(move || {
                counter.fetch_add(1, SeqCst);
                Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 16 * 1024]))
            });
            Response::new(http::StatusCode::OK).with_body(Body::stream(chunks))
        })
    });
    let client = H2Client::connect(server.addr);
    let send = client.send.clone();
    client.block_on(async move {
        let mut send = send.ready().await.unwrap();
        let request = http::Request::get("http://localhost/endless")
            .body(())
            .unwrap();
        let (response, _stream) = send.send_request(request, true).unwrap();
        let response = response.await.unwrap();
        // Read nothing for a while: the 64 KiB default window fills.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let held = produced.load(SeqCst);
        // The window (4 chunks), the chunk waiting for room, and h2's
        // send buffer: a producer polled regardless would be in the thousands.
        assert!(held <= 24, "{held} chunks made for a client that read none");
        // Reading lets it go on.
        let mut body = response.into_body();
        let mut read = 0;
        while read < 1024 * 1024 {
            let chunk = body.data().await.unwrap().unwrap();
            read += chunk.len();
            let _ = body.flow_control().release_capacity(chunk.len());
        }
        assert!(produced.load(SeqCst) >= 64);
    });
}

#[test]
fn a_drain_finishes_the_open_stream_then_closes_the_connection() {
    let server = TestServer::start(config(1));
    server.controls.hold();
    let client = H2Client::connect(server.addr);
    let send = client.send.clone();
    let handle = &server.handle;
    let controls = server.controls.clone();
    client.block_on(async move {
        let mut send = send.ready().await.unwrap();
        let request = http::Request::get("http://localhost/hold")
            .body(())
            .unwrap();
        let (response, _) = send.send_request(request, true).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        handle.drain();
        tokio::time::sleep(Duration::from_millis(100)).await;
        controls.release();
        let response = response.await.expect("the open stream is answered");
        assert_eq!(response.status(), 200);
        let body = response.into_body().data().await.unwrap().unwrap();
        assert_eq!(&body[..], b"released");
        // The GOAWAY said no new streams: a new request is refused.
        let refused = async {
            let mut send = send.ready().await?;
            let request = http::Request::get("http://localhost/").body(()).unwrap();
            let (response, _) = send.send_request(request, true)?;
            response.await.map(|_| ())
        };
        assert!(refused.await.is_err(), "no stream after the GOAWAY");
    });
    let goaways = server.stats().shards[0].http2.goaways_by_reason;
    assert_eq!(goaways[0], 1, "one graceful GOAWAY: {goaways:?}");
}

#[test]
fn the_router_and_an_axum_router_answer_http2_streams_unchanged() {
    let server = TestServer::start_with(config(1), |_| shardd::techempower_router());
    let mut client = H2Client::connect(server.addr);
    let (status, body, _) = client.request("GET", "/json", b"");
    assert_eq!(
        (status, body.as_slice()),
        (200, &br#"{"message":"Hello, World!"}"#[..])
    );
    let (status, _, _) = client.request("GET", "/nowhere", b"");
    assert_eq!(status, 404);

    use axum::routing::{get, post};
    let server = TestServer::start_with(config(1), |_| {
        shardd::tower::serve_tower(
            axum::Router::new()
                .route(
                    "/hello/{name}",
                    get(
                        |axum::extract::Path(name): axum::extract::Path<String>| async move {
                            format!("hello {name}")
                        },
                    ),
                )
                .route(
                    "/sum",
                    post(|axum::Json(numbers): axum::Json<Vec<i64>>| async move {
                        numbers.iter().sum::<i64>().to_string()
                    }),
                ),
        )
    });
    let mut client = H2Client::connect(server.addr);
    let (status, body, _) = client.request("GET", "/hello/h2", b"");
    assert_eq!((status, body.as_slice()), (200, &b"hello h2"[..]));
    let request = http::Request::post("http://localhost/sum")
        .header("content-type", "application/json")
        .body(())
        .unwrap();
    let send = client.send.clone();
    let (status, body) = client.block_on(async move {
        let mut send = send.ready().await.unwrap();
        let (response, mut outgoing) = send.send_request(request, false).unwrap();
        outgoing
            .send_data(Bytes::from_static(b"[1,2,"), false)
            .unwrap();
        outgoing
            .send_data(Bytes::from_static(b"39]"), true)
            .unwrap();
        let response = response.await.unwrap();
        let status = response.status().as_u16();
        let mut body = response.into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        (status, bytes)
    });
    assert_eq!((status, body.as_slice()), (200, &b"42"[..]));
}

#[test]
fn a_stream_reset_while_its_body_is_read_counts_as_a_reset_not_a_response() {
    let server = TestServer::start_with(config(1), |_| echo_app());
    let client = H2Client::connect(server.addr);
    let send = client.send.clone();
    client.block_on(async move {
        let mut send = send.ready().await.unwrap();
        let request = http::Request::post("http://localhost/echo")
            .body(())
            .unwrap();
        let (_response, mut stream) = send.send_request(request, false).unwrap();
        stream
            .send_data(Bytes::from_static(b"part of a body"), false)
            .unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        stream.send_reset(h2::Reason::CANCEL);
        tokio::time::sleep(Duration::from_millis(100)).await;
    });
    let shard = server
        .wait_stats("the reset counted", STEP, |stats| {
            stats.shards[0].http2.resets_by_client == 1
        })
        .shards[0]
        .clone();
    assert_eq!(shard.requests, 0, "no response was sent: {shard:?}");
    assert_eq!(shard.responses_by_class, [0; 5]);
}

/// Reads a streamed request body to its end, then answers with its length
/// and the value of the request's `x-checksum` trailer.
struct TrailerReader;

impl App for TrailerReader {
    fn streams_body(&self, _head: &Request<'_>) -> bool {
        true
    }

    async fn call(&self, request: &Request<'_>) -> Response {
        let mut body = request.body_stream().expect("a streamed body");
        let mut length = 0;
        while let Some(chunk) = body.chunk().await {
            length += chunk.expect("a chunk").len();
        }
        let checksum = body
            .trailers()
            .and_then(|trailers| trailers.get("x-checksum")?.to_str().ok().map(str::to_owned))
            .unwrap_or_else(|| "none".to_owned());
        Response::text(format!("{length} bytes, checksum {checksum}"))
    }
}

#[test]
fn request_trailers_reach_an_app_that_streams_the_body() {
    let server = TestServer::start_with(config(1), |_| TrailerReader);
    let client = H2Client::connect(server.addr);
    let send = client.send.clone();
    let answer = client.block_on(async move {
        let mut send = send.ready().await.unwrap();
        let request = http::Request::post("http://localhost/upload")
            .body(())
            .unwrap();
        let (response, mut outgoing) = send.send_request(request, false).unwrap();
        outgoing
            .send_data(Bytes::from_static(b"12345"), false)
            .unwrap();
        outgoing
            .send_data(Bytes::from_static(b"678"), false)
            .unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-checksum", http::HeaderValue::from_static("abc123"));
        outgoing.send_trailers(trailers).unwrap();
        let mut body = response.await.unwrap().into_body();
        let mut bytes = Vec::new();
        while let Some(chunk) = body.data().await {
            bytes.extend_from_slice(&chunk.unwrap());
        }
        String::from_utf8(bytes).unwrap()
    });
    assert_eq!(answer, "8 bytes, checksum abc123");
}
