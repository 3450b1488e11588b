//! The connection loop's decisions, over in-memory pipes (no sockets):
//! keep-alive, close, linger, refusals, panics, drain and fairness; its
//! timeouts in [`timeouts`].
//!
//! Every test runs on tokio's paused clock: time stands still while any
//! task can run and jumps to the next timer when none can, so a wait for a
//! timeout (the drain grace, a linger) takes no real time, and a duration
//! measured with `tokio::time::Instant` is exact.

mod timeouts;

use std::cell::Cell;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, DuplexStream, ReadBuf};
use tokio::runtime::LocalOptions;
use tokio::task::spawn_local;
use tokio::time::Instant;

use super::*;
use crate::buffers::BufferPool;
use crate::drain::Drain;
use crate::http::DateCache;
use crate::limits::Limits;
use crate::response::Response;
use crate::{app_fn, Request};

fn env() -> Rc<ShardEnv> {
    env_with(Limits::default())
}

fn env_with(limits: Limits) -> Rc<ShardEnv> {
    Rc::new(ShardEnv {
        limits: limits.into(),
        date: DateCache::new(),
        pool: BufferPool::new(4),
        drain: Drain::default(),
        stats: Arc::default(),
        access_log: None,
        http2: crate::http2::Http2Settings::default(),
    })
}

/// Run `test` on a thread-local runtime, as on a shard, with the clock
/// paused; it fails if it has not finished after a minute on that clock
/// (a loop that keeps waiting ends up there, taking no real time).
fn on_a_shard<F: Future>(test: F) -> F::Output {
    const LIMIT: std::time::Duration = std::time::Duration::from_secs(60);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build_local(LocalOptions::default())
        .unwrap();
    runtime
        .block_on(async { tokio::time::timeout(LIMIT, test).await })
        .unwrap_or_else(|_| panic!("the test did not finish within {LIMIT:?} of the shard's clock"))
}

fn answer_ok(request: &Request<'_>) -> Response {
    match request.path() {
        "/panic" => panic!("handler bug"),
        _ => Response::text("ok\n"),
    }
}

/// Serve `conn` with an app answering `ok` (and panicking on `/panic`).
fn serve<C: AsyncRead + AsyncWrite + Unpin + 'static>(conn: C, env: &Rc<ShardEnv>) {
    serve_with(conn, env, app_fn(answer_ok));
}

/// Serve `conn` with `app`; returns when the connection's task ended, once it has.
fn serve_with<C, A>(conn: C, env: &Rc<ShardEnv>, app: A) -> Rc<Cell<Option<Instant>>>
where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
    A: crate::App + 'static,
{
    let env = env.clone();
    let ended = Rc::new(Cell::new(None));
    let ended_at = ended.clone();
    let key = env.drain.register();
    spawn_local(async move {
        serve_connection(conn, |_| None, PeerAddr::Unknown, &env, &app, key).await;
        env.drain.unregister(key);
        ended_at.set(Some(Instant::now()));
    });
    ended
}

fn pipe(env: &Rc<ShardEnv>) -> DuplexStream {
    let (client, server) = tokio::io::duplex(64 * 1024);
    serve(server, env);
    client
}

/// Read until `n` bodies `ok\n` have arrived.
async fn read_answers(client: &mut (impl AsyncRead + Unpin), n: usize) -> String {
    let mut text = String::new();
    let mut buf = [0u8; 4096];
    while text.matches("\r\n\r\nok\n").count() < n {
        let read = client.read(&mut buf).await.unwrap();
        assert!(read > 0, "closed after {text:?}");
        text.push_str(std::str::from_utf8(&buf[..read]).unwrap());
    }
    text
}

/// Read until the server closes.
async fn read_to_close(client: &mut (impl AsyncRead + Unpin)) -> String {
    let mut bytes = Vec::new();
    client.read_to_end(&mut bytes).await.unwrap();
    String::from_utf8(bytes).unwrap()
}

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";

#[test]
fn keep_alive_serves_one_request_after_another() {
    on_a_shard(async {
        let env = env();
        let mut client = pipe(&env);
        for _ in 0..3 {
            client.write_all(GET).await.unwrap();
            let text = read_answers(&mut client, 1).await;
            assert!(!text.contains("Connection: close"), "{text}");
        }
        assert_eq!(env.stats.requests.load(Relaxed), 3);
        let stats = env.stats.snapshot();
        assert_eq!(stats.responses_by_class, [0, 3, 0, 0, 0]);
        assert_eq!(stats.request_duration.count(), 3);
    })
}

