//! The public stats API: what the acceptor and each shard have done.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use shardd_shards::runtime::ShardStats;
use shardd_shards::ShardStatsSnapshot;

/// Counters kept by the main thread's acceptor.
#[derive(Debug, Default)]
pub(crate) struct AcceptorStats {
    /// Connections accepted from the listening socket.
    pub accepted: AtomicU64,
    /// Connections put into a shard's channel (straight away or from pending).
    pub handed_off: AtomicU64,
    /// Connections that had to wait in the pending queue (total).
    pub queued: AtomicU64,
    /// Connections in the pending queue right now.
    pub pending: AtomicUsize,
    /// Connections answered 503 by the main thread.
    pub rejected: AtomicU64,
    /// Times a shard was passed over because it was full (limit or channel).
    pub skipped_full: AtomicU64,
    /// Times a shard was passed over because its thread had died.
    pub skipped_dead: AtomicU64,
    /// accept(2) failures (EMFILE and friends).
    pub accept_errors: AtomicU64,
}

/// What the acceptor has done, at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AcceptorSnapshot {
    /// Connections accepted from the listening socket.
    pub accepted: u64,
    /// Connections put into a shard's channel (straight away or from pending).
    pub handed_off: u64,
    /// Connections that had to wait in the pending queue (total).
    pub queued: u64,
    /// Connections in the pending queue right now.
    pub pending: usize,
    /// Connections answered 503 by the main thread.
    pub rejected: u64,
    /// Times a shard was passed over because it was full (limit or channel).
    pub skipped_full: u64,
    /// Times a shard was passed over because its thread had died.
    pub skipped_dead: u64,
    /// accept(2) failures (EMFILE and friends).
    pub accept_errors: u64,
}

impl AcceptorStats {
    pub(crate) fn snapshot(&self) -> AcceptorSnapshot {
        AcceptorSnapshot {
            accepted: self.accepted.load(Relaxed),
            handed_off: self.handed_off.load(Relaxed),
            queued: self.queued.load(Relaxed),
            pending: self.pending.load(Relaxed),
            rejected: self.rejected.load(Relaxed),
            skipped_full: self.skipped_full.load(Relaxed),
            skipped_dead: self.skipped_dead.load(Relaxed),
            accept_errors: self.accept_errors.load(Relaxed),
        }
    }
}

/// Counters kept by the access-log writer thread.
#[derive(Debug, Default)]
pub(crate) struct AccessLogStats {
    /// Bytes written to the access log.
    pub bytes_written: AtomicU64,
    /// Writes that failed (each loses one buffer of lines).
    pub write_errors: AtomicU64,
    /// Lines lost to failed writes.
    pub lines_lost: AtomicU64,
}

/// What the access-log writer has done, at one moment. Lines the shards
/// dropped because the writer was behind are counted per shard
/// ([`ShardStatsSnapshot::access_log_dropped`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AccessLogSnapshot {
    /// Bytes written to the access log.
    pub bytes_written: u64,
    /// Writes that failed (each loses one buffer of lines).
    pub write_errors: u64,
    /// Lines lost to failed writes.
    pub lines_lost: u64,
}

impl AccessLogStats {
    pub(crate) fn snapshot(&self) -> AccessLogSnapshot {
        AccessLogSnapshot {
            bytes_written: self.bytes_written.load(Relaxed),
            write_errors: self.write_errors.load(Relaxed),
            lines_lost: self.lines_lost.load(Relaxed),
        }
    }
}

/// Everything a running server counts, shared by the acceptor, the shards and handles.
#[derive(Debug)]
pub(crate) struct ServerStats {
    pub acceptor: Arc<AcceptorStats>,
    pub shards: Vec<Arc<ShardStats>>,
    pub access_log: Arc<AccessLogStats>,
}

impl ServerStats {
    pub(crate) fn new(shards: usize) -> Self {
        ServerStats {
            acceptor: Arc::default(),
            shards: (0..shards)
                .map(|_| Arc::new(ShardStats::default()))
                .collect(),
            access_log: Arc::default(),
        }
    }

    pub(crate) fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            acceptor: self.acceptor.snapshot(),
            shards: self.shards.iter().map(|s| s.snapshot()).collect(),
            access_log: self.access_log.snapshot(),
        }
    }
}

/// A point-in-time copy of all counters.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StatsSnapshot {
    /// The acceptor's stats (zero without an acceptor).
    pub acceptor: AcceptorSnapshot,
    /// One entry per shard, by shard index.
    pub shards: Vec<ShardStatsSnapshot>,
    /// The access-log writer's stats (zero when the access log is off).
    pub access_log: AccessLogSnapshot,
}

impl StatsSnapshot {
    /// Requests answered by all shards.
    pub fn requests(&self) -> u64 {
        self.shards.iter().map(|s| s.requests).sum()
    }

    /// Connections open on all shards.
    pub fn open_connections(&self) -> usize {
        self.shards.iter().map(|s| s.open).sum()
    }

    /// Access-log lines all shards dropped because the writer was behind.
    pub fn access_log_dropped(&self) -> u64 {
        self.shards.iter().map(|s| s.access_log_dropped).sum()
    }
}
