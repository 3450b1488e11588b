//! The connection's reads and writes: into and out of its leased buffers,
//! each bounded by the timeout of what it waits for.

use std::future::poll_fn;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::budget::Budget;
use super::wait::{Wait, Waiting};
use crate::buffers::BufferLease;
use crate::env::ShardEnv;
use crate::http::RequestReader;

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
    TimedOut,
    /// The shard is draining and this connection stayed silent for `drain_grace`.
    Drained,
    Failed,
}

/// Read more of the request stream. While the connection is idle and the
/// read has to wait, its buffers go back to the shard's pool.
#[inline]
pub(crate) fn poll_read_more<C: AsyncRead + Unpin>(
    io: &mut C,
    cx: &mut Context<'_>,
    lease: &mut BufferLease<'_>,
    reader: &mut RequestReader,
    wait: &mut Wait,
    budget: &mut Budget,
    env: &ShardEnv,
) -> Poll<ReadOutcome> {
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
            Poll::Ready(if n == 0 {
                ReadOutcome::Eof
            } else {
                ReadOutcome::Data
            })
        }
        Poll::Ready(Err(_)) => Poll::Ready(ReadOutcome::Failed),
        Poll::Pending => {
            budget.waited();
            if waiting.is_idle() && !reader.has_buffered(input) {
                lease.give_back();
            }
            wait.poll_expired(waiting.read_timeout(&env.limits), cx)
                .map(|()| match waiting {
                    Waiting::Draining => ReadOutcome::Drained,
                    _ => ReadOutcome::TimedOut,
                })
        }
    }
}

/// Half-close, then read and discard until the client closes (bounded), so
/// unread request bytes do not turn our close into a reset that could
/// destroy the response before the client reads it.
pub(crate) async fn linger_close<C: AsyncRead + AsyncWrite + Unpin>(io: &mut C) {
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
