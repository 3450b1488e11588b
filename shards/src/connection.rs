//! The HTTP/1.1 connection loop: one task per connection, on its shard.
//!
//! Each turn: answer every complete request in the read buffer (in order,
//! pipelining included), write all their responses with one write, then
//! read again. The shape follows may-minihttp's short fast path; limits,
//! timeouts and drain each cost a branch on it, not a system call.

use std::future::{poll_fn, Future};
use std::ops::Range;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::{pin, Pin};
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::task::{Context, Poll};
use std::time::Duration;

use memchr::memchr;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::app::{App, Request, Response};
use crate::buffers::{BufferPool, ConnBuffers};
use crate::http::{
    decode_head, encode_error, encode_response, slice, ChunkedDecoder, ChunkedStatus,
    EncodeOptions, Framing, Head, HeaderSpan, HttpError, Version,
};
use crate::limits::Limits;
use crate::listener::PeerAddr;
use crate::shard::ShardLocal;

/// Free space below which the read buffer is compacted or grown before a read.
const MIN_READ_SPACE: usize = 2048;
/// After refusing a request, how long to keep reading (and discarding) so
/// the client sees our response instead of a reset.
const LINGER_TIME: Duration = Duration::from_secs(2);
const LINGER_BYTES: usize = 1 << 20;

/// What the connection is waiting for; it picks the timeout that applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waiting {
    /// A new connection that has sent nothing yet: `header_timeout` from
    /// accept, then a silent close; drain closes it once nothing is readable.
    Initial,
    /// Between requests (keep-alive): `idle_timeout`, and drain closes it.
    Idle,
    /// The rest of a request head: `header_timeout` from its first byte, then 408.
    Head,
    /// The rest of a body: `body_timeout` since the last bytes arrived.
    Body,
}

enum ReadOutcome {
    Data,
    Eof,
    TimedOut,
    Drained,
    Failed,
}

/// How a turn of the loop ends.
#[derive(PartialEq, Eq)]
enum After {
    KeepGoing,
    /// Close once the output is written.
    Close,
    /// Close, but first read and discard what the client still sends.
    Linger,
}

/// Timer state shared by reads and writes: one lazily created `Sleep` per
/// connection, re-armed only when it fires early (see [`poll_deadline`]).
struct Deadline {
    timer: Option<Pin<Box<Sleep>>>,
    due: Option<Instant>,
}

