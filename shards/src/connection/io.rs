//! The connection's reads: the one place it reads from its socket (into
//! its leased buffer, bounded by the timeout of what it waits for, after
//! spending a turn of its budget), and the lingering close.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::state::Connection;
use super::wait::Waiting;
use crate::stats::TimeoutKind;

/// Free space below which the read buffer is compacted or grown before a read.
const MIN_READ_SPACE: usize = 2048;
/// After refusing a request, how long to keep reading (and discarding) so
/// the client sees our response instead of a reset.
const LINGER_TIME: Duration = Duration::from_secs(2);
/// ... and how much at most: enough for any request a client could have
/// pipelined behind a refused one at our limits, not a free sink forever.
const LINGER_BYTES: usize = 1 << 20;

/// How a read ended.
pub(crate) enum ReadOutcome {
    Data,
    Eof,
    /// The wait ran out (already counted in the stats).
    TimedOut,
    /// The shard is draining and this connection stayed silent for `drain_grace`.
    Drained,
    Failed,
}

impl<C: AsyncRead + AsyncWrite + Unpin> Connection<'_, C> {
    /// Read more of the request stream, the request heads and bodies alike:
    /// first count a turn (yielding to the shard's other connections when
    /// the budget is spent), then read what the socket has, or wait for it
    /// until the current wait runs out.
    pub(super) async fn read_more(&mut self) -> ReadOutcome {
        self.budget.spend_turn().await;
        poll_fn(|cx| self.poll_read(cx)).await
    }

    /// One poll of a read. While the connection is idle and the read has
    /// to wait, its buffers go back to the shard's pool.
    #[inline]
    fn poll_read(&mut self, cx: &mut Context<'_>) -> Poll<ReadOutcome> {
        let Connection {
            env,
            io,
            lease,
            reader,
            wait,
            budget,
            ..
        } = self;
        if wait.waiting().is_idle() && env.drain.is_draining() {
            // Not closed at once: a request may be crossing the close on the wire.
            wait.switch(Waiting::Draining);
        }
        let waiting = wait.waiting();
        let input = &mut lease.get().input;
        reader.make_room(input, MIN_READ_SPACE);
        let filled_before = input.bytes.len();
        let spare = input.bytes.spare_capacity_mut();
        let (spare_start, spare_len) = (spare.as_ptr(), spare.len());
        let mut read_buf = ReadBuf::uninit(spare);
        match Pin::new(io).poll_read(cx, &mut read_buf) {
            Poll::Ready(Ok(())) => {
                let n = read_buf.filled().len();
                // A listener's stream is user code: it could swap in another
                // buffer. Only trust `n` if it filled ours.
                assert!(
                    std::ptr::eq(read_buf.filled().as_ptr(), spare_start.cast()) && n <= spare_len,
                    "poll_read replaced the read buffer"
                );
                // SAFETY: poll_read initialised the first `n` bytes of our spare capacity.
                unsafe { input.bytes.set_len(filled_before + n) };
                if n == 0 {
                    return Poll::Ready(ReadOutcome::Eof);
                }
                if waiting == Waiting::Body {
                    // body_timeout counts from the last bytes of the body.
                    wait.restart();
                }
                Poll::Ready(ReadOutcome::Data)
            }
            Poll::Ready(Err(_)) => Poll::Ready(ReadOutcome::Failed),
            Poll::Pending => {
                budget.waited();
                if waiting.is_idle() && !reader.has_buffered(input) {
                    lease.give_back();
                }
                wait.poll_expired(waiting.read_timeout(&env.limits), cx)
                    .map(|()| {
                        let kind = match waiting {
                            Waiting::Draining => return ReadOutcome::Drained,
                            Waiting::Initial | Waiting::Head => TimeoutKind::Header,
                            Waiting::Body => TimeoutKind::Body,
                            Waiting::Idle => TimeoutKind::Idle,
                        };
                        env.stats.timed_out(kind);
                        ReadOutcome::TimedOut
                    })
            }
        }
    }

    /// Close, first reading what the client still sends when it already
    /// sent more than was answered, so it reads our last response instead
    /// of a reset.
    pub(super) async fn close(&mut self) {
        if self.has_unread() {
            self.linger_close().await;
        }
    }

    /// Half-close, then read and discard until the client closes (bounded), so
    /// unread request bytes do not turn our close into a reset that could
    /// destroy the response before the client reads it.
    pub(super) async fn linger_close(&mut self) {
        let io = &mut self.io;
        if poll_fn(|cx| Pin::new(&mut *io).poll_shutdown(cx))
            .await
            .is_err()
        {
            return;
        }
        let until = Instant::now() + LINGER_TIME;
        let mut sink = vec![0u8; 8192];
        let mut discarded = 0;
        while discarded < LINGER_BYTES {
            match tokio::time::timeout_at(until, io.read(&mut sink)).await {
                Ok(Ok(n)) if n > 0 => discarded += n,
                _ => return,
            }
        }
    }
}
