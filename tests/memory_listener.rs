//! A custom `Listener`: the unchanged shard server loop serving connections
//! that are in-memory pipes, with no socket anywhere. The listener is
//! `support::MemoryListener` (tests/support/memory_listener.rs), generic
//! over the stream type; the client on our end of each pipe is the same
//! raw client the socket tests use.

mod support;

use std::io;
use std::time::Duration;

use shardd::{Config, TechEmpower};
use support::{serve_in_memory, AnyStream, HttpResponse, MemoryClient};
use tokio::io::DuplexStream;

/// Returns the one response to `GET /plaintext` with `Connection: close`
/// sent on `client`; panics unless it is complete, alone, and within 3 s.
fn get_plaintext_and_close(client: &mut MemoryClient) -> HttpResponse {
    client.send(b"GET /plaintext HTTP/1.1\r\nHost: memory\r\nConnection: close\r\n\r\n");
    let response = client
        .response_within(Duration::from_secs(3))
        .expect("a complete response within 3 s");
    client.expect_nothing_more_then_close(Duration::from_secs(3));
    response
}

#[test]
fn server_loop_serves_plaintext_over_an_in_memory_listener() {
    let (connect, server) = serve_in_memory::<DuplexStream, _>(
        Config {
            shards: 2,
            pin: false,
            ..Config::default()
        },
        |_shard| TechEmpower,
    );
    assert_eq!(server.local_addr(), None, "no socket was bound");

    // "Connect": hand the server one end of a pipe, talk HTTP on the other.
    let (mut client, server_end) = MemoryClient::pipe();
    connect.send(server_end).unwrap();
    let response = get_plaintext_and_close(&mut client);

    assert_eq!(response.version, "HTTP/1.1", "{response:?}");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.reason, "OK", "{response:?}");
    assert_eq!(response.header("Content-Type"), Some("text/plain"));
    assert_eq!(response.header("Content-Length"), Some("13"));
    assert_eq!(response.body, b"Hello, World!");
    assert_eq!(server.stats().requests(), 1);

    drop(connect);
    server.stop();
}

#[test]
fn stop_does_not_wait_for_a_listener_that_never_ends() {
    let (connect, server) = serve_in_memory::<DuplexStream, _>(
        Config {
            shards: 1,
            pin: false,
            drain_timeout_ms: 5_000,
            ..Config::default()
        },
        |_shard| TechEmpower,
    );
    // The sender stays alive: the listener would wait forever for a next pipe.
    let started = std::time::Instant::now();
    server.stop();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "stop took {:?}; a draining shard must not wait for new connections",
        started.elapsed()
    );
    drop(connect);
}

/// A stream whose `poll_read` (safe code) swaps in a buffer of its own.
struct SwappingStream;

impl tokio::io::AsyncRead for SwappingStream {
    fn poll_read(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        let other: &'static mut [u8] = Box::leak(vec![b'x'; 1 << 20].into_boxed_slice());
        *buf = tokio::io::ReadBuf::new(other);
        buf.advance(1 << 20);
        std::task::Poll::Ready(Ok(()))
    }
}

impl tokio::io::AsyncWrite for SwappingStream {
    fn poll_write(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
        data: &[u8],
    ) -> std::task::Poll<io::Result<usize>> {
        std::task::Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
    fn poll_shutdown(
        self: std::pin::Pin<&mut Self>,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<io::Result<()>> {
        std::task::Poll::Ready(Ok(()))
    }
}

#[test]
fn a_stream_that_swaps_the_read_buffer_loses_its_connection_not_memory_safety() {
    let (connect, server) = serve_in_memory::<Box<dyn AnyStream>, _>(
        Config {
            shards: 1,
            pin: false,
            ..Config::default()
        },
        |_shard| TechEmpower,
    );
    connect.send(Box::new(SwappingStream)).unwrap();
    // The shard drops the misbehaving connection and keeps serving.
    let (mut client, server_end) = MemoryClient::pipe();
    connect.send(Box::new(server_end)).unwrap();
    let response = get_plaintext_and_close(&mut client);
    assert_eq!(response.body, b"Hello, World!", "{response:?}");
    assert_eq!(server.stats().shards[0].restarts, 0);
    drop(connect);
    server.stop();
}
