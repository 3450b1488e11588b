//! Counters a shard shares with the main thread.
//!
//! Each shard owns one [`ShardStats`] (an `Arc` shared with the acceptor and
//! the public stats API). The shard adds to its counters once per read batch,
//! not per request, so the hot path pays one uncontended atomic per batch.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed};

/// Live counters of one shard.
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Connections the acceptor put in this shard's channel (total).
    pub handed_off: AtomicU64,
    /// Connections handed to this shard and not yet open on it (in its channel).
    pub queued: AtomicUsize,
    /// Connections this shard is serving right now.
    pub open: AtomicUsize,
    /// Connections this shard has started serving (total).
    pub accepted: AtomicU64,
    /// Requests answered (total), including error responses.
    pub requests: AtomicU64,
    /// Handler panics turned into 500 responses.
    pub handler_panics: AtomicU64,
    /// Connections closed by a timeout (header, body, idle or send).
    pub timeouts: AtomicU64,
    /// Requests rejected by the codec (4xx/5xx before reaching the app).
    pub bad_requests: AtomicU64,
    /// TLS handshakes completed (total).
    pub tls_handshakes: AtomicU64,
    /// TLS handshakes that failed: garbage or plain HTTP on the TLS port, a
    /// protocol or certificate error, the client closing mid-handshake.
    pub tls_handshake_failures: AtomicU64,
    /// TLS connections closed because the handshake timeout ran out.
    pub tls_handshake_timeouts: AtomicU64,
    /// Times the shard's thread died and was replaced.
    pub restarts: AtomicU32,
    /// False from the moment the shard's thread dies until its replacement runs.
    pub alive: AtomicBool,
}

impl ShardStats {
    /// Load as the dispatcher sees it: connections queued for or served by this shard.
    pub fn load(&self) -> usize {
        self.queued.load(Relaxed) + self.open.load(Relaxed)
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> ShardStatsSnapshot {
        ShardStatsSnapshot {
            handed_off: self.handed_off.load(Relaxed),
            queued: self.queued.load(Relaxed),
            open: self.open.load(Relaxed),
            accepted: self.accepted.load(Relaxed),
            requests: self.requests.load(Relaxed),
            handler_panics: self.handler_panics.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            bad_requests: self.bad_requests.load(Relaxed),
            tls_handshakes: self.tls_handshakes.load(Relaxed),
            tls_handshake_failures: self.tls_handshake_failures.load(Relaxed),
            tls_handshake_timeouts: self.tls_handshake_timeouts.load(Relaxed),
            restarts: self.restarts.load(Relaxed),
            alive: self.alive.load(Relaxed),
        }
    }
}

/// Plain copy of [`ShardStats`].
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ShardStatsSnapshot {
    /// Connections the acceptor put in this shard's channel (total).
    pub handed_off: u64,
    /// Connections handed to this shard and not yet open on it (in its channel).
    pub queued: usize,
    /// Connections this shard is serving right now.
    pub open: usize,
    /// Connections this shard has started serving (total).
    pub accepted: u64,
    /// Requests answered (total), including error responses.
    pub requests: u64,
    /// Handler panics turned into 500 responses.
    pub handler_panics: u64,
    /// Connections closed by a timeout (header, body, idle or send).
    pub timeouts: u64,
    /// Requests rejected by the codec (4xx/5xx before reaching the app).
    pub bad_requests: u64,
    /// TLS handshakes completed (total).
    pub tls_handshakes: u64,
    /// TLS handshakes that failed: garbage or plain HTTP on the TLS port, a
    /// protocol or certificate error, the client closing mid-handshake.
    pub tls_handshake_failures: u64,
    /// TLS connections closed because the handshake timeout ran out.
    pub tls_handshake_timeouts: u64,
    /// Times the shard's thread died and was replaced.
    pub restarts: u32,
    /// False from the moment the shard's thread dies until its replacement runs.
    pub alive: bool,
}
