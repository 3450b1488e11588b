//! The connection loop's timeouts, measured exactly on the paused clock:
//! each test asserts when the loop answered or closed to the millisecond,
//! sleeps no real time, and cannot flake on a loaded machine.
//!
//! Each timeout has a value of its own, so a loop that used the wrong one
//! fails too. tests/limits.rs keeps what needs a real server: the limits
//! set through the public config over real sockets, and a client that stops
//! reading against the kernel's socket buffers.

use std::time::Duration;

use tokio::io::{AsyncWriteExt, DuplexStream};
use tokio::time::{sleep, Instant};

use super::*;
use crate::stats::TimeoutKind;

const HEADER_TIMEOUT: Duration = Duration::from_millis(300);
const IDLE_TIMEOUT: Duration = Duration::from_millis(400);
const BODY_TIMEOUT: Duration = Duration::from_millis(500);
const SEND_TIMEOUT: Duration = Duration::from_millis(700);
const DRAIN_GRACE: Duration = Duration::from_millis(200);
const TICK: Duration = Duration::from_millis(1);

fn shard_env() -> Rc<ShardEnv> {
    env_with(Limits {
        header_timeout: HEADER_TIMEOUT,
        idle_timeout: IDLE_TIMEOUT,
        body_timeout: BODY_TIMEOUT,
        send_timeout: SEND_TIMEOUT,
        drain_grace: DRAIN_GRACE,
        ..Limits::default()
    })
}

/// Connections `env` closed for a timeout of `kind`.
fn timeouts(env: &ShardEnv, kind: TimeoutKind) -> u64 {
    env.stats.timeouts_by_kind[kind as usize].load(Relaxed)
}

/// The connection answered `408` with `Connection: close`, then closed.
fn assert_408_and_close(text: &str) {
    assert!(text.starts_with("HTTP/1.1 408 "), "{text}");
    assert!(text.contains("Connection: close\r\n"), "{text}");
}

/// A fresh connection on `env` is still answered at once.
async fn assert_serves(env: &Rc<ShardEnv>) {
    let mut client = pipe(env);
    client.write_all(GET).await.unwrap();
    read_answers(&mut client, 1).await;
}

#[test]
fn slowloris_partial_head_gets_408_within_header_timeout() {
    on_a_shard(async {
        let env = shard_env();
        let started = Instant::now();
        let mut client = pipe(&env);
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: t\r\n")
            .await
            .unwrap();
        let text = read_to_close(&mut client).await;
        assert_eq!(started.elapsed(), HEADER_TIMEOUT);
        assert_408_and_close(&text);
        assert_eq!(timeouts(&env, TimeoutKind::Header), 1);
        assert_serves(&env).await;
    })
}

#[test]
fn slowloris_trickling_bytes_does_not_extend_the_header_timeout() {
    on_a_shard(async {
        let env = shard_env();
        let started = Instant::now();
        let (mut reader, mut writer) = tokio::io::split(pipe(&env));
        // One byte every 25 ms would take over a second; the header timeout must win.
        spawn_local(async move {
            let head =
                b"GET / HTTP/1.1\r\nHost: t\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            for byte in head {
                if writer.write_all(&[*byte]).await.is_err() {
                    return;
                }
                sleep(Duration::from_millis(25)).await;
            }
        });
        let text = read_to_close(&mut reader).await;
        assert_eq!(started.elapsed(), HEADER_TIMEOUT);
        assert_408_and_close(&text);
    })
}

#[test]
fn connection_that_sends_nothing_is_closed_after_header_timeout() {
    on_a_shard(async {
        let env = shard_env();
        let started = Instant::now();
        let mut client = pipe(&env);
        let text = read_to_close(&mut client).await;
        assert_eq!(started.elapsed(), HEADER_TIMEOUT);
        // Whatever it says (a 408 or nothing), it must not be a success.
        assert!(
            text.is_empty() || text.starts_with("HTTP/1.1 408 "),
            "{text}"
        );
        assert_eq!(timeouts(&env, TimeoutKind::Header), 1);
    })
}

