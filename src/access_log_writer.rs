//! The access-log writer: a thread off the shards that writes the buffers
//! of lines they hand it to a file (appended, created if missing) or to
//! standard output.
//!
//! The shards never wait for it: they hand it full buffers with `try_send`
//! over a bounded channel and drop (and count) the lines when it is full.
//! The writer returns each emptied buffer for reuse. A failed write is
//! logged once and counted, never fatal. When the shards have stopped (all
//! senders gone) it writes what is left and ends; the server waits for it
//! only so long (a writer stuck on a dead disk is left behind), then logs
//! what was written, dropped and lost.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use shardd_shards::runtime::{AccessLogSink, ShardStats, BUFFER_CAPACITY};

use crate::config::{AccessLogTarget, Logging};
use crate::error::Error;
use crate::stats::{AccessLogStats, ServerStats};

/// A buffer that grew past this (a run of huge lines) is freed, not reused.
const MAX_REUSED_CAPACITY: usize = 4 * BUFFER_CAPACITY;

/// Emptied buffers kept for reuse beyond one per shard: enough for the
/// steady state; those emptied after a burst beyond that are freed.
const SPARE_BEYOND_SHARDS: usize = 8;

/// The running writer thread.
pub(crate) struct AccessLogWriter {
    thread: JoinHandle<()>,
    /// Disconnected when the thread ends.
    done: flume::Receiver<()>,
    target: AccessLogTarget,
    /// For the closing line: what the writer and the shards counted.
    stats: Arc<AccessLogStats>,
    shards: Vec<Arc<ShardStats>>,
}

enum Output {
    Stdout(io::Stdout),
    File(File),
}

impl Write for Output {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        match self {
            Output::Stdout(out) => out.write(bytes),
            Output::File(file) => file.write(bytes),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::Stdout(out) => out.flush(),
            Output::File(file) => file.flush(),
        }
    }
}

impl AccessLogWriter {
    /// Open the access log `settings` name and start its writer; `None`
    /// when it is off. The sink is what each shard gets.
    pub(crate) fn start(
        settings: &Logging,
        server_stats: &ServerStats,
    ) -> Result<Option<(AccessLogWriter, AccessLogSink)>, Error> {
        let output = match &settings.access_log {
            AccessLogTarget::Off => return Ok(None),
            AccessLogTarget::Stdout => Output::Stdout(io::stdout()),
            AccessLogTarget::File(path) => Output::File(
                OpenOptions::new()
                    .append(true)
                    .create(true)
                    .open(path)
                    .map_err(|source| Error::AccessLog {
                        path: path.clone(),
                        source,
                    })?,
            ),
        };
        let capacity = settings.access_log_buffers;
        let (lines, to_write) = flume::bounded(capacity);
        let (give_back, spare) = flume::bounded(server_stats.shards.len() + SPARE_BEYOND_SHARDS);
        let stats = server_stats.access_log.clone();
        let writer_stats = stats.clone();
        let (finished, done) = flume::bounded::<()>(0);
        let target = settings.access_log.clone();
        let shown = target.to_string();
        let thread = std::thread::Builder::new()
            .name("access-log".into())
            .spawn(move || {
                write_all(output, &shown, to_write, give_back, &writer_stats);
                drop(finished);
            })?;
        log::info!(
            "access log ({}) to {target}, up to {capacity} buffers of 64 KiB waiting",
            settings.access_log_format
        );
        let sink = AccessLogSink {
            format: settings.access_log_format,
            lines,
            spare,
        };
        Ok(Some((
            AccessLogWriter {
                thread,
                done,
                target,
                stats,
                shards: server_stats.shards.clone(),
            },
            sink,
        )))
    }

    /// Once the shards have stopped: wait until everything they handed over
    /// is written, but not past `deadline`.
    pub(crate) fn finish(self, deadline: Instant) {
        match self.done.recv_deadline(deadline) {
            Err(flume::RecvTimeoutError::Timeout) => log::warn!(
                "the access log ({}) is still being written after the drain; \
                 what is not written yet is left behind",
                self.target
            ),
            _ => {
                let _ = self.thread.join();
            }
        }
        let stats = self.stats.snapshot();
        let dropped: u64 = self
            .shards
            .iter()
            .map(|shard| shard.access_log_dropped.load(Relaxed))
            .sum();
        log::info!(
            "access log ({}): {} bytes written, {dropped} lines dropped (writer behind), \
             {} lines lost to write errors",
            self.target,
            stats.bytes_written,
            stats.lines_lost
        );
    }
}

/// The writer thread: write every buffer, give it back, until the shards are gone.
fn write_all(
    mut output: Output,
    shown: &str,
    to_write: flume::Receiver<Vec<u8>>,
    give_back: flume::Sender<Vec<u8>>,
    stats: &AccessLogStats,
) {
    for mut buffer in to_write.iter() {
        match output.write_all(&buffer) {
            Ok(()) => {
                stats.bytes_written.fetch_add(buffer.len() as u64, Relaxed);
            }
            Err(error) => {
                let lines = buffer.iter().filter(|&&b| b == b'\n').count() as u64;
                stats.lines_lost.fetch_add(lines, Relaxed);
                if stats.write_errors.fetch_add(1, Relaxed) == 0 {
                    log::error!(
                        "cannot write the access log ({shown}): {error}; \
                         its lines are lost while this lasts (counted, logged only once)"
                    );
                }
            }
        }
        buffer.clear();
        if buffer.capacity() <= MAX_REUSED_CAPACITY {
            let _ = give_back.try_send(buffer);
        }
    }
    let _ = output.flush();
}