/// Serve one connection until it closes. `registration` was taken when the
/// task was spawned, so a drain waits for this task even before it first
/// runs, and the shard's `open` count drops however the task ends.
pub async fn serve_connection<C, A>(
    mut io: C,
    peer: PeerAddr,
    shard: &ShardLocal,
    app: &A,
    registration: Registration,
) where
    C: AsyncRead + AsyncWrite + Unpin,
    A: App,
{
    poll_fn(|cx| {
        shard.drain.set_waker(registration.key, cx.waker());
        Poll::Ready(())
    })
    .await;
    let limits = &shard.limits;
    let mut bufs = Lent {
        pool: &shard.pool,
        buffers: None,
    };
    let mut start = 0usize;
    let mut waiting = Waiting::Initial;
    let mut chunked = ChunkedDecoder::default();
    // Framing bytes of a chunked body already decoded, to drop from the read buffer.
    let mut decoded_framing: Option<(usize, usize)> = None;
    let mut deadline = Deadline {
        timer: None,
        due: None,
    };
    // Length of the partial head at the last decode attempt (skip re-parsing
    // when no new line has arrived: keeps a byte-at-a-time client linear).
    let mut scanned = 0usize;
    let mut sent_continue = false;

    loop {
        // 1. Answer every complete request already buffered.
        let mut after = After::KeepGoing;
        let mut answered = 0u64;
        let mut output_full = false;
        if let Some(ConnBuffers {
            read,
            write,
            spans,
            body,
        }) = bufs.buffers.as_mut()
        {
            let date = shard.date.get();
            while start < read.len() {
                let avail = &read[start..];
                if waiting == Waiting::Head && scanned > 0 && !worth_decoding(avail, scanned) {
                    break;
                }
                let (head, body_bytes, consumed) =
                    match next_request(avail, limits, spans, &mut chunked, body) {
                        Next::Request {
                            head,
                            body_in_read,
                            consumed,
                        } => {
                            let body_bytes = match body_in_read {
                                Some(range) => &avail[range],
                                None => &body[..],
                            };
                            (head, body_bytes, consumed)
                        }
                        Next::PartialHead => {
                            if waiting == Waiting::Idle {
                                // The head timeout runs from the request's first byte.
                                deadline.due = None;
                            }
                            waiting = Waiting::Head;
                            scanned = avail.len();
                            break;
                        }
                        Next::PartialBody {
                            expect_continue,
                            decoded_framing: framing,
                        } => {
                            if let Some((at, length)) = framing {
                                decoded_framing = Some((start + at, length));
                            }
                            wait_for_body(
                                &mut waiting,
                                &mut deadline,
                                expect_continue,
                                &mut sent_continue,
                                write,
                            );
                            break;
                        }
                        Next::Refused(error) => {
                            refuse(shard, error, &date, write);
                            after = After::Linger;
                            break;
                        }
                    };
                let method = validated_str(slice(avail, head.method));
                let target = validated_str(slice(avail, head.target));
                let request = Request {
                    head: avail,
                    method,
                    target,
                    version: head.version,
                    headers: spans,
                    body: body_bytes,
                    peer: &peer,
                };
                let (response, panicked) = match call_app(app, &request).await {
                    Some(response) => (response, false),
                    None => {
                        shard.stats.handler_panics.fetch_add(1, Relaxed);
                        (internal_error(), true)
                    }
                };
                // Decided after the handler: a drain may have begun while it ran.
                let close = !head.keep_alive || shard.drain.is_draining();
                let options = EncodeOptions {
                    date: &date,
                    head_only: method == "HEAD",
                    close: close || panicked,
                    keep_alive_1_0: head.version == Version::Http10 && !close,
                };
                encode_response(&response, &options, write);
                answered += 1;
                start += consumed;
                waiting = Waiting::Idle;
                deadline.due = None;
                scanned = 0;
                sent_continue = false;
                if head.framing == Framing::Chunked {
                    chunked = ChunkedDecoder::default();
                    body.clear();
                }
                if close || panicked {
                    after = if start < read.len() {
                        After::Linger
                    } else {
                        After::Close
                    };
                    break;
                }
                if write.len() >= limits.max_output_bytes {
                    output_full = true;
                    break;
                }
            }
            if let Some((at, framing)) = decoded_framing.take() {
                // Decoded chunk framing and data are not needed again: keep the
                // buffer (and the next decode) proportional to what is still to come.
                read.drain(at..at + framing);
            }
            if start == read.len() {
                read.clear();
                start = 0;
            }
        }
        if answered > 0 {
            shard.stats.requests.fetch_add(answered, Relaxed);
        }

        // 2. Write everything this turn produced, in one write when the socket takes it.
        if let Some(buffers) = bufs.buffers.as_mut() {
            if !buffers.write.is_empty() {
                deadline.due = None;
                let written =
                    write_all(&mut io, &buffers.write, &mut deadline, limits.send_timeout).await;
                deadline.due = None;
                buffers.write.clear();
                match written {
                    Ok(()) => {}
                    Err(timed_out) => {
                        if timed_out {
                            shard.stats.timeouts.fetch_add(1, Relaxed);
                        }
                        return;
                    }
                }
            }
        }
        match after {
            After::KeepGoing => {}
            After::Close => return,
            After::Linger => return linger_close(&mut io).await,
        }
        if output_full {
            // More requests are buffered; answer them before reading again.
            continue;
        }

        // 3. Read more.
        let outcome = poll_fn(|cx| {
            poll_read_more(
                &mut io,
                cx,
                shard,
                &mut bufs.buffers,
                &mut start,
                waiting,
                &mut deadline,
            )
        })
        .await;
        match outcome {
            ReadOutcome::Data if waiting == Waiting::Body => deadline.due = None,
            ReadOutcome::Data => {}
            ReadOutcome::Eof => {
                let partial = bufs.buffers.as_ref().is_some_and(|b| start < b.read.len());
                if partial {
                    // The client half-closed mid-request: say why nothing more will come.
                    answer_and_close(
                        &mut io,
                        shard,
                        HttpError::BadRequest("incomplete request"),
                        &mut deadline,
                    )
                    .await;
                }
                return;
            }
            ReadOutcome::TimedOut => {
                shard.stats.timeouts.fetch_add(1, Relaxed);
                if matches!(waiting, Waiting::Head | Waiting::Body) {
                    answer_and_close(&mut io, shard, HttpError::RequestTimeout, &mut deadline)
                        .await;
                }
                return;
            }
            ReadOutcome::Drained | ReadOutcome::Failed => return,
        }
    }
}

