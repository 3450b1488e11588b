//! A real tonic service (`shardd_grpc::Greeter`) on a shardd server,
//! through the tower adapter, called by tonic's own client over cleartext
//! HTTP/2 and over TLS: every kind of call, an error status, deadlines,
//! cancellation; and a gRPC call over HTTP/1.1, refused.
//!
//! Every call is bounded in time, so a server that misbehaves fails a test
//! instead of hanging it.

use std::future::Future;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use prost::Message;
use shardd::tower::serve_tower;
use shardd::{Config, Server, ServerHandle, TlsConfig};
use shardd_grpc::proto::greeter_client::GreeterClient;
use shardd_grpc::proto::{CountdownRequest, HelloReply, HelloRequest};
use shardd_grpc::Greeter;
use tokio_stream::StreamExt;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};
use tonic::Code;

/// Longest any call may take.
const STEP: Duration = Duration::from_secs(10);

/// A shardd server serving the Greeter on one shard.
struct GrpcServer {
    /// Dropped, it drains the server (at most 1 s) and waits for it.
    handle: ServerHandle,
    addr: SocketAddr,
    /// Handlers dropped before they finished.
    cancelled: Arc<AtomicUsize>,
}

impl GrpcServer {
    fn start(tls: Option<TlsConfig>) -> GrpcServer {
        let config = Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)).into(),
            shards: 1,
            pin: false,
            drain_timeout_ms: 1_000,
            tls,
            ..Config::default()
        };
        let cancelled = Arc::new(AtomicUsize::new(0));
        let shared = cancelled.clone();
        let handle = Server::bind(config)
            .expect("bind 127.0.0.1:0")
            .serve(move |shard| {
                let greeter = Greeter::new(shard.shard_id, shared.clone());
                serve_tower(tonic::service::Routes::new(greeter.server()))
            })
            .expect("spawn server");
        let addr = handle.local_addr().expect("bound address");
        GrpcServer {
            handle,
            addr,
            cancelled,
        }
    }

    /// Waits (at most [`STEP`]) until `n` handlers have been dropped unfinished.
    async fn cancelled_reaches(&self, n: usize) {
        let start = Instant::now();
        while self.cancelled.load(SeqCst) < n {
            assert!(
                start.elapsed() < STEP,
                "{} handlers dropped, expected {n}",
                self.cancelled.load(SeqCst)
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(self.cancelled.load(SeqCst), n);
    }
}

/// `future`, or a panic naming `what` after [`STEP`].
async fn bounded<T>(what: &str, future: impl Future<Output = T>) -> T {
    tokio::time::timeout(STEP, future)
        .await
        .unwrap_or_else(|_| panic!("{what}: no answer within {STEP:?}"))
}

async fn cleartext_client(server: &GrpcServer) -> GreeterClient<Channel> {
    let channel = Channel::from_shared(format!("http://{}", server.addr))
        .unwrap()
        .connect_timeout(STEP);
    GreeterClient::new(
        bounded("connect", channel.connect())
            .await
            .expect("h2c connection"),
    )
}

fn hello(name: &str, delay_ms: u32) -> HelloRequest {
    HelloRequest {
        name: name.to_owned(),
        delay_ms,
    }
}

/// Unary, server streaming, client streaming and bidirectional streaming.
async fn every_kind_of_call(client: &mut GreeterClient<Channel>) {
    let reply = bounded("unary", client.say_hello(hello("ada", 0)))
        .await
        .expect("unary call")
        .into_inner();
    assert_eq!(reply.message, "Hello, ada!");

    let countdown = CountdownRequest {
        count: 3,
        interval_ms: 10,
    };
    let replies = bounded("server streaming", async {
        let mut stream = client.countdown(countdown).await?.into_inner();
        let mut got = Vec::new();
        while let Some(reply) = stream.message().await? {
            got.push(reply.message);
        }
        Ok::<_, tonic::Status>(got)
    })
    .await
    .expect("server streaming call");
    assert_eq!(replies, ["3", "2", "1"]);

    // A stream of no messages: the status (in the trailers) is all that
    // comes, and the call must still end with OK, not "no status received".
    let empty = CountdownRequest {
        count: 0,
        interval_ms: 10,
    };
    let replies = bounded("empty server stream", async {
        let mut stream = client.countdown(empty).await?.into_inner();
        let mut got = Vec::new();
        while let Some(reply) = stream.message().await? {
            got.push(reply.message);
        }
        Ok::<_, tonic::Status>(got)
    })
    .await
    .expect("an empty server stream ends with OK");
    assert!(replies.is_empty(), "{replies:?}");

    let names = tokio_stream::iter(["ada", "grace", "edsger"].map(|name| hello(name, 0)));
    let reply = bounded("client streaming", client.greet_all(names))
        .await
        .expect("client streaming call")
        .into_inner();
    assert_eq!(reply.message, "Hello, ada, grace, edsger!");

    // Full duplex: each reply arrives before the next request is sent.
    let (requests, outgoing) = tokio::sync::mpsc::channel(1);
    let outgoing = tokio_stream::wrappers::ReceiverStream::new(outgoing);
    let mut replies = bounded("bidirectional call", client.chat(outgoing))
        .await
        .expect("bidirectional call")
        .into_inner();
    for name in ["ada", "grace"] {
        requests.send(hello(name, 0)).await.unwrap();
        let reply: HelloReply = bounded("a bidirectional reply", replies.message())
            .await
            .expect("a reply")
            .expect("not the end");
        assert_eq!(reply.message, format!("Hello, {name}!"));
    }
    drop(requests);
    let end = bounded("the end of the bidirectional call", replies.message()).await;
    assert!(matches!(end, Ok(None)), "{end:?}");
}

#[tokio::test]
async fn every_kind_of_call_over_cleartext_http2() {
    let server = GrpcServer::start(None);
    let mut client = cleartext_client(&server).await;
    every_kind_of_call(&mut client).await;
    assert_eq!(server.handle.stats().shards[0].http2.connections, 1);
}

/// A self-signed certificate for `localhost`: its PEM, and the PEM files the server reads.
fn certificate() -> (String, PathBuf, PathBuf) {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!(
        "shardd-grpc-{}-{}",
        std::process::id(),
        NEXT.fetch_add(1, SeqCst)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    (cert.cert.pem(), cert_path, key_path)
}

#[tokio::test]
async fn every_kind_of_call_over_tls_with_alpn_h2() {
    let (pem, cert, key) = certificate();
    let server = GrpcServer::start(Some(TlsConfig::new(cert, key)));
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://localhost:{}", server.addr.port()))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect_timeout(STEP);
    let channel = bounded("connect", channel.connect())
        .await
        .expect("TLS connection");
    let mut client = GreeterClient::new(channel);
    every_kind_of_call(&mut client).await;
    let shard = &server.handle.stats().shards[0];
    assert_eq!((shard.http2.connections, shard.tls_handshakes), (1, 1));
}

#[tokio::test]
async fn an_error_status_reaches_the_client_with_its_message() {
    let server = GrpcServer::start(None);
    let mut client = cleartext_client(&server).await;
    let status = bounded("unary", client.say_hello(hello("", 0)))
        .await
        .expect_err("an empty name is refused");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "name must not be empty");
    // The connection serves the next call.
    let reply = bounded("unary", client.say_hello(hello("ada", 0))).await;
    assert_eq!(reply.expect("served").into_inner().message, "Hello, ada!");
}

/// Whether `status` is how tonic's client reports a passed deadline: the
/// server's `DEADLINE_EXCEEDED`, or its own timer's `CANCELLED "Timeout
/// expired"` when that fires first (the two race: same deadline).
fn deadline_passed(status: &tonic::Status) -> bool {
    status.code() == Code::DeadlineExceeded
        || (status.code() == Code::Cancelled && status.message() == "Timeout expired")
}

#[tokio::test]
async fn a_deadline_that_passes_cancels_the_handler() {
    let server = GrpcServer::start(None);
    let mut client = cleartext_client(&server).await;
    let mut request = tonic::Request::new(hello("slow", 10_000));
    request.set_timeout(Duration::from_millis(200));
    let started = Instant::now();
    let status = bounded("unary", client.say_hello(request))
        .await
        .expect_err("the deadline passes first");
    assert!(deadline_passed(&status), "{status:?}");
    assert!(started.elapsed() < Duration::from_secs(5));
    server.cancelled_reaches(1).await;

    // A streaming answer is cut at the deadline too.
    let mut request = tonic::Request::new(CountdownRequest {
        count: 100,
        interval_ms: 50,
    });
    request.set_timeout(Duration::from_millis(300));
    let mut stream = bounded("server streaming", client.countdown(request))
        .await
        .expect("the answer begins")
        .into_inner();
    let mut got = 0;
    let end = loop {
        match bounded("a streamed reply", stream.message()).await {
            Ok(Some(_)) => got += 1,
            other => break other,
        }
    };
    let status = end.expect_err("the deadline ends the stream");
    assert!(deadline_passed(&status), "{status:?}");
    assert!((1..100).contains(&got), "{got} replies");
    server.cancelled_reaches(2).await;
}

// ---------------------------------------------------------------------------
// The server's own deadline, seen with a raw HTTP/2 client (tonic's client
// also keeps a timer of its own, which would hide a server that ignores it).

/// A gRPC message: uncompressed, its length, its bytes.
fn grpc_frame(message: &impl Message) -> Bytes {
    let encoded = message.encode_to_vec();
    let mut frame = BytesMut::with_capacity(5 + encoded.len());
    frame.put_u8(0);
    frame.put_u32(encoded.len() as u32);
    frame.put_slice(&encoded);
    frame.freeze()
}

/// Calls `path` with `message` and `grpc-timeout: timeout` over a raw
/// HTTP/2 connection; returns the response's head, how many body bytes
/// came, and its trailers (the head again for a trailers-only answer).
async fn raw_call(
    addr: SocketAddr,
    path: &str,
    message: Bytes,
    timeout: &str,
) -> (http::response::Parts, usize, http::HeaderMap) {
    let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (mut client, connection) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(connection);
    let request = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", timeout)
        .body(())
        .unwrap();
    let (response, mut send) = client.send_request(request, false).unwrap();
    send.send_data(message, true).unwrap();
    let (head, mut body) = response.await.expect("a response head").into_parts();
    let mut bytes = 0;
    while let Some(chunk) = body.data().await {
        let chunk = chunk.expect("a whole body");
        let _ = body.flow_control().release_capacity(chunk.len());
        bytes += chunk.len();
    }
    let trailers = body.trailers().await.expect("the end of the stream");
    let trailers = trailers.unwrap_or_else(|| head.headers.clone());
    (head, bytes, trailers)
}

#[tokio::test]
async fn the_server_itself_ends_a_call_at_its_deadline() {
    let server = GrpcServer::start(None);
    let slow = grpc_frame(&hello("slow", 10_000));
    let started = Instant::now();
    let (head, bytes, trailers) = bounded(
        "raw unary",
        raw_call(server.addr, "/greeter.Greeter/SayHello", slow, "200m"),
    )
    .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(head.status, 200);
    assert_eq!(bytes, 0);
    assert_eq!(trailers["grpc-status"], "4", "{trailers:?}");
    server.cancelled_reaches(1).await;

    let long = grpc_frame(&CountdownRequest {
        count: 100,
        interval_ms: 50,
    });
    let (_, bytes, trailers) = bounded(
        "raw server streaming",
        raw_call(server.addr, "/greeter.Greeter/Countdown", long, "300m"),
    )
    .await;
    assert!(bytes > 0, "some replies came before the deadline");
    assert_eq!(trailers["grpc-status"], "4", "{trailers:?}");
    server.cancelled_reaches(2).await;
}

#[tokio::test]
async fn a_call_the_client_cancels_drops_its_handler() {
    let server = GrpcServer::start(None);
    let mut client = cleartext_client(&server).await;

    // A unary call abandoned while the handler runs.
    let mut abandoned = client.clone();
    let call = tokio::spawn(async move { abandoned.say_hello(hello("slow", 10_000)).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    call.abort();
    server.cancelled_reaches(1).await;

    // A server stream dropped after its first reply.
    let request = CountdownRequest {
        count: 100,
        interval_ms: 100,
    };
    let mut stream = bounded("server streaming", client.countdown(request))
        .await
        .expect("the answer begins")
        .into_inner();
    let first = bounded("the first reply", stream.next()).await;
    assert!(matches!(first, Some(Ok(_))), "{first:?}");
    drop(stream);
    server.cancelled_reaches(2).await;

    // The connection goes on serving.
    let reply = bounded("unary", client.say_hello(hello("ada", 0))).await;
    assert_eq!(reply.expect("served").into_inner().message, "Hello, ada!");
}

#[test]
fn a_grpc_call_over_http11_is_refused_at_once() {
    let server = GrpcServer::start(None);
    let body = grpc_frame(&hello("ada", 0));
    let mut tcp = TcpStream::connect(server.addr).unwrap();
    tcp.set_read_timeout(Some(STEP)).unwrap();
    let head = format!(
        "POST /greeter.Greeter/SayHello HTTP/1.1\r\nHost: t\r\n\
         Content-Type: application/grpc\r\nTE: trailers\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    tcp.write_all(head.as_bytes()).unwrap();
    tcp.write_all(&body).unwrap();
    let mut answer = [0; 512];
    let read = tcp.read(&mut answer).expect("an answer within the step");
    let answer = String::from_utf8_lossy(&answer[..read]);
    assert!(
        answer.starts_with("HTTP/1.1 505 HTTP Version Not Supported\r\n"),
        "{answer}"
    );
    assert!(answer.contains("gRPC needs HTTP/2"), "{answer}");
    assert_eq!(server.cancelled.load(SeqCst), 0);
}