#[test]
fn pipelined_requests_are_answered_in_one_write() {
    on_a_shard(async {
        let env = env();
        let mut client = pipe(&env);
        client.write_all(&GET.repeat(16)).await.unwrap();
        let mut buf = vec![0u8; 64 * 1024];
        let n = client.read(&mut buf).await.unwrap();
        let text = std::str::from_utf8(&buf[..n]).unwrap();
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 16, "{text}");
    })
}

#[test]
fn connection_close_is_answered_then_closed() {
    on_a_shard(async {
        let env = env();
        let mut client = pipe(&env);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let text = read_to_close(&mut client).await;
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.ends_with("ok\n"), "{text}");
    })
}

#[test]
fn http10_closes_unless_it_asks_for_keep_alive() {
    on_a_shard(async {
        let env = env();
        let mut client = pipe(&env);
        client.write_all(b"GET / HTTP/1.0\r\n\r\n").await.unwrap();
        assert!(read_to_close(&mut client).await.ends_with("ok\n"));
        let mut client = pipe(&env);
        client
            .write_all(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            .await
            .unwrap();
        let text = read_answers(&mut client, 1).await;
        assert!(text.contains("Connection: keep-alive\r\n"), "{text}");
    })
}

#[test]
fn a_refusal_answers_the_requests_before_it_then_lingers_and_closes() {
    on_a_shard(async {
        let env = env();
        let mut client = pipe(&env);
        let mut sent = GET.to_vec();
        sent.extend_from_slice(b"GET / HTTP/1.1\r\nHost: x\r\nContent-Length: +5\r\n\r\n");
        sent.extend_from_slice(&GET.repeat(4)); // behind the refusal: never answered
        client.write_all(&sent).await.unwrap();
        let text = read_answers(&mut client, 1).await;
        // The server half-closed and lingers: it still reads what we send.
        client.write_all(&GET.repeat(100)).await.unwrap();
        client.shutdown().await.unwrap();
        let text = text + &read_to_close(&mut client).await;
        assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 1, "{text}");
        assert!(text.contains("HTTP/1.1 400 Bad Request\r\n"), "{text}");
        assert!(
            text.ends_with("Connection: close\r\n\r\ninvalid Content-Length\n")
                || text.contains("400"),
            "{text}"
        );
        assert_eq!(env.stats.bad_requests.load(Relaxed), 1);
        assert_eq!(env.stats.snapshot().responses_by_class, [0, 1, 0, 1, 0]);
    })
}

#[test]
fn a_half_closed_partial_request_gets_a_400() {
    on_a_shard(async {
        let env = env();
        let mut client = pipe(&env);
        client.write_all(b"GET / HTTP/1.1\r\nHo").await.unwrap();
        client.shutdown().await.unwrap();
        let text = read_to_close(&mut client).await;
        assert!(text.starts_with("HTTP/1.1 400 "), "{text}");
        assert!(text.ends_with("incomplete request\n"), "{text}");
    })
}

