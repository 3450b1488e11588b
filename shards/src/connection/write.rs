//! Writing a connection's [`Output`](crate::output::Output): one plain
//! write when everything is in its buffer, one vectored write when large
//! bodies sit beside it.

use std::future::{poll_fn, Future};
use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite};

use super::budget::Budget;
use super::state::Connection;
use super::wait::Wait;
use crate::env::ShardEnv;
use crate::output::Output;
use crate::stats::TimeoutKind;

/// Why a write gave up.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum WriteFailed {
    /// The client did not read within `send_timeout`.
    TimedOut,
    /// The peer is gone.
    Closed,
}

impl<'e, C: AsyncRead + AsyncWrite + Unpin> Connection<'e, C> {
    /// Write all of the output, in one write when the socket takes it, then
    /// empty it; the send timeout counts from the first time the socket is
    /// full and restarts whenever bytes move, and running out is counted in
    /// the stats.
    ///
    /// A write that goes out at once leaves the wait as it was (the caller has
    /// just fixed its start); one that had to wait starts the next wait afresh.
    ///
    /// A plain function returning a `poll_fn`, not an `async fn`: a write
    /// usually completes at its first poll, and each `async` layer costs a
    /// state machine's entry and exit on every turn of the connection.
    pub(super) fn write_output<'s>(
        &'s mut self,
    ) -> impl Future<Output = Result<(), WriteFailed>> + use<'s, 'e, C> {
        let Connection {
            env,
            io,
            lease,
            wait,
            budget,
            ..
        } = self;
        let mut output = lease
            .held()
            .map(|buffers| &mut buffers.output)
            .filter(|output| !output.is_empty());
        let total = output.as_ref().map_or(0, |output| output.len());
        let mut written = 0;
        let mut blocked = false;
        poll_fn(move |cx| {
            let Some(output) = output.as_deref_mut() else {
                return Poll::Ready(Ok(()));
            };
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
                        break Err(ready!(poll_socket_full(
                            &mut blocked,
                            wait,
                            budget,
                            env,
                            cx
                        )));
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
}

/// A send that found the socket full: the send timeout counts from the
/// first time (`blocked`: this send was already waiting) and, once it runs
/// out, is counted and ends the send. Shared by output writes and
/// `sendfile`.
#[inline(always)]
pub(super) fn poll_socket_full(
    blocked: &mut bool,
    wait: &mut Wait,
    budget: &mut Budget,
    env: &ShardEnv,
    cx: &mut Context<'_>,
) -> Poll<WriteFailed> {
    if !*blocked {
        *blocked = true;
        wait.restart();
    }
    budget.waited();
    ready!(wait.poll_expired(env.limits.send_timeout, cx));
    env.stats.timed_out(TimeoutKind::Send);
    Poll::Ready(WriteFailed::TimedOut)
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
