//! The access log, seen from one shard: a line per answer, formatted into a
//! shard-local buffer that goes to the writer thread when it fills (or once
//! a second), without ever waiting for it.
//!
//! The shard never touches the disk. It hands a full buffer (64 KiB) to the
//! writer over a bounded channel with `try_send`; when the channel is full
//! (the writer is behind: a slow disk, a stuck pipe) the buffer's lines are
//! dropped and counted in [`ShardStats::access_log_dropped`] instead, and
//! the buffer is reused. The writer sends emptied buffers back over a
//! second channel, so in the steady state logging allocates nothing.
//!
//! Formats ([`AccessLogFormat`]): Apache's `common` and `combined`, as
//! their parsers expect them, and `json`, one object per line with the
//! duration and the shard as well.
//!
//! This file is the shard's side: the buffer and the hand-off.
//! [`format`] names the formats, [`line`] writes one line, [`time`]
//! formats the current second.

mod format;
mod line;
#[cfg(test)]
mod tests;
mod time;

use std::cell::{Cell, RefCell};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use flume::TrySendError;
use http::StatusCode;

use crate::listener::PeerAddr;
use crate::request::Request;
use crate::stats::ShardStats;

pub use format::AccessLogFormat;
use line::Line;
use time::Timestamps;

/// A shard hands its buffer to the writer once it holds this many bytes.
pub const HAND_OFF_AT: usize = 64 * 1024;

/// A new buffer's capacity: the lines of one hand-off and room for the
/// line that crosses [`HAND_OFF_AT`], so appending it rarely grows the buffer.
pub const BUFFER_CAPACITY: usize = HAND_OFF_AT + 8 * 1024;

/// Where a shard sends its access-log lines: the writer's channel of full
/// buffers, and the channel on which it returns them emptied.
#[derive(Clone, Debug)]
pub struct AccessLogSink {
    /// How lines are written.
    pub format: AccessLogFormat,
    /// Full buffers to the writer (bounded: a full channel drops lines).
    pub lines: flume::Sender<Vec<u8>>,
    /// Emptied buffers back from the writer, for reuse.
    pub spare: flume::Receiver<Vec<u8>>,
}

/// One shard's access log: its buffer and its end of the writer's channels.
pub(crate) struct AccessLog {
    format: AccessLogFormat,
    shard: usize,
    lines: flume::Sender<Vec<u8>>,
    spare: flume::Receiver<Vec<u8>>,
    stats: Arc<ShardStats>,
    buffer: RefCell<Vec<u8>>,
    /// Lines in `buffer`: what is counted as dropped if it cannot be handed off.
    buffered_lines: Cell<u64>,
    /// The current second, formatted; refreshed with the `Date` cache.
    time: Cell<Timestamps>,
    /// A drop has been logged (once per shard: the count says the rest).
    warned: Cell<bool>,
}

impl AccessLog {
    /// The access log of shard `shard`, writing to `sink`.
    pub(crate) fn new(sink: AccessLogSink, shard: usize, stats: Arc<ShardStats>) -> Self {
        AccessLog {
            format: sink.format,
            shard,
            buffer: RefCell::new(Vec::with_capacity(BUFFER_CAPACITY)),
            lines: sink.lines,
            spare: sink.spare,
            stats,
            buffered_lines: Cell::new(0),
            time: Cell::new(Timestamps::at(SystemTime::now())),
            warned: Cell::new(false),
        }
    }

    /// Log an answered request: `status` as sent, `body_bytes` the length
    /// of the body (`None`: a stream, not known when the head is encoded),
    /// `took` from the start of the request's batch to its encoded answer.
    pub(crate) fn record(
        &self,
        request: &Request<'_>,
        status: StatusCode,
        body_bytes: Option<usize>,
        took: Duration,
    ) {
        self.write_line(Line {
            peer: request.peer(),
            request: Some(request),
            status,
            body_bytes,
            took: Some(took),
        });
    }

    /// Log a request refused before it reached the app (a 4xx or 5xx from
    /// the codec, a 408): no method or target to show.
    pub(crate) fn record_refusal(&self, peer: &PeerAddr, status: StatusCode, body_bytes: usize) {
        self.write_line(Line {
            peer,
            request: None,
            status,
            body_bytes: Some(body_bytes),
            took: None,
        });
    }

    /// Once a second: a new time for the lines to come, and the lines so far to the writer.
    pub(crate) fn tick(&self) {
        self.time.set(Timestamps::at(SystemTime::now()));
        self.flush();
    }

    /// Hand what is buffered to the writer now.
    pub(crate) fn flush(&self) {
        let mut buffer = self.buffer.borrow_mut();
        if !buffer.is_empty() {
            self.hand_off(&mut buffer);
        }
    }

    fn write_line(&self, line: Line<'_>) {
        let mut buffer = self.buffer.borrow_mut();
        let time = self.time.get();
        match self.format {
            AccessLogFormat::Common => line.common(&time, &mut buffer),
            AccessLogFormat::Combined => {
                line.common(&time, &mut buffer);
                line.referer_and_agent(&mut buffer);
            }
            AccessLogFormat::Json => line.json(&time, self.shard, &mut buffer),
        }
        buffer.push(b'\n');
        self.buffered_lines.set(self.buffered_lines.get() + 1);
        if buffer.len() >= HAND_OFF_AT {
            self.hand_off(&mut buffer);
        }
    }

    /// Send `buffer` to the writer and take a spare one, or, if the writer
    /// is behind (or gone), count its lines as dropped and reuse it.
    fn hand_off(&self, buffer: &mut Vec<u8>) {
        let lines = self.buffered_lines.replace(0);
        let full = std::mem::take(buffer);
        match self.lines.try_send(full) {
            Ok(()) => {
                *buffer = self
                    .spare
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BUFFER_CAPACITY));
            }
            Err(TrySendError::Full(mut full) | TrySendError::Disconnected(mut full)) => {
                full.clear();
                *buffer = full;
                self.stats.access_log_dropped.fetch_add(lines, Relaxed);
                if !self.warned.replace(true) {
                    log::warn!(
                        "shard {}: the access-log writer is behind; dropping lines \
                         (counted in the shard stats as access_log_dropped)",
                        self.shard
                    );
                }
            }
        }
    }
}

impl Drop for AccessLog {
    /// The shard is ending (drained, or its thread died): its last lines go too.
    fn drop(&mut self) {
        self.flush();
    }
}