/// The method and target as text. httparse has already validated exactly
/// these bytes (it hands them out as `&str`), so checking UTF-8 again on
/// every request would be wasted work.
fn validated_str(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: the bytes are the method and target httparse returned as `&str`.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// What the bytes at the front of the read buffer hold.
enum Next {
    /// A whole request: its body is `avail[range]` (by length) or the
    /// decoded chunked body (`None`); `consumed` bytes in all.
    Request {
        head: Head,
        body_in_read: Option<Range<usize>>,
        consumed: usize,
    },
    /// The head is not all here yet.
    PartialHead,
    /// The head is, the body is not. `decoded_framing` is `(offset, length)`
    /// of chunked bytes already decoded that the buffer can drop.
    PartialBody {
        expect_continue: bool,
        decoded_framing: Option<(usize, usize)>,
    },
    /// Answer with this error and close.
    Refused(HttpError),
}

/// Decode the request at the front of `avail`: its head, then its body by
/// `Content-Length` or chunked coding (continuing `chunked` where the last
/// call stopped, appending to `body`).
#[inline(always)] // on the hot path: keeps the decode inside the connection loop
fn next_request(
    avail: &[u8],
    limits: &Limits,
    spans: &mut Vec<HeaderSpan>,
    chunked: &mut ChunkedDecoder,
    body: &mut Vec<u8>,
) -> Next {
    let head = match decode_head(avail, limits, spans) {
        Ok(Some(head)) => head,
        Ok(None) => return Next::PartialHead,
        Err(error) => return Next::Refused(error),
    };
    let rest = &avail[head.len..];
    match head.framing {
        Framing::None => Next::Request {
            head,
            body_in_read: Some(0..0),
            consumed: head.len,
        },
        Framing::Length(length) if rest.len() >= length => Next::Request {
            head,
            body_in_read: Some(head.len..head.len + length),
            consumed: head.len + length,
        },
        // RFC 9110 §10.1.1: ignore Expect in an HTTP/1.0 request.
        Framing::Length(_) => Next::PartialBody {
            expect_continue: head.expect_continue && head.version == Version::Http11,
            decoded_framing: None,
        },
        Framing::Chunked => {
            match chunked.decode(rest, limits.max_body_bytes, limits.max_head_bytes, body) {
                Ok(ChunkedStatus::Complete { consumed }) => Next::Request {
                    head,
                    body_in_read: None,
                    consumed: head.len + consumed,
                },
                Ok(ChunkedStatus::Partial) => Next::PartialBody {
                    expect_continue: head.expect_continue,
                    decoded_framing: Some((head.len, chunked.take_consumed())),
                },
                Err(error) => Next::Refused(error),
            }
        }
    }
}

/// The connection's buffers while it holds them; whatever way the
/// connection ends, they go back to the shard's pool for the next one.
struct Lent<'a> {
    pool: &'a BufferPool,
    buffers: Option<ConnBuffers>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(buffers) = self.buffers.take() {
            self.pool.give(buffers);
        }
    }
}