#[test]
fn a_handler_panic_is_a_500_and_a_close() {
    on_a_shard(async {
        let env = env();
        let mut client = pipe(&env);
        let mut sent = b"GET /panic HTTP/1.1\r\nHost: x\r\n\r\n".to_vec();
        sent.extend_from_slice(GET);
        client.write_all(&sent).await.unwrap();
        client.shutdown().await.unwrap();
        let text = read_to_close(&mut client).await;
        assert!(text.starts_with("HTTP/1.1 500 "), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(
            !text.contains("200 OK"),
            "nothing after the panic is answered: {text}"
        );
        assert_eq!(env.stats.handler_panics.load(Relaxed), 1);
    })
}

#[test]
fn expect_continue_gets_an_interim_response_before_the_body() {
    on_a_shard(async {
        let env = env();
        let mut client = pipe(&env);
        client
            .write_all(
                b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n",
            )
            .await
            .unwrap();
        let mut buf = [0u8; 64];
        let n = client.read(&mut buf).await.unwrap();
        assert_eq!(&buf[..n], b"HTTP/1.1 100 Continue\r\n\r\n");
        client.write_all(b"hi").await.unwrap();
        read_answers(&mut client, 1).await;
    })
}

#[test]
fn a_drain_closes_an_idle_connection_and_closes_after_an_in_flight_answer() {
    on_a_shard(async {
        let env = env();
        let mut idle = pipe(&env);
        idle.write_all(GET).await.unwrap();
        read_answers(&mut idle, 1).await;
        env.drain.start();
        assert_eq!(
            read_to_close(&mut idle).await,
            "",
            "idle: closed with nothing sent"
        );
        let mut late = pipe(&env);
        late.write_all(GET).await.unwrap();
        let text = read_to_close(&mut late).await;
        assert!(
            text.contains("Connection: close\r\n") && text.ends_with("ok\n"),
            "{text}"
        );
    })
}

#[test]
fn a_request_crossing_the_drain_on_an_idle_connection_is_answered_with_close() {
    on_a_shard(async {
        let env = env();
        let mut idle = pipe(&env);
        idle.write_all(GET).await.unwrap();
        read_answers(&mut idle, 1).await;
        env.drain.start();
        // Let the connection see the drain first, as it would on a real shard.
        tokio::task::yield_now().await;
        idle.write_all(GET).await.unwrap();
        let text = read_to_close(&mut idle).await;
        assert!(
            text.contains("Connection: close\r\n") && text.ends_with("ok\n"),
            "{text}"
        );
    })
}

/// A client that never makes the server wait: every read returns more
/// pipelined requests at once, every write is taken at once, until `stop` is set.
struct AlwaysReady {
    stop: Rc<Cell<bool>>,
    reads: Rc<Cell<u64>>,
}

impl AsyncRead for AlwaysReady {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.stop.get() || self.reads.get() > 20_000 {
            return Poll::Ready(Ok(())); // EOF
        }
        self.reads.set(self.reads.get() + 1);
        while buf.remaining() >= GET.len() {
            buf.put_slice(GET);
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for AlwaysReady {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Poll::Ready(Ok(data.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[test]
fn a_client_that_never_waits_still_lets_its_shard_serve_others() {
    on_a_shard(async {
        let env = env();
        let stop = Rc::new(Cell::new(false));
        let reads = Rc::new(Cell::new(0));
        serve(
            AlwaysReady {
                stop: stop.clone(),
                reads: reads.clone(),
            },
            &env,
        );
        let mut other = pipe(&env);
        other.write_all(GET).await.unwrap();
        read_answers(&mut other, 1).await;
        stop.set(true);
        assert!(
            reads.get() < 1_000,
            "the other connection waited for {} reads of the greedy one",
            reads.get()
        );
    })
}

/// The access log names what went out, as the encoder reports it: a
/// response the encoder had to replace is logged as the 500 sent, with no
/// body length (the app's body was not sent), even when the app's own
/// status was 500.
#[test]
fn the_access_log_records_what_was_sent_when_a_response_is_replaced() {
    use crate::access_log::{AccessLog, AccessLogFormat, AccessLogSink};
    use ::http::StatusCode;

    on_a_shard(async {
        let (lines, written) = flume::bounded(8);
        let (_, spare) = flume::bounded(8);
        let sink = AccessLogSink {
            format: AccessLogFormat::Common,
            lines,
            spare,
        };
        let stats: Arc<crate::stats::ShardStats> = Arc::default();
        let mut env = Rc::into_inner(env()).expect("not shared yet");
        env.access_log = Some(AccessLog::new(sink, 0, stats.clone()));
        env.stats = stats;
        let env = Rc::new(env);
        let app = app_fn(|request: &Request<'_>| {
            let split = || String::from("a\r\nSet-Cookie: b");
            match request.path() {
                "/split" => Response::new(StatusCode::ACCEPTED).with_header("X-Split", split()),
                "/own-500" => Response::new(StatusCode::INTERNAL_SERVER_ERROR)
                    .with_header("X-Split", split())
                    .with_body("oops"),
                _ => Response::text("ok\n"),
            }
        });
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        let served = env.clone();
        let key = env.drain.register();
        spawn_local(async move {
            serve_connection(server, |_| None, PeerAddr::Unknown, &served, &app, key).await;
            served.drain.unregister(key);
        });
        client
            .write_all(
                b"GET /split HTTP/1.1\r\nHost: x\r\n\r\n\
                  GET /own-500 HTTP/1.1\r\nHost: x\r\n\r\n\
                  GET /fine HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
            .await
            .unwrap();
        let text = read_to_close(&mut client).await;
        assert_eq!(text.matches("HTTP/1.1 500 ").count(), 2, "{text}");
        assert!(!text.contains("Set-Cookie"), "{text}");
        env.access_log.as_ref().expect("on").flush();
        let logged = String::from_utf8(written.try_recv().expect("flushed")).unwrap();
        let ends: Vec<&str> = logged
            .lines()
            .map(|line| line.rsplit_once("\" ").expect("common format").1)
            .collect();
        assert_eq!(ends, ["500 -", "500 -", "200 3"], "{logged}");
    })
}
