//! The public stats API: what the acceptor and each shard have done.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use shardd_shards::runtime::ShardStats;
use shardd_shards::ShardStatsSnapshot;

/// Counters kept by the main thread's acceptor.
#[derive(Debug, Default)]
pub struct AcceptorStats {
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
    pub fn snapshot(&self) -> AcceptorSnapshot {
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

/// Everything a running server counts, shared by the acceptor, the shards and handles.
#[derive(Debug)]
pub struct ServerStats {
    pub acceptor: Arc<AcceptorStats>,
    pub shards: Vec<Arc<ShardStats>>,
}

impl ServerStats {
    pub fn new(shards: usize) -> Self {
        ServerStats {
            acceptor: Arc::default(),
            shards: (0..shards)
                .map(|_| Arc::new(ShardStats::default()))
                .collect(),
        }
    }

    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            acceptor: self.acceptor.snapshot(),
            shards: self.shards.iter().map(|s| s.snapshot()).collect(),
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
}