/// A connection's place on its shard: counted in `open` and in the drain
/// registry from spawn until the task ends, however it ends (even if it is
/// dropped before it ever runs).
pub struct Registration {
    shard: Rc<ShardLocal>,
    key: usize,
}

impl Registration {
    pub fn new(shard: Rc<ShardLocal>) -> Self {
        // Open first, then no longer queued: the acceptor, reading the two
        // without a lock, may count this connection twice for an instant but
        // never zero times, so a shard cannot go over its limit.
        shard.stats.open.fetch_add(1, Relaxed);
        // Only handed-off connections were counted as queued; for any other
        // listener `queued` stays 0 and this does nothing.
        let _ = shard
            .stats
            .queued
            .fetch_update(Relaxed, Relaxed, |queued| queued.checked_sub(1));
        let key = shard.drain.register();
        Registration { shard, key }
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.shard.drain.unregister(self.key);
        self.shard.stats.open.fetch_sub(1, Relaxed);
        if let Some(room) = &self.shard.room {
            room.notify();
        }
    }
}

/// Only re-run the head parser on a partial head when a new line has arrived
/// since the last attempt (or the limits may have been crossed).
fn worth_decoding(avail: &[u8], scanned: usize) -> bool {
    avail.len() < scanned
        || memchr(b'\n', &avail[scanned.saturating_sub(1)..]).is_some()
        || avail.len() > 4096
}

fn wait_for_body(
    waiting: &mut Waiting,
    deadline: &mut Deadline,
    expect_continue: bool,
    sent_continue: &mut bool,
    write: &mut Vec<u8>,
) {
    if *waiting != Waiting::Body {
        *waiting = Waiting::Body;
        deadline.due = None;
    }
    if expect_continue && !*sent_continue {
        write.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        *sent_continue = true;
    }
}

fn refuse(shard: &ShardLocal, error: HttpError, date: &[u8; 29], write: &mut Vec<u8>) {
    if error != HttpError::RequestTimeout {
        shard.stats.bad_requests.fetch_add(1, Relaxed);
    }
    shard.stats.requests.fetch_add(1, Relaxed);
    encode_error(error, date, write);
}

fn internal_error() -> Response {
    Response::new(500)
        .with_header("Content-Type", "text/plain")
        .with_body("internal server error\n")
}

/// Run the app, turning a panic (while building or polling its future) into `None`.
async fn call_app<A: App>(app: &A, request: &Request<'_>) -> Option<Response> {
    let future = catch_unwind(AssertUnwindSafe(|| app.call(request))).ok()?;
    let mut future = pin!(future);
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(response)) => Poll::Ready(Some(response)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        },
    )
    .await
}

