//! A custom `Listener`: the unchanged shard server loop serving connections
//! that are in-memory pipes, with no socket anywhere.

use std::io;
use std::time::Duration;

use shardd::{Accepted, Config, Listener, PeerAddr, Server, TechEmpower};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

/// Hands the shard whatever pipes arrive on a channel.
struct MemoryListener<C = DuplexStream>(flume::Receiver<C>);

impl<C> Listener for MemoryListener<C>
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
{
    type Conn = C;

    async fn accept(&mut self) -> io::Result<Option<Accepted<C>>> {
        // A closed channel means no more connections: the shard stops.
        Ok(self.0.recv_async().await.ok().map(|conn| Accepted {
            conn,
            peer: PeerAddr::Unknown,
        }))
    }
}

#[tokio::test]
async fn server_loop_serves_plaintext_over_an_in_memory_listener() {
    let (connect, incoming) = flume::unbounded::<DuplexStream>();
    let config = Config {
        shards: 2,
        pin: false,
        ..Config::default()
    };
    let server = Server::spawn_with_listener(
        config,
        move |_shard| Ok(MemoryListener(incoming.clone())),
        |_shard| TechEmpower,
    )
    .unwrap();
    assert_eq!(server.local_addr(), None, "no socket was bound");

    // "Connect": hand the server one end of a pipe, talk HTTP on the other.
    let (mut client, server_end) = tokio::io::duplex(64 * 1024);
    connect.send(server_end).unwrap();
    client
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: memory\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), client.read_to_end(&mut response))
        .await
        .expect("response within 3 s")
        .unwrap();
    let response = String::from_utf8(response).unwrap();

    assert!(response.starts_with("HTTP/1.1 200 OK\r\n"), "{response}");
    assert!(
        response.contains("\r\nContent-Type: text/plain\r\n"),
        "{response}"
    );
    assert!(
        response.contains("\r\nContent-Length: 13\r\n"),
        "{response}"
    );
    assert!(response.ends_with("\r\n\r\nHello, World!"), "{response}");
    assert_eq!(server.stats().requests(), 1);

    drop(connect);
    server.stop();
}

#[test]
fn stop_does_not_wait_for_a_listener_that_never_ends() {
    let (connect, incoming) = flume::unbounded::<DuplexStream>();
    let config = Config {
        shards: 1,
        pin: false,
        drain_timeout_ms: 5_000,
        ..Config::default()
    };
    let server = Server::spawn_with_listener(
        config,
        move |_shard| Ok(MemoryListener(incoming.clone())),
        |_shard| TechEmpower,
    )
    .unwrap();
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

/// Any stream: lets one listener hand out both kinds.
trait Stream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> Stream for T {}

#[tokio::test]
async fn a_stream_that_swaps_the_read_buffer_loses_its_connection_not_memory_safety() {
    let (connect, incoming) = flume::unbounded::<Box<dyn Stream>>();
    let config = Config {
        shards: 1,
        pin: false,
        ..Config::default()
    };
    let server = Server::spawn_with_listener(
        config,
        move |_shard| Ok(MemoryListener(incoming.clone())),
        |_shard| TechEmpower,
    )
    .unwrap();
    connect.send(Box::new(SwappingStream)).unwrap();
    // The shard drops the misbehaving connection and keeps serving.
    let (mut client, server_end) = tokio::io::duplex(64 * 1024);
    connect.send(Box::new(server_end)).unwrap();
    client
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: memory\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut response = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), client.read_to_end(&mut response))
        .await
        .expect("response within 3 s")
        .unwrap();
    assert!(
        response.ends_with(b"Hello, World!"),
        "{}",
        String::from_utf8_lossy(&response)
    );
    assert_eq!(server.stats().shards[0].restarts, 0);
    drop(connect);
    server.stop();
}
