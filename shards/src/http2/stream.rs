//! One HTTP/2 stream: its request to the app, the app's response back.
//!
//! The body is buffered (up to `max_body_bytes`, like HTTP/1.1) unless the
//! app asks to stream it ([`App::streams_body`]); then it is fed to the app
//! while it runs, and on while the response goes out, so a bidirectional
//! stream (gRPC) reads requests as it answers. A stream the client resets
//! drops the app's future (cancellation).

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use h2::server::SendResponse;
use h2::RecvStream;
use http::StatusCode;
use tokio::time::Instant;

use super::head::StreamHead;
use super::send::{send_response, Sent};
use crate::app::App;
use crate::connection::{call_app, internal_error, status_class};
use crate::env::ShardEnv;
use crate::http::HttpError;
use crate::listener::PeerAddr;
use crate::request::Request;
use crate::request_body::Pipe;
use crate::response::Response;
use crate::stats::add_own;

/// How a stream ended, for the connection's accounting.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum StreamEnd {
    /// The response went out whole.
    Answered,
    /// The client reset the stream before its response was complete.
    ResetByClient,
    /// The client kept the stream's window shut for `send_timeout`.
    Stalled,
}

/// Serve one stream: `request` from the client, `respond` its way back.
pub(super) async fn serve_stream<A: App>(
    request: http::Request<RecvStream>,
    mut respond: SendResponse<Bytes>,
    env: &ShardEnv,
    app: &A,
    peer: &PeerAddr,
) -> StreamEnd {
    let started = Instant::now();
    let (parts, mut body) = request.into_parts();
    let head = match StreamHead::new(&parts) {
        Ok(head) => head,
        Err(status) => return refuse(&mut respond, status, env, Refused::Head(peer)).await,
    };
    let head_only = parts.method == http::Method::HEAD;
    let has_body = !body.is_end_stream();
    if has_body && app.streams_body(&head.request(b"", peer, None)) {
        let pipe = Arc::new(Pipe::default());
        let request = head.request(b"", peer, Some(&pipe));
        let answering = answer(app, &request, &mut respond, head_only, env, started);
        return beside(answering, feed(&pipe, body)).await;
    }
    let bytes = if has_body {
        let declared = parts
            .headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|value| value.to_str().ok()?.parse().ok());
        let limits = &env.limits;
        match read_whole(
            &mut body,
            declared,
            limits.max_body_bytes,
            limits.body_timeout,
        )
        .await
        {
            Ok(bytes) => bytes,
            Err(None) => return StreamEnd::ResetByClient,
            Err(Some(error)) => {
                let request = head.request(b"", peer, None);
                let refused = Refused::Body(&request, started);
                return refuse(&mut respond, error.status(), env, refused).await;
            }
        }
    } else {
        Bytes::new()
    };
    let request = head.request(&bytes, peer, None);
    answer(app, &request, &mut respond, head_only, env, started).await
}

/// Call the app and send its answer; a reset from the client meanwhile
/// drops the app's future.
async fn answer<A: App>(
    app: &A,
    request: &Request<'_>,
    respond: &mut SendResponse<Bytes>,
    head_only: bool,
    env: &ShardEnv,
    started: Instant,
) -> StreamEnd {
    let mut answer = None;
    {
        let calling = pin!(call_app(app, request, &mut answer));
        let mut calling = calling;
        let reset = poll_fn(|cx| {
            if respond.poll_reset(cx).is_ready() {
                return Poll::Ready(true);
            }
            calling.as_mut().poll(cx).map(|()| false)
        })
        .await;
        if reset {
            return StreamEnd::ResetByClient;
        }
    }
    let mut response = match answer {
        Some(response) if !response.upgrades() => response,
        Some(_) => {
            log::error!("an app answered an HTTP/2 request with an upgrade; answering 500");
            internal_error()
        }
        None => {
            add_own(&env.stats.handler_panics, 1);
            internal_error()
        }
    };
    let sent = send_response(respond, &mut response, head_only, env).await;
    let Sent::Whole { status, body_bytes } = sent else {
        return match sent {
            Sent::Cut => StreamEnd::ResetByClient,
            _ => StreamEnd::Stalled,
        };
    };
    record(env, request, status, body_bytes, started.elapsed());
    StreamEnd::Answered
}

/// Count an answered request and log it, as the HTTP/1.1 loop does.
fn record(
    env: &ShardEnv,
    request: &Request<'_>,
    status: StatusCode,
    body_bytes: Option<usize>,
    took: Duration,
) {
    add_own(&env.stats.requests, 1);
    add_own(&env.stats.responses_by_class[status_class(status)], 1);
    env.stats.request_duration.record(took, 1);
    if let Some(access_log) = &env.access_log {
        access_log.record(request, status, body_bytes, took);
    }
}

