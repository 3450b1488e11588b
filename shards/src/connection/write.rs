//! Writing a connection's [`Output`]: one plain write when everything is
//! in its buffer, one vectored write when large bodies sit beside it.

use std::future::poll_fn;
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};
use std::time::Duration;

use tokio::io::AsyncWrite;

use super::budget::Budget;
use super::wait::Wait;
use crate::output::Output;

/// Why a write gave up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteFailed {
    /// The client did not read within `send_timeout`.
    TimedOut,
    /// The peer is gone.
    Closed,
}

/// Write all of `output`; the send timeout restarts whenever bytes move.
pub(crate) async fn write_output<C: AsyncWrite + Unpin>(
    io: &mut C,
    output: &Output,
    wait: &mut Wait,
    budget: &mut Budget,
    send_timeout: Duration,
) -> Result<(), WriteFailed> {
    let total = output.len();
    let mut written = 0;
    wait.restart();
    let result = poll_fn(|cx| {
        while written < total {
            match poll_write_some(io, output, written, cx) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    return Poll::Ready(Err(WriteFailed::Closed))
                }
                Poll::Ready(Ok(n)) => {
                    written += n;
                    wait.restart();
                }
                Poll::Pending => {
                    budget.waited();
                    return wait
                        .poll_expired(send_timeout, cx)
                        .map(|()| Err(WriteFailed::TimedOut));
                }
            }
        }
        Poll::Ready(Ok(()))
    })
    .await;
    wait.restart();
    result
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
