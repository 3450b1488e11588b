//! Response bodies over real sockets: shared bytes, large bodies written
//! without a copy, streams (chunked, or until the close for HTTP/1.0) with
//! backpressure, closing on request, and taking the connection over after
//! `101 Switching Protocols` (a real WebSocket client and server).

mod support;

use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{stream, SinkExt, StreamExt};
use shardd::http::StatusCode;
use shardd::{app_fn, Body, Config, Response, TimeoutKind};
use support::{config, wait_until, Closed, TestServer};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::Role;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::WebSocketStream;

/// 1 MiB of a repeating pattern, shared by every response that sends it.
fn big() -> Bytes {
    Bytes::from(
        (0..1 << 20)
            .map(|i: u32| (i % 251) as u8)
            .collect::<Vec<u8>>(),
    )
}

/// `/stream/N`: N chunks "chunk i;" produced as they are asked for.
fn chunks(n: usize) -> Body {
    Body::stream(stream::iter((0..n).map(|i| {
        Ok::<_, std::io::Error>(Bytes::from(format!("chunk {i};")))
    })))
}

fn expected_chunks(n: usize) -> String {
    (0..n).map(|i| format!("chunk {i};")).collect()
}

fn start(produced: Arc<AtomicUsize>) -> TestServer {
    start_configured(config(1), produced)
}

fn start_configured(config: Config, produced: Arc<AtomicUsize>) -> TestServer {
    let big = big();
    TestServer::start_with(config, move |_| {
        let (big, produced) = (big.clone(), produced.clone());
        app_fn(move |req| match req.path() {
            "/big" => Response::new(StatusCode::OK).with_body(big.clone()),
            "/stream" => Response::new(StatusCode::OK).with_body(chunks(50)),
            "/close" => Response::text("bye\n").close_connection(),
            "/broken" => Response::new(StatusCode::OK).with_body(Body::stream(stream::iter([
                Ok(Bytes::from_static(b"part one;")),
                Err(std::io::Error::other("the source failed")),
            ]))),
            "/endless" => {
                let produced = produced.clone();
                // 64 KiB chunks for as long as the client reads them.
                Response::new(StatusCode::OK).with_body(Body::stream(stream::repeat_with(
                    move || {
                        produced.fetch_add(1, SeqCst);
                        Ok::<_, std::io::Error>(Bytes::from(vec![b'x'; 64 * 1024]))
                    },
                )))
            }
            _ => Response::not_found(),
        })
    })
}

#[test]
fn a_large_shared_body_arrives_whole_with_its_length() {
    let server = start(Arc::default());
    let mut client = server.connect();
    let response = client.get("/big");
    assert_eq!(response.status, 200);
    assert_eq!(response.header("Content-Length"), Some("1048576"));
    assert!(
        response.body == big(),
        "the body differs from what was sent"
    );
    // The connection is still good for the next request.
    assert_eq!(client.get("/close").status, 200);
}