/// What a refused stream's access log line can show.
enum Refused<'a, 'r> {
    /// The head itself was refused: only the peer, as for an HTTP/1.1
    /// request the codec refuses.
    Head(&'a PeerAddr),
    /// The body was (too large, too slow): the request line is known.
    Body(&'a Request<'r>, Instant),
}

/// A request refused before the app: its status, a short text body, and
/// its line in the access log (every stream gets one, as every HTTP/1.1
/// request does).
async fn refuse(
    respond: &mut SendResponse<Bytes>,
    status: StatusCode,
    env: &ShardEnv,
    refused: Refused<'_, '_>,
) -> StreamEnd {
    add_own(&env.stats.bad_requests, 1);
    add_own(&env.stats.requests, 1);
    add_own(&env.stats.responses_by_class[status_class(status)], 1);
    let reason = status.canonical_reason().unwrap_or("error");
    let mut response = Response::new(status)
        .with_header("Content-Type", "text/plain")
        .with_body(format!("{reason}\n"));
    match send_response(respond, &mut response, false, env).await {
        Sent::Whole { status, body_bytes } => {
            if let Some(access_log) = &env.access_log {
                match refused {
                    Refused::Head(peer) => {
                        access_log.record_refusal(peer, status, body_bytes.unwrap_or(0))
                    }
                    Refused::Body(request, started) => {
                        access_log.record(request, status, body_bytes, started.elapsed())
                    }
                }
            }
            StreamEnd::Answered
        }
        Sent::Cut => StreamEnd::ResetByClient,
        Sent::Stalled => StreamEnd::Stalled,
    }
}

/// The whole request body, no larger than `limit`; the client's window is
/// reopened as each piece arrives. `Err(None)`: the client reset the
/// stream (nothing to answer, nothing to count as a response).
async fn read_whole(
    body: &mut RecvStream,
    declared: Option<usize>,
    limit: usize,
    pause: Duration,
) -> Result<Bytes, Option<HttpError>> {
    // `h2` checks the DATA against a `content-length`; here it only lets an
    // oversized body be refused before it is received.
    if declared.is_some_and(|length| length > limit) {
        return Err(Some(HttpError::PayloadTooLarge));
    }
    let mut first: Option<Bytes> = None;
    let mut rest = BytesMut::new();
    loop {
        let chunk = match tokio::time::timeout(pause, body.data()).await {
            Err(_) => return Err(Some(HttpError::RequestTimeout)),
            Ok(None) => break,
            Ok(Some(Err(_))) => return Err(None),
            Ok(Some(Ok(chunk))) => chunk,
        };
        let _ = body.flow_control().release_capacity(chunk.len());
        let held = first.as_ref().map_or(0, Bytes::len) + rest.len();
        if held + chunk.len() > limit {
            return Err(Some(HttpError::PayloadTooLarge));
        }
        // One chunk (the common case) is kept as it came: no copy.
        match &first {
            None if rest.is_empty() => first = Some(chunk),
            _ => {
                if let Some(first) = first.take() {
                    rest.extend_from_slice(&first);
                }
                rest.extend_from_slice(&chunk);
            }
        }
    }
    Ok(first.unwrap_or_else(|| rest.freeze()))
}

/// Feed a streamed body to the app through `pipe`: no further than the app
/// has taken (the pipe's window), reopening the client's window as it goes.
async fn feed(pipe: &Pipe, mut body: RecvStream) {
    loop {
        poll_fn(|cx| {
            if pipe.poll_room(cx) {
                Poll::Ready(())
            } else {
                Poll::Pending
            }
        })
        .await;
        match body.data().await {
            Some(Ok(chunk)) => {
                let _ = body.flow_control().release_capacity(chunk.len());
                pipe.push(chunk);
            }
            Some(Err(_)) => return pipe.finish(Err(HttpError::BadRequest("request stream reset"))),
            None => {
                if let Ok(Some(trailers)) = body.trailers().await {
                    pipe.set_trailers(trailers);
                }
                return pipe.finish(Ok(()));
            }
        }
    }
}

/// Run `main` to its end, polling `side` beside it until `side` ends.
async fn beside<M: Future, S: Future<Output = ()>>(main: M, side: S) -> M::Output {
    let (mut main, mut side) = (pin!(main), pin!(side));
    let mut side_done = false;
    poll_fn(|cx| {
        if !side_done && side.as_mut().poll(cx).is_ready() {
            side_done = true;
        }
        main.as_mut().poll(cx)
    })
    .await
}
