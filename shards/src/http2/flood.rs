//! `FloodWatch`: the client's bytes, on their way to `h2`, watched frame by
//! frame for floods of frames that cost the server work and ask for
//! nothing it serves: PING and SETTINGS (each owed an answer), PRIORITY,
//! and DATA frames of a few bytes (a request body sent a byte at a time).
//!
//! `h2` bounds what such frames may queue, but answers every one of them:
//! a client sending hundreds of thousands a second keeps a shard busy for
//! nothing. Each second a connection may send `max_control_frames_per_second`
//! of them, plus one for every KiB it carries (read or written) in that
//! second: a busy honest connection earns room for its pings (gRPC
//! clients ping once per round trip to size their windows while data
//! flows), a flood carries almost no bytes. Past that, the watch stops
//! passing bytes to `h2` and raises its alarm; the connection then sends
//! GOAWAY `ENHANCE_YOUR_CALM` and closes.
//!
//! Only frame headers are read (9 bytes per frame, payloads skipped), so
//! the watch costs a few instructions per frame.

use std::cell::Cell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use tokio::time::Instant;

use super::PREFACE;

/// DATA frames that carry fewer bytes than this, and do not end their
/// stream, count as overhead: their header costs more than their payload.
pub(super) const SMALL_DATA: u32 = 64;

const HEADER_LEN: usize = 9;
const DATA: u8 = 0x0;
const PRIORITY: u8 = 0x2;
const SETTINGS: u8 = 0x4;
const PING: u8 = 0x6;
/// END_STREAM on DATA, ACK on SETTINGS and PING: the same bit.
const END_STREAM_OR_ACK: u8 = 0x1;

/// Set once the client flooded; shared with the connection's loop.
pub(super) type FloodAlarm = Rc<Cell<bool>>;

/// `io` with its incoming frames counted.
pub(super) struct FloodWatch<C> {
    io: C,
    scan: FrameScan,
    window: OverheadWindow,
    alarm: FloodAlarm,
}

impl<C> FloodWatch<C> {
    /// Watch `io`, a connection whose first bytes are the preface; past
    /// `limit` overhead frames in one second, `alarm` is set.
    pub(super) fn new(io: C, limit: u32) -> (Self, FloodAlarm) {
        let alarm = FloodAlarm::default();
        let watch = FloodWatch {
            io,
            scan: FrameScan::new(),
            window: OverheadWindow::new(limit),
            alarm: alarm.clone(),
        };
        (watch, alarm)
    }
}

impl<C: AsyncRead + Unpin> AsyncRead for FloodWatch<C> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.alarm.get() {
            // Nothing more reaches h2; the connection's loop, woken when
            // the alarm went off, is closing it.
            return Poll::Pending;
        }
        let before = buf.filled().len();
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = result {
            let read = &buf.filled()[before..];
            let overhead = this.scan.count_overhead(read);
            if this.window.count(overhead, read.len()) {
                this.alarm.set(true);
                // The loop polls the alarm in this same task.
                cx.waker().wake_by_ref();
            }
        }
        result
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for FloodWatch<C> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.io).poll_write(cx, bytes);
        if let Poll::Ready(Ok(n)) = written {
            this.window.count(0, n);
        }
        written
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = written {
            this.window.count(0, n);
        }
        written
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Overhead frames and bytes carried in the current one-second window.
struct OverheadWindow {
    limit: u32,
    started: Instant,
    overhead: u32,
    bytes: usize,
}

impl OverheadWindow {
    fn new(limit: u32) -> Self {
        OverheadWindow {
            limit,
            started: Instant::now(),
            overhead: 0,
            bytes: 0,
        }
    }

    /// Count `overhead` frames and `bytes` carried; `true` once the
    /// overhead is past the limit plus one per KiB.
    fn count(&mut self, overhead: u32, bytes: usize) -> bool {
        self.bytes = self.bytes.saturating_add(bytes);
        if overhead == 0 {
            // Most reads and every write carry no overhead frame: no clock
            // reading for them (it was a tenth of the guard's cost). The
            // window turns over when overhead next comes.
            return false;
        }
        let now = Instant::now();
        if now - self.started >= Duration::from_secs(1) {
            (self.started, self.overhead, self.bytes) = (now, 0, bytes);
        }
        self.overhead = self.overhead.saturating_add(overhead);
        let earned = u32::try_from(self.bytes / 1024).unwrap_or(u32::MAX);
        self.overhead > self.limit.saturating_add(earned)
    }
}