#[test]
fn idle_keep_alive_connection_is_closed_after_idle_timeout() {
    on_a_shard(async {
        let env = shard_env();
        let mut client = pipe(&env);
        client.write_all(GET).await.unwrap();
        let text = read_answers(&mut client, 1).await;
        assert!(!text.contains("Connection: close"), "keep-alive: {text}");
        let idle_since = Instant::now();
        // No response on an idle close.
        assert_eq!(read_to_close(&mut client).await, "");
        assert_eq!(idle_since.elapsed(), IDLE_TIMEOUT);
        assert_eq!(timeouts(&env, TimeoutKind::Idle), 1);
    })
}

#[test]
fn keep_alive_requests_within_idle_timeout_keep_the_connection() {
    on_a_shard(async {
        let env = shard_env();
        let mut client = pipe(&env);
        // Each request a tick before the idle timeout runs out: five times
        // the idle timeout in all, and the connection stays.
        for _ in 0..5 {
            client.write_all(GET).await.unwrap();
            read_answers(&mut client, 1).await;
            sleep(IDLE_TIMEOUT - TICK).await;
        }
        client.write_all(GET).await.unwrap();
        read_answers(&mut client, 1).await;
        // The deadline moved with each request: the close comes a full
        // idle timeout after the last answer.
        let idle_since = Instant::now();
        assert_eq!(read_to_close(&mut client).await, "");
        assert_eq!(idle_since.elapsed(), IDLE_TIMEOUT);
    })
}

#[test]
fn stalled_content_length_body_gets_408() {
    on_a_shard(async {
        let env = shard_env();
        let mut client = pipe(&env);
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n0123456789")
            .await
            .unwrap();
        let stalled_at = Instant::now();
        let text = read_to_close(&mut client).await;
        assert_eq!(stalled_at.elapsed(), BODY_TIMEOUT);
        assert_408_and_close(&text);
        assert_eq!(timeouts(&env, TimeoutKind::Body), 1);
        assert_serves(&env).await;
    })
}

#[test]
fn stalled_chunked_body_gets_408() {
    on_a_shard(async {
        let env = shard_env();
        let mut client = pipe(&env);
        client
            .write_all(
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n10\r\nonly-half",
            )
            .await
            .unwrap();
        let stalled_at = Instant::now();
        let text = read_to_close(&mut client).await;
        assert_eq!(stalled_at.elapsed(), BODY_TIMEOUT);
        assert_408_and_close(&text);
        assert_eq!(timeouts(&env, TimeoutKind::Body), 1);
    })
}