#[test]
fn a_streamed_body_goes_out_chunked_and_pipelined_answers_stay_in_order() {
    let server = start(Arc::default());
    let mut client = server.connect();
    client.send(
        "GET /stream HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /big HTTP/1.1\r\nHost: t\r\n\r\n\
         GET /stream HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let responses = client.responses(3).expect("three responses");
    assert_eq!(responses[0].header("Transfer-Encoding"), Some("chunked"));
    assert_eq!(responses[0].header("Content-Length"), None);
    assert_eq!(responses[0].body_str(), expected_chunks(50));
    assert!(responses[1].body == big());
    assert_eq!(responses[2].body_str(), expected_chunks(50));
}

#[test]
fn head_of_a_streamed_route_has_no_body() {
    let server = start(Arc::default());
    let mut client = server.connect();
    client.send("HEAD /stream HTTP/1.1\r\nHost: t\r\n\r\nGET /close HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.response_to_head().expect("HEAD response");
    assert_eq!(head.status, 200);
    assert_eq!(
        client.response().expect("next response").body_str(),
        "bye\n"
    );
}

#[test]
fn an_http10_client_gets_a_stream_until_the_close() {
    let server = start(Arc::default());
    let mut client = server.connect();
    client.send("GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    let (closed, bytes) = client.read_until_closed(Duration::from_secs(5));
    assert_eq!(closed, Closed::Eof);
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("Connection: close\r\n"), "{text}");
    assert!(!text.contains("Transfer-Encoding"), "{text}");
    assert!(text.ends_with(&expected_chunks(50)), "{text}");
}

#[test]
fn close_connection_closes_after_the_response() {
    let server = start(Arc::default());
    let mut client = server.connect();
    let response = client.get("/close");
    assert_eq!(response.header("Connection"), Some("close"));
    assert_eq!(
        client.expect_nothing_more_then_close(Duration::from_secs(5)),
        Closed::Eof
    );
}

#[test]
fn a_failing_stream_cuts_the_body_short() {
    let server = start(Arc::default());
    let mut client = server.connect();
    client.send("GET /broken HTTP/1.1\r\nHost: t\r\n\r\n");
    let (_, bytes) = client.read_until_closed(Duration::from_secs(5));
    let text = String::from_utf8(bytes).unwrap();
    assert!(text.contains("part one;"), "{text}");
    assert!(
        !text.ends_with("0\r\n\r\n"),
        "the cut body must not look complete: {text}"
    );
}

#[test]
fn a_client_that_does_not_read_holds_the_stream_back() {
    let produced = Arc::new(AtomicUsize::new(0));
    let server = start(produced.clone());
    let mut client = server.connect();
    client.send("GET /endless HTTP/1.1\r\nHost: t\r\n\r\n");
    // Without reads the socket buffers fill, then the stream must stop being polled.
    let settled = |n: usize| n > 0;
    wait_until("the stream started", Duration::from_secs(5), || {
        settled(produced.load(SeqCst))
    });
    std::thread::sleep(Duration::from_millis(500));
    let before = produced.load(SeqCst);
    std::thread::sleep(Duration::from_millis(700));
    let after = produced.load(SeqCst);
    assert_eq!(before, after, "the stream kept producing while nobody read");
    // Socket buffers (a few MiB at most on loopback) + max_output_bytes.
    assert!(
        after * 64 * 1024 < 16 << 20,
        "{after} chunks produced for a client that read nothing"
    );
    // The shard still serves others meanwhile.
    assert_eq!(server.connect().get("/close").status, 200);
}

#[test]
fn a_stream_nobody_reads_is_cut_after_the_send_timeout_and_counted() {
    let mut config = config(1);
    config.limits.send_timeout = Duration::from_millis(500);
    config.limits.idle_timeout = Duration::from_secs(30);
    let produced = Arc::new(AtomicUsize::new(0));
    let server = start_configured(config, produced.clone());
    let mut client = server.connect();
    client.send("GET /endless HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("the stream started", Duration::from_secs(5), || {
        produced.load(SeqCst) > 0
    });
    let stats = server.wait_stats(
        "the stalled stream's connection closed",
        Duration::from_secs(10),
        |s| s.open_connections() == 0,
    );
    let send_timeouts: u64 = stats
        .shards
        .iter()
        .map(|shard| shard.timeouts_by_kind[TimeoutKind::Send as usize])
        .sum();
    assert_eq!(send_timeouts, 1, "{stats:#?}");
    assert_eq!(server.connect().get("/close").status, 200);
}

#[test]
fn a_request_right_after_a_stream_longer_than_idle_timeout_is_served() {
    let mut config = config(1);
    config.limits.idle_timeout = Duration::from_millis(200);
    let server = TestServer::start_with(config, |_| {
        app_fn(|req| match req.path() {
            // Four chunks, 100 ms apart: the stream outlasts idle_timeout.
            "/slow" => Response::new(StatusCode::OK).with_body(Body::stream(stream::unfold(
                0,
                |i| async move {
                    if i == 4 {
                        return None;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    Some((
                        Ok::<_, std::io::Error>(Bytes::from(format!("chunk {i};"))),
                        i + 1,
                    ))
                },
            ))),
            _ => Response::text("ok"),
        })
    });
    let mut client = server.connect();
    let streamed = client.get("/slow");
    assert_eq!(String::from_utf8_lossy(&streamed.body), expected_chunks(4));
    // The idle wait starts when the stream ends, not when it began.
    assert_eq!(client.get("/").status, 200);
}

#[test]
fn a_websocket_upgrade_hands_the_connection_to_the_app() {
    let server = TestServer::start_with(config(1), |_| {
        app_fn(|req| {
            let Some(key) = req.header("sec-websocket-key") else {
                return Response::new(StatusCode::BAD_REQUEST);
            };
            let accept = derive_accept_key(key);
            Response::new(StatusCode::SWITCHING_PROTOCOLS)
                .with_header("Connection", "upgrade")
                .with_header("Upgrade", "websocket")
                .with_header("Sec-WebSocket-Accept", accept)
                .on_upgrade(|io| async move {
                    let mut socket = WebSocketStream::from_raw_socket(io, Role::Server, None).await;
                    // Echo until the client closes.
                    while let Some(Ok(message)) = socket.next().await {
                        if message.is_text() && socket.send(message).await.is_err() {
                            break;
                        }
                    }
                })
        })
    });
    let addr = server.addr;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let url = format!("ws://{addr}/echo");
        let (mut socket, response) = tokio_tungstenite::client_async(url, tcp)
            .await
            .expect("handshake");
        assert_eq!(response.status(), 101);
        for text in ["hello", "sharded world"] {
            socket.send(Message::text(text)).await.unwrap();
            let echoed = tokio::time::timeout(Duration::from_secs(5), socket.next())
                .await
                .expect("echo in time")
                .expect("a message")
                .unwrap();
            assert_eq!(echoed.into_text().unwrap().as_str(), text);
        }
        socket.close(None).await.unwrap();
    });
    // The same route without the WebSocket handshake fields.
    let mut client = server.connect();
    assert_eq!(client.get("/plain").status, 400);
}

#[test]
fn an_upgrade_the_request_did_not_ask_for_is_refused() {
    let server = TestServer::start_with(config(1), |_| {
        app_fn(|_| Response::new(StatusCode::SWITCHING_PROTOCOLS).on_upgrade(|_io| async {}))
    });
    let mut client = server.connect();
    assert_eq!(client.get("/").status, 500);
}