/// Where the scan is in the byte stream: frame headers may arrive split
/// across reads, payloads are skipped without being looked at.
struct FrameScan {
    /// Bytes of the preface or of a payload still to skip.
    skip: usize,
    /// The frame header being gathered.
    header: [u8; HEADER_LEN],
    gathered: usize,
}

impl FrameScan {
    fn new() -> Self {
        FrameScan {
            skip: PREFACE.len(),
            header: [0; HEADER_LEN],
            gathered: 0,
        }
    }

    /// Scan `bytes`, the next ones from the client; the number of overhead
    /// frames whose header they complete.
    fn count_overhead(&mut self, mut bytes: &[u8]) -> u32 {
        let mut overhead = 0;
        while !bytes.is_empty() {
            if self.skip > 0 {
                let skipped = self.skip.min(bytes.len());
                self.skip -= skipped;
                bytes = &bytes[skipped..];
                continue;
            }
            let taken = (HEADER_LEN - self.gathered).min(bytes.len());
            self.header[self.gathered..self.gathered + taken].copy_from_slice(&bytes[..taken]);
            self.gathered += taken;
            bytes = &bytes[taken..];
            if self.gathered == HEADER_LEN {
                self.gathered = 0;
                let [l0, l1, l2, kind, flags, ..] = self.header;
                let length = u32::from_be_bytes([0, l0, l1, l2]);
                overhead += u32::from(is_overhead(kind, flags, length));
                self.skip = length as usize;
            }
        }
        overhead
    }
}

/// Whether a frame asks the server for work without asking for anything
/// it serves.
fn is_overhead(kind: u8, flags: u8, length: u32) -> bool {
    let final_or_ack = flags & END_STREAM_OR_ACK != 0;
    match kind {
        PING | SETTINGS => !final_or_ack,
        PRIORITY => true,
        DATA => !final_or_ack && length < SMALL_DATA,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(kind: u8, flags: u8, payload: &[u8]) -> Vec<u8> {
        let mut bytes = (payload.len() as u32).to_be_bytes()[1..].to_vec();
        bytes.extend([kind, flags, 0, 0, 0, 1]);
        bytes.extend_from_slice(payload);
        bytes
    }

    #[test]
    fn counts_pings_settings_priority_and_tiny_data_but_not_acks_or_requests() {
        let mut stream = PREFACE.to_vec();
        stream.extend(frame(SETTINGS, 0, &[0; 6])); // counts
        stream.extend(frame(SETTINGS, END_STREAM_OR_ACK, &[])); // an ACK
        stream.extend(frame(0x1, 0x5, &[0x82; 40])); // HEADERS
        stream.extend(frame(DATA, 0, &[b'x'; 1])); // counts
        stream.extend(frame(DATA, 0, &[b'x'; 1000])); // a real piece
        stream.extend(frame(DATA, END_STREAM_OR_ACK, &[])); // the end
        stream.extend(frame(PING, 0, &[0; 8])); // counts
        stream.extend(frame(PING, END_STREAM_OR_ACK, &[0; 8])); // a pong
        stream.extend(frame(PRIORITY, 0, &[0; 5])); // counts
        assert_eq!(FrameScan::new().count_overhead(&stream), 4);
    }

    #[test]
    fn frame_headers_split_across_reads_are_counted_once() {
        let mut stream = PREFACE.to_vec();
        for _ in 0..3 {
            stream.extend(frame(PING, 0, &[7; 8]));
        }
        for piece in [1, 2, 5, 9, 17] {
            let mut scan = FrameScan::new();
            let counted: u32 = stream.chunks(piece).map(|c| scan.count_overhead(c)).sum();
            assert_eq!(counted, 3, "read {piece} bytes at a time");
        }
    }
}
