//! HTTP/2 on a shard: the connection, its streams, its limits.
//!
//! A connection comes here from the HTTP/1.1 loop when its first bytes are
//! the HTTP/2 preface (cleartext with prior knowledge, or TLS after ALPN
//! chose `h2`). The `h2` crate does the framing, HPACK and flow control;
//! this module runs every stream of the connection in the connection's own
//! task (no spawn, no `Send`), so streams borrow the shard's state and app
//! like an HTTP/1.1 request does.
//!
//! The parts: `settings` (what a connection may do), `head` (a stream's
//! request as the app sees it), `stream` (one request and its answer),
//! `send` (a response out within flow control), `guard` (rapid resets and
//! keep-alive pings), `flood` (floods of frames that ask for nothing).

mod flood;
mod guard;
mod head;
mod send;
mod settings;
mod stream;

use std::future::{poll_fn, Future};
use std::sync::atomic::Ordering::Relaxed;
use std::task::Poll;

use bytes::Bytes;
use futures_util::stream::{FuturesUnordered, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::{sleep_until, Instant};

use self::flood::FloodWatch;
use self::guard::{KeepAlive, RateWindow};
pub use self::settings::Http2Settings;
use self::stream::{serve_stream, StreamEnd};
use crate::app::App;
use crate::env::ShardEnv;
use crate::listener::PeerAddr;
use crate::stats::{GoawayReason, TimeoutKind};

/// The first bytes of every HTTP/2 connection (RFC 9113 §3.4); its first
/// line is what an HTTP/1.1 parser stumbles on.
pub(crate) const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Whether `bytes`, the first a client sent, begin the HTTP/2 preface.
/// Enough of it to tell: an HTTP/1.1 request line cannot start with it.
pub(crate) fn starts_with_preface(bytes: &[u8]) -> bool {
    const LINE: usize = 16; // "PRI * HTTP/2.0\r\n"
    bytes.len() >= LINE && bytes[..LINE] == PREFACE[..LINE]
}

/// Serve one HTTP/2 connection until it closes.
pub(crate) async fn serve_http2<C, A>(io: C, peer: &PeerAddr, env: &ShardEnv, app: &A)
where
    C: AsyncRead + AsyncWrite + Unpin,
    A: App,
{
    let settings = &env.http2;
    let (io, flooded) = FloodWatch::new(io, settings.max_control_frames_per_second);
    let handshake = builder(settings).handshake::<_, Bytes>(io);
    let mut connection = match tokio::time::timeout(env.limits.header_timeout, handshake).await {
        Ok(Ok(connection)) => connection,
        Ok(Err(error)) => {
            log::debug!("HTTP/2 handshake with {peer} failed: {error}");
            return;
        }
        Err(_) => {
            env.stats.timed_out(TimeoutKind::Header);
            return;
        }
    };
    env.stats.http2.connections.fetch_add(1, Relaxed);
    let mut streams = FuturesUnordered::new();
    // How the streams that finished in one turn ended (kept for its capacity).
    let mut ended = Vec::new();
    let mut timer = Box::pin(sleep_until(far_future()));
    let mut resets = RateWindow::new(settings.max_resets_per_second);
    let mut keep_alive = KeepAlive::new(&mut connection, settings);
    let mut phase = Phase::Open {
        idle_since: Some(Instant::now()),
        served_any: false,
    };
    // Whether the loop ended by cutting an abusive client off.
    let abusive = loop {
        let deadline = phase.deadline(env, streams.is_empty());
        // The timer is armed lazily: moved earlier when a deadline comes
        // sooner, left alone when it moves later (it then fires early and
        // is re-armed), so a connection serving one request after another
        // does not insert and cancel a timer per request.
        if let Some(deadline) = deadline.filter(|deadline| *deadline < timer.deadline()) {
            timer.as_mut().reset(deadline);
        }
        let event = {
            poll_fn(|cx| {
                if flooded.get() {
                    return Poll::Ready(Event::Flooded);
                }
                if matches!(phase, Phase::Open { .. }) && env.drain.is_draining() {
                    return Poll::Ready(Event::Drain);
                }
                // Every stream that can finish now finishes before the
                // connection is polled, so their frames leave in one write
                // (one stream at a time was a write system call each).
                while let Poll::Ready(Some(end)) = streams.poll_next_unpin(cx) {
                    ended.push(end);
                }
                if !ended.is_empty() {
                    return Poll::Ready(Event::StreamsEnded);
                }
                // Every stream the client has opened, taken at once.
                let mut accepted = false;
                loop {
                    match connection.poll_accept(cx) {
                        Poll::Ready(Some(Ok((request, respond)))) => {
                            streams.push(serve_stream(request, respond, env, app, peer));
                            accepted = true;
                        }
                        Poll::Ready(Some(Err(error))) => return Poll::Ready(Event::Failed(error)),
                        Poll::Ready(None) => return Poll::Ready(Event::Closed),
                        Poll::Pending => break,
                    }
                }
                if accepted {
                    return Poll::Ready(Event::Accepted);
                }
                if timer.as_mut().poll(cx).is_ready() {
                    match deadline {
                        Some(deadline) if Instant::now() >= deadline => {
                            return Poll::Ready(Event::Deadline)
                        }
                        // Fired early (the deadline moved later) or with
                        // none set: arm it for the deadline, or far away.
                        later => {
                            timer.as_mut().reset(later.unwrap_or_else(far_future));
                            if timer.as_mut().poll(cx).is_ready() {
                                return Poll::Ready(Event::Deadline);
                            }
                        }
                    }
                }
                if let Poll::Ready(answered) = keep_alive.poll_overdue(cx) {
                    return Poll::Ready(Event::Pinged(answered));
                }
                Poll::Pending
            })
            .await
        };
        match event {
            Event::Accepted => {
                if let Phase::Open {
                    idle_since,
                    served_any,
                } = &mut phase
                {
                    (*idle_since, *served_any) = (None, true);
                }
            }
            Event::Failed(error) => {
                count_connection_error(env, &error);
                log::debug!("HTTP/2 connection from {peer} ended: {error}");
                break false;
            }
            // The client closed, or the GOAWAYs have run their course.
            Event::Closed => break false,
            Event::StreamsEnded => {
                let resets_now = ended
                    .iter()
                    .filter(|end| **end == StreamEnd::ResetByClient)
                    .count();
                let stalled = ended.contains(&StreamEnd::Stalled);
                ended.clear();
                if resets_now > 0 {
                    env.stats
                        .http2
                        .resets_by_client
                        .fetch_add(resets_now as u64, Relaxed);
                    if resets.count(resets_now as u32) {
                        cut_off(&mut connection, env, peer, "reset streams too fast");
                        break true;
                    }
                }
                if stalled {
                    // As an HTTP/1.1 client that stops reading: a stream's
                    // window shut for send_timeout ends the connection, so
                    // streams opened for large answers never read cannot
                    // hold their responses in memory one after the other.
                    env.stats.timed_out(TimeoutKind::Send);
                    cut_off(&mut connection, env, peer, "left a stream's window shut");
                    break true;
                }
                if let Phase::Open { idle_since, .. } = &mut phase {
                    if streams.is_empty() {
                        *idle_since = Some(Instant::now());
                    }
                }
            }
            Event::Flooded => {
                cut_off(&mut connection, env, peer, "flooded control frames");
                break true;
            }
            Event::Drain => phase = phase.close_gracefully(&mut connection, env),
            Event::Deadline => match phase {
                Phase::Open { served_any, .. } => {
                    env.stats.timed_out(match served_any {
                        true => TimeoutKind::Idle,
                        false => TimeoutKind::Header,
                    });
                    phase = phase.close_gracefully(&mut connection, env);
                }
                // The grace after the first GOAWAY is over and no stream is
                // open: the final GOAWAY, without waiting for the ping's
                // answer (a client that stopped reading never sends it).
                Phase::Closing { .. } => {
                    connection.abrupt_shutdown(h2::Reason::NO_ERROR);
                    break false;
                }
            },
            Event::Pinged(true) => {}
            Event::Pinged(false) => {
                log::debug!("HTTP/2 client {peer} did not answer a ping; closing");
                env.stats.timed_out(TimeoutKind::Idle);
                connection.abrupt_shutdown(h2::Reason::NO_ERROR);
                break false;
            }
        }
    };
    // Let what is still open finish and the last frames go out, but not
    // for longer than a response may wait on a client that does not read.
    // A client cut off for abuse gets no more streams answered, and only
    // a moment for the GOAWAY to leave.
    let mut grace = env.limits.send_timeout;
    if abusive {
        streams.clear();
        grace = grace.min(ABUSER_GRACE);
    }
    let finishing = async {
        while poll_fn(|cx| {
            let _ = connection.poll_closed(cx);
            streams.poll_next_unpin(cx)
        })
        .await
        .is_some()
        {}
        let _ = poll_fn(|cx| connection.poll_closed(cx)).await;
    };
    let _ = tokio::time::timeout(grace, finishing).await;
}

/// How long a client cut off for abuse has to take its GOAWAY.
const ABUSER_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

/// Close an abusive client's connection: GOAWAY `ENHANCE_YOUR_CALM`,
/// counted, and logged (once per connection) with `why`.
fn cut_off<C>(
    connection: &mut h2::server::Connection<FloodWatch<C>, Bytes>,
    env: &ShardEnv,
    peer: &PeerAddr,
    why: &str,
) where
    C: AsyncRead + AsyncWrite + Unpin,
{
    log::warn!("HTTP/2 client {peer} {why}; closing with ENHANCE_YOUR_CALM");
    env.stats.http2.goaway(GoawayReason::EnhanceYourCalm);
    connection.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
}

/// Where a connection is in its life.
#[derive(Clone, Copy)]
enum Phase {
    /// Taking new streams; `idle_since`: when the last stream ended (or the
    /// connection began), `None` while streams are open.
    Open {
        idle_since: Option<Instant>,
        served_any: bool,
    },
    /// A GOAWAY went out: no new streams; close once the open ones are done
    /// and `by` has passed.
    Closing { by: Instant },
}

impl Phase {
    /// When the timer fires: the idle (or, before the first request, the
    /// header) timeout while open, the end of the grace while closing.
    fn deadline(&self, env: &ShardEnv, no_streams: bool) -> Option<Instant> {
        match *self {
            Phase::Open {
                idle_since,
                served_any,
            } => {
                // Until its first request a connection has header_timeout,
                // as an HTTP/1.1 one does: a client that sends the preface
                // and nothing more does not hold it for the idle timeout.
                let wait = match served_any {
                    true => env.limits.idle_timeout,
                    false => env.limits.header_timeout,
                };
                idle_since.map(|since| since + wait)
            }
            Phase::Closing { by } => no_streams.then_some(by),
        }
    }

    /// Two GOAWAYs: the first says no new streams past the highest id
    /// received; `h2` sends the final one after a ping round trip, so
    /// requests already on the wire are served, not lost. A client gets
    /// `drain_grace` for that before the connection closes regardless.
    fn close_gracefully<C>(
        self,
        connection: &mut h2::server::Connection<C, Bytes>,
        env: &ShardEnv,
    ) -> Phase
    where
        C: AsyncRead + AsyncWrite + Unpin,
    {
        env.stats.http2.goaway(GoawayReason::Graceful);
        connection.graceful_shutdown();
        Phase::Closing {
            by: Instant::now() + env.limits.drain_grace,
        }
    }
}

/// What woke the connection.
enum Event {
    /// New streams were taken (they run from the next turn on).
    Accepted,
    /// Streams finished; how each ended is in `ended`.
    StreamsEnded,
    /// The connection failed (`h2` has sent its GOAWAY, if any).
    Failed(h2::Error),
    /// The client closed, or the GOAWAYs have run their course.
    Closed,
    Drain,
    Deadline,
    Pinged(bool),
    /// The client sent more control frames than it may (`flood`).
    Flooded,
}

fn far_future() -> Instant {
    Instant::now() + std::time::Duration::from_secs(86_400 * 365)
}

/// An `h2` server configured with `settings`.
fn builder(settings: &Http2Settings) -> h2::server::Builder {
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(settings.max_concurrent_streams)
        .max_header_list_size(settings.max_header_list_size)
        .initial_window_size(settings.initial_stream_window)
        .initial_connection_window_size(settings.initial_connection_window)
        .max_frame_size(settings.max_frame_size)
        .max_send_buffer_size(settings.max_send_buffer as usize)
        // Streams reset before the app saw them wait in h2's queue: a few
        // are a client changing its mind, many an attack (rapid reset).
        .max_pending_accept_reset_streams(20)
        // Resets we must send for a client's protocol errors (MadeYouReset).
        .max_local_error_reset_streams(Some(256));
    builder
}

/// Count a connection that `h2` ended with an error, by the GOAWAY it sent.
fn count_connection_error(env: &ShardEnv, error: &h2::Error) {
    if !error.is_go_away() || error.is_remote() {
        return; // an I/O error, or the client's own GOAWAY
    }
    let reason = match error.reason() {
        Some(h2::Reason::NO_ERROR) => GoawayReason::Graceful,
        Some(h2::Reason::ENHANCE_YOUR_CALM) => GoawayReason::EnhanceYourCalm,
        Some(
            h2::Reason::PROTOCOL_ERROR
            | h2::Reason::COMPRESSION_ERROR
            | h2::Reason::FRAME_SIZE_ERROR,
        ) => GoawayReason::ProtocolError,
        _ => GoawayReason::Other,
    };
    env.stats.http2.goaway(reason);
}
