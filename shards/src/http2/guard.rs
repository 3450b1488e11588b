//! Two watches on an HTTP/2 connection: how fast the client does
//! something (resets streams, floods frames), and whether it still answers
//! pings.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use h2::server::Connection;
use h2::{Ping, PingPong};
use tokio::time::{sleep, Instant, Sleep};

use super::settings::Http2Settings;

/// Events in the current one-second window; too many, and the connection
/// is cut. Counts the client's resets (the rapid-reset attack: open a
/// stream, reset it, again, so the server does work no response is ever
/// sent for) and its overhead frames (`flood`).
pub(super) struct RateWindow {
    limit: u32,
    started: Instant,
    count: u32,
}

impl RateWindow {
    pub(super) fn new(limit: u32) -> Self {
        RateWindow {
            limit,
            started: Instant::now(),
            count: 0,
        }
    }

    /// Count `events`; `true` once the window's limit is passed.
    pub(super) fn count(&mut self, events: u32) -> bool {
        let now = Instant::now();
        if now - self.started >= Duration::from_secs(1) {
            self.started = now;
            self.count = 0;
        }
        self.count = self.count.saturating_add(events);
        self.count > self.limit
    }
}

/// Pings the client every `keepalive_interval`; a pong must come within
/// `keepalive_timeout`, or the client is gone (or stalling on purpose).
pub(super) struct KeepAlive {
    ping_pong: Option<PingPong>,
    interval: Duration,
    timeout: Duration,
    /// When the next ping goes out, or, with a ping out, when its pong is due.
    timer: Pin<Box<Sleep>>,
    ping_out: bool,
}

impl KeepAlive {
    pub(super) fn new<C>(connection: &mut Connection<C, Bytes>, settings: &Http2Settings) -> Self
    where
        C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let on = !settings.keepalive_interval.is_zero();
        KeepAlive {
            ping_pong: if on { connection.ping_pong() } else { None },
            interval: settings.keepalive_interval,
            timeout: settings.keepalive_timeout,
            timer: Box::pin(sleep(settings.keepalive_interval)),
            ping_out: false,
        }
    }

    /// `Ready(false)`: a pong is overdue (or the ping could not be sent).
    /// Pending otherwise, also with pings off.
    pub(super) fn poll_overdue(&mut self, cx: &mut Context<'_>) -> Poll<bool> {
        let Some(ping_pong) = self.ping_pong.as_mut() else {
            return Poll::Pending;
        };
        loop {
            if self.ping_out {
                if let Poll::Ready(pong) = ping_pong.poll_pong(cx) {
                    if pong.is_err() {
                        return Poll::Ready(false);
                    }
                    self.ping_out = false;
                    self.timer.as_mut().reset(Instant::now() + self.interval);
                    continue;
                }
                return match self.timer.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(false),
                    Poll::Pending => Poll::Pending,
                };
            }
            ready!(self.timer.as_mut().poll(cx));
            if ping_pong.send_ping(Ping::opaque()).is_err() {
                return Poll::Ready(false);
            }
            self.ping_out = true;
            self.timer.as_mut().reset(Instant::now() + self.timeout);
        }
    }
}
