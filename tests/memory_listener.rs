//! A custom `Listener`: the unchanged shard server loop serving connections
//! that are in-memory pipes, with no socket anywhere.

mod support;

use std::io;
use std::time::Duration;

use shardd::{Accepted, Config, Listener, PeerAddr, Server, ServerHandle, TechEmpower};
use support::{parse_response, HttpResponse};
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

/// Starts `config` serving TechEmpower on connections of type `C` handed to
/// the returned sender; returns the sender and the server.
fn serve_pipes<C>(config: Config) -> (flume::Sender<C>, ServerHandle)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (connect, incoming) = flume::unbounded::<C>();
    let server = Server::with_listener(config, move |_shard| Ok(MemoryListener(incoming.clone())))
        .unwrap()
        .serve(|_shard| TechEmpower)
        .unwrap();
    (connect, server)
}

/// Returns the one response to `GET /plaintext` with `Connection: close`
/// sent on `client`; panics unless it is complete, alone, and within 3 s.
async fn get_plaintext_and_close(client: &mut DuplexStream) -> HttpResponse {
    client
        .write_all(b"GET /plaintext HTTP/1.1\r\nHost: memory\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(3), client.read_to_end(&mut bytes))
        .await
        .expect("response within 3 s")
        .unwrap();
    let (response, used) = parse_response(&bytes, "GET", true)
        .unwrap()
        .expect("a complete response before the close");
    assert_eq!(
        used,
        bytes.len(),
        "nothing after the response: {:?}",
        String::from_utf8_lossy(&bytes)
    );
    response
}

#[tokio::test]
async fn server_loop_serves_plaintext_over_an_in_memory_listener() {
    let (connect, server) = serve_pipes::<DuplexStream>(Config {
        shards: 2,
        pin: false,
        ..Config::default()
    });
    assert_eq!(server.local_addr(), None, "no socket was bound");

    // "Connect": hand the server one end of a pipe, talk HTTP on the other.
    let (mut client, server_end) = tokio::io::duplex(64 * 1024);
    connect.send(server_end).unwrap();
    let response = get_plaintext_and_close(&mut client).await;

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
    let (connect, server) = serve_pipes::<DuplexStream>(Config {
        shards: 1,
        pin: false,
        drain_timeout_ms: 5_000,
        ..Config::default()
    });
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
    let (connect, server) = serve_pipes::<Box<dyn Stream>>(Config {
        shards: 1,
        pin: false,
        ..Config::default()
    });
    connect.send(Box::new(SwappingStream)).unwrap();
    // The shard drops the misbehaving connection and keeps serving.
    let (mut client, server_end) = tokio::io::duplex(64 * 1024);
    connect.send(Box::new(server_end)).unwrap();
    let response = get_plaintext_and_close(&mut client).await;
    assert_eq!(response.body, b"Hello, World!", "{response:?}");
    assert_eq!(server.stats().shards[0].restarts, 0);
    drop(connect);
    server.stop();
}