#[test]
fn slow_but_steady_body_is_not_cut() {
    on_a_shard(async {
        // body_timeout bounds each pause, not the whole body.
        let env = shard_env();
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        serve_with(
            server,
            &env,
            app_fn(|request: &Request<'_>| Response::text(request.body().to_vec())),
        );
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\n")
            .await
            .unwrap();
        // A byte a tick before the body timeout runs out: eight times it in all.
        for byte in b"abcdefgh" {
            sleep(BODY_TIMEOUT - TICK).await;
            client.write_all(&[*byte]).await.unwrap();
        }
        let mut text = String::new();
        while !text.ends_with("abcdefgh") {
            let mut buf = [0u8; 1024];
            let n = client.read(&mut buf).await.unwrap();
            assert!(n > 0, "closed after {text:?}");
            text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        }
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert_eq!(timeouts(&env, TimeoutKind::Body), 0);
    })
}

/// Serves a response four times the pipe's capacity on a fresh pipe, to a
/// request already sent; returns the client's end and when the connection ended.
async fn a_response_too_big_for_the_pipe(
    env: &Rc<ShardEnv>,
) -> (DuplexStream, Rc<Cell<Option<Instant>>>) {
    const PIPE: usize = 64 * 1024;
    let (mut client, server) = tokio::io::duplex(PIPE);
    let ended = serve_with(
        server,
        env,
        app_fn(|_: &Request<'_>| Response::text(vec![b'x'; 4 * PIPE])),
    );
    client.write_all(GET).await.unwrap();
    (client, ended)
}

#[test]
fn a_client_that_never_reads_is_cut_after_send_timeout() {
    on_a_shard(async {
        let env = shard_env();
        let started = Instant::now();
        let (mut client, ended) = a_response_too_big_for_the_pipe(&env).await;
        sleep(SEND_TIMEOUT * 2).await;
        let ended = ended.get().expect("the connection was cut");
        assert_eq!(ended - started, SEND_TIMEOUT);
        assert_eq!(timeouts(&env, TimeoutKind::Send), 1);
        // What was sent is what fit in the pipe, then the close.
        let sent = read_to_close(&mut client).await;
        assert_eq!(sent.len(), 64 * 1024);
    })
}

#[test]
fn the_send_timeout_starts_over_whenever_the_client_reads() {
    on_a_shard(async {
        let env = shard_env();
        let (mut client, ended) = a_response_too_big_for_the_pipe(&env).await;
        // Read a little a tick before the send timeout runs out.
        sleep(SEND_TIMEOUT - TICK).await;
        let mut some = [0u8; 1024];
        client.read_exact(&mut some).await.unwrap();
        let read_at = Instant::now();
        sleep(SEND_TIMEOUT * 2).await;
        let ended = ended.get().expect("the connection was cut");
        assert_eq!(ended - read_at, SEND_TIMEOUT);
        assert_eq!(timeouts(&env, TimeoutKind::Send), 1);
    })
}

#[test]
fn a_draining_idle_connection_closes_after_the_drain_grace() {
    on_a_shard(async {
        let env = shard_env();
        let mut idle = pipe(&env);
        idle.write_all(GET).await.unwrap();
        read_answers(&mut idle, 1).await;
        let mut late = pipe(&env);
        late.write_all(GET).await.unwrap();
        read_answers(&mut late, 1).await;

        env.drain.start();
        let drain_started = Instant::now();
        // A request a tick before the grace runs out is still answered, with a close.
        sleep(DRAIN_GRACE - TICK).await;
        late.write_all(GET).await.unwrap();
        let text = read_to_close(&mut late).await;
        assert!(
            text.contains("Connection: close\r\n") && text.ends_with("ok\n"),
            "{text}"
        );
        // The silent one is closed, with nothing sent, when the grace runs out.
        assert_eq!(read_to_close(&mut idle).await, "");
        assert_eq!(drain_started.elapsed(), DRAIN_GRACE);
    })
}

/// Streams every request body and answers with what it read, or with why
/// the body did not come whole.
struct Uploads;

impl crate::App for Uploads {
    fn streams_body(&self, _head: &Request<'_>) -> bool {
        true
    }

    async fn call(&self, request: &Request<'_>) -> Response {
        let mut body = request.body_stream().expect("a streamed body");
        let mut read = Vec::new();
        while let Some(chunk) = body.chunk().await {
            match chunk {
                Ok(bytes) => read.extend_from_slice(&bytes),
                Err(error) => return Response::text(format!("cut short: {error}\n")),
            }
        }
        Response::text(read)
    }
}

#[test]
fn a_stalled_upload_tells_the_app_after_body_timeout_then_closes() {
    on_a_shard(async {
        let env = shard_env();
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        serve_with(server, &env, Uploads);
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 50\r\n\r\n0123456789")
            .await
            .unwrap();
        let stalled_at = Instant::now();
        let text = read_to_close(&mut client).await;
        assert_eq!(stalled_at.elapsed(), BODY_TIMEOUT);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(
            text.ends_with("cut short: request body: 408 request not received in time\n"),
            "{text}"
        );
        assert_eq!(timeouts(&env, TimeoutKind::Body), 1);
    })
}

#[test]
fn a_slow_but_steady_upload_is_not_cut() {
    on_a_shard(async {
        // body_timeout bounds each pause of an upload too, not the whole body.
        let env = shard_env();
        let (mut client, server) = tokio::io::duplex(64 * 1024);
        serve_with(server, &env, Uploads);
        client
            .write_all(b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 8\r\n\r\n")
            .await
            .unwrap();
        for byte in b"abcdefgh" {
            sleep(BODY_TIMEOUT - TICK).await;
            client.write_all(&[*byte]).await.unwrap();
        }
        let text = read_answers_ending(&mut client, "abcdefgh").await;
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert_eq!(timeouts(&env, TimeoutKind::Body), 0);
    })
}

/// Read until the text read ends with `end`.
async fn read_answers_ending(client: &mut DuplexStream, end: &str) -> String {
    let mut text = String::new();
    while !text.ends_with(end) {
        let mut buf = [0u8; 1024];
        let n = client.read(&mut buf).await.unwrap();
        assert!(n > 0, "closed after {text:?}");
        text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
    }
    text
}