/// Read into the connection's buffer. While idle, the buffers go back to the
/// shard's pool for as long as the read is pending.
fn poll_read_more<C: AsyncRead + Unpin>(
    io: &mut C,
    cx: &mut Context<'_>,
    shard: &ShardLocal,
    bufs: &mut Option<ConnBuffers>,
    start: &mut usize,
    waiting: Waiting,
    deadline: &mut Deadline,
) -> Poll<ReadOutcome> {
    let idle = matches!(waiting, Waiting::Idle | Waiting::Initial);
    if waiting == Waiting::Idle && shard.drain.is_draining() {
        return Poll::Ready(ReadOutcome::Drained);
    }
    let buffers = bufs.get_or_insert_with(|| shard.pool.take());
    make_room(&mut buffers.read, start);
    let filled_before = buffers.read.len();
    let spare = buffers.read.spare_capacity_mut();
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
            unsafe { buffers.read.set_len(filled_before + n) };
            Poll::Ready(if n == 0 {
                ReadOutcome::Eof
            } else {
                ReadOutcome::Data
            })
        }
        Poll::Ready(Err(_)) => Poll::Ready(ReadOutcome::Failed),
        Poll::Pending if waiting == Waiting::Initial && shard.drain.is_draining() => {
            // Handed over during the drain with nothing sent yet: close.
            Poll::Ready(ReadOutcome::Drained)
        }
        Poll::Pending => {
            if idle && buffers.read.is_empty() {
                if let Some(buffers) = bufs.take() {
                    shard.pool.give(buffers);
                }
                *start = 0;
            }
            let limits = &shard.limits;
            let timeout = match waiting {
                Waiting::Idle => limits.idle_timeout,
                Waiting::Initial | Waiting::Head => limits.header_timeout,
                Waiting::Body => limits.body_timeout,
            };
            poll_deadline(deadline, timeout, cx).map(|()| ReadOutcome::TimedOut)
        }
    }
}

/// Ensure a useful amount of free space: drop consumed bytes, then grow.
fn make_room(read: &mut Vec<u8>, start: &mut usize) {
    if read.capacity() - read.len() >= MIN_READ_SPACE {
        return;
    }
    if *start > 0 {
        read.copy_within(*start.., 0);
        read.truncate(read.len() - *start);
        *start = 0;
    }
    if read.capacity() - read.len() < MIN_READ_SPACE {
        read.reserve(read.capacity().max(MIN_READ_SPACE));
    }
}

/// Ready when the deadline for the current wait has passed. The deadline is
/// fixed at the first pending poll of a wait (`due == None` means "start
/// now"). The timer is only re-armed when it fires before a deadline that
/// has since moved later, so keep-alive traffic does not touch the timer wheel.
fn poll_deadline(deadline: &mut Deadline, timeout: Duration, cx: &mut Context<'_>) -> Poll<()> {
    let due = *deadline.due.get_or_insert_with(|| Instant::now() + timeout);
    let timer = deadline
        .timer
        .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
    if timer.deadline() > due {
        timer.as_mut().reset(due);
    }
    loop {
        match timer.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(()) if Instant::now() >= due => return Poll::Ready(()),
            Poll::Ready(()) => timer.as_mut().reset(due),
        }
    }
}

/// Write all of `data`. `Err(true)`: the send timeout passed; `Err(false)`: the peer is gone.
async fn write_all<C: AsyncWrite + Unpin>(
    io: &mut C,
    data: &[u8],
    deadline: &mut Deadline,
    send_timeout: Duration,
) -> Result<(), bool> {
    let mut written = 0;
    poll_fn(|cx| {
        while written < data.len() {
            match Pin::new(&mut *io).poll_write(cx, &data[written..]) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => return Poll::Ready(Err(false)),
                Poll::Ready(Ok(n)) => {
                    written += n;
                    deadline.due = None;
                }
                Poll::Pending => {
                    return poll_deadline(deadline, send_timeout, cx).map(|()| Err(true));
                }
            }
        }
        Poll::Ready(Ok(()))
    })
    .await
}

/// Send an error response on a connection that is being given up, then close it gracefully.
async fn answer_and_close<C: AsyncRead + AsyncWrite + Unpin>(
    io: &mut C,
    shard: &ShardLocal,
    error: HttpError,
    deadline: &mut Deadline,
) {
    let mut out = Vec::new();
    refuse(shard, error, &shard.date.get(), &mut out);
    deadline.due = None;
    if write_all(io, &out, deadline, shard.limits.send_timeout)
        .await
        .is_ok()
    {
        linger_close(io).await;
    }
}

/// Half-close, then read and discard until the client closes (bounded), so
/// unread request bytes do not turn our close into a reset that could
/// destroy the response before the client reads it.
async fn linger_close<C: AsyncRead + AsyncWrite + Unpin>(io: &mut C) {
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
