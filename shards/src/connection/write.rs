//! Writing a connection's [`Output`]: one plain write when everything is
//! in its buffer, one vectored write when large bodies sit beside it.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;

use super::budget::Budget;
use super::wait::Wait;
use crate::output::Output;
use crate::stats::{ShardStats, TimeoutKind};

/// Why a write gave up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteFailed {
    /// The client did not read within `send_timeout`.
    TimedOut,
    /// The peer is gone.
    Closed,
}

/// Write all of `output`, then empty it; the send timeout counts from the
/// first time the socket is full and restarts whenever bytes move, and
/// running out is counted in `stats`.
///
/// A write that goes out at once leaves the wait as it was (the caller has
/// just fixed its start); one that had to wait starts the next wait afresh.
///
/// A plain function returning a `poll_fn`, not an `async fn`: a write
/// usually completes at its first poll, and each `async` layer costs a
/// state machine's entry and exit on every turn of the connection.
pub(crate) fn write_output<'a, C: AsyncWrite + Unpin>(
    io: &'a mut C,
    output: &'a mut Output,
    wait: &'a mut Wait,
    budget: &'a mut Budget,
    send_timeout: Duration,
    stats: &'a ShardStats,
) -> impl Future<Output = Result<(), WriteFailed>> + 'a {
    let total = output.len();
    let mut written = 0;
    let mut blocked = false;
    poll_fn(move |cx| {
        let result = loop {
            if written == total {
                break Ok(());
            }
            match poll_write_some(io, output, written, cx) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => break Err(WriteFailed::Closed),
                Poll::Ready(Ok(n)) => {
                    written += n;
                    if blocked {
                        wait.restart();
                    }
                }
                Poll::Pending => {
                    if !blocked {
                        blocked = true;
                        wait.restart();
                    }
                    budget.waited();
                    ready!(wait.poll_expired(send_timeout, cx));
                    stats.timed_out(TimeoutKind::Send);
                    break Err(WriteFailed::TimedOut);
                }
            }
        };
        output.clear();
        if blocked {
            wait.restart();
        }
        Poll::Ready(result)
    })
}

/// One write: a plain one when everything is in `bytes` (the common case),
/// a vectored one otherwise.
fn poll_write_some<C: AsyncWrite + Unpin>(
    io: &mut C,
    output: &Output,
    written: usize,
    cx: &mut Context<'_>,
) -> Poll<io::Result<usize>> {
    if output.separate.is_empty() {
        return Pin::new(io).poll_write(cx, &output.bytes[written..]);
    }
    let slices = output.slices(written);
    let n = ready!(Pin::new(io).poll_write_vectored(cx, &slices))?;
    Poll::Ready(Ok(n))
}
