//! Counters a shard shares with the main thread.
//!
//! Each shard owns one [`ShardStats`] (an `Arc` shared with the acceptor and
//! the public stats API). The shard adds to its counters once per read batch,
//! not per request, so the hot path pays one uncontended atomic per batch.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering::Relaxed};
use std::time::Duration;

use crate::content_stats::{CompressionCounters, CompressionSnapshot, FileCounters, FileSnapshot};
use crate::ledger::AdmissionLedger;

/// Upper bounds (seconds) of the request-duration histogram's buckets; the
/// last bucket, `+Inf`, is implied. Prometheus' default bounds, with finer
/// steps below a millisecond, where pipelined requests fall.
pub const DURATION_BOUNDS: [f64; 14] = [
    0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// Which wait ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeoutKind {
    /// The head of a request did not arrive in time (`header_timeout`).
    Header,
    /// A request body stalled (`body_timeout`).
    Body,
    /// A keep-alive connection sat idle (`idle_timeout`).
    Idle,
    /// The client did not read its responses (`send_timeout`).
    Send,
}

/// Why the shard sent an HTTP/2 GOAWAY, in `goaways_by_reason` order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GoawayReason {
    /// `NO_ERROR`: a drain, an idle connection, a client that went quiet.
    Graceful,
    /// `ENHANCE_YOUR_CALM`: a client cut off for abuse (rapid resets,
    /// floods of frames, tiny DATA frames, too many protocol errors).
    EnhanceYourCalm,
    /// A protocol or compression error by the client (a malformed frame,
    /// an HPACK block that breaks the rules or the header-list limit).
    ProtocolError,
    /// Any other reason (a flow-control or internal error).
    Other,
}

impl GoawayReason {
    /// The names `/metrics` uses, in order.
    pub const NAMES: [&'static str; 4] =
        ["no_error", "enhance_your_calm", "protocol_error", "other"];
}

/// HTTP/2 counters of one shard.
#[derive(Debug, Default)]
pub struct Http2Counters {
    /// Connections served as HTTP/2 (total).
    pub connections: AtomicU64,
    /// Streams the client reset before their response was complete.
    pub resets_by_client: AtomicU64,
    /// GOAWAY frames sent, by [`GoawayReason`].
    pub goaways_by_reason: [AtomicU64; 4],
}

impl Http2Counters {
    /// Count a GOAWAY sent for `reason`.
    pub fn goaway(&self, reason: GoawayReason) {
        self.goaways_by_reason[reason as usize].fetch_add(1, Relaxed);
    }
}

/// HTTP/2 counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Http2Snapshot {
    /// Connections served as HTTP/2 (total).
    pub connections: u64,
    /// Streams the client reset before their response was complete.
    pub resets_by_client: u64,
    /// GOAWAY frames sent, by [`GoawayReason`] (in its order).
    pub goaways_by_reason: [u64; 4],
}

/// Live counters of one shard.
#[derive(Debug, Default)]
pub struct ShardStats {
    /// Connections the acceptor put in this shard's channel (total).
    pub handed_off: AtomicU64,
    /// Connections handed to this shard and not yet open on it (in its
    /// channel), and those it serves: what admission counts.
    pub ledger: AdmissionLedger,
    /// Connections this shard has started serving (total).
    pub accepted: AtomicU64,
    /// Requests answered (total), including error responses.
    pub requests: AtomicU64,
    /// Handler panics turned into 500 responses.
    pub handler_panics: AtomicU64,
    /// Connections closed by a timeout (header, body, idle or send).
    pub timeouts: AtomicU64,
    /// The same, by [`TimeoutKind`] (in its order).
    pub timeouts_by_kind: [AtomicU64; 4],
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub responses_by_class: [AtomicU64; 5],
    /// How long requests took, from the start of answering the batch they
    /// came in to their responses being encoded (the app's time included,
    /// the network's not).
    pub request_duration: DurationHistogram,
    /// Requests rejected by the codec (4xx/5xx before reaching the app).
    pub bad_requests: AtomicU64,
    /// TLS handshakes completed (total).
    pub tls_handshakes: AtomicU64,
    /// TLS handshakes that failed: garbage or plain HTTP on the TLS port, a
    /// protocol or certificate error, the client closing mid-handshake.
    pub tls_handshake_failures: AtomicU64,
    /// TLS connections closed because the handshake timeout ran out.
    pub tls_handshake_timeouts: AtomicU64,
    /// Connections closed unanswered because their listener's
    /// [`establish`](crate::Listener::establish) failed: with the PROXY
    /// protocol, a header absent, malformed or too long, or the client
    /// closing before it was complete.
    pub establish_failures: AtomicU64,
    /// The same, because it took longer than its timeout (the PROXY
    /// protocol's header timeout).
    pub establish_timeouts: AtomicU64,
    /// Access-log lines this shard dropped because the access-log writer
    /// was behind (its queue full: a slow disk, a stuck pipe) or gone.
    pub access_log_dropped: AtomicU64,
    /// File bodies ([`Body::File`](crate::Body::File)) sent with
    /// `sendfile(2)`, not read through user space: those of plain TCP or
    /// Unix connections, behind the PROXY protocol too.
    pub sendfile_bodies: AtomicU64,
    /// HTTP/2 connections, resets and GOAWAYs.
    pub http2: Http2Counters,
    /// Static-file responses and open-file cache lookups.
    pub files: FileCounters,
    /// Responses compressed, and their bytes before and after.
    pub compression: CompressionCounters,
    /// Times the shard's thread died and was replaced.
    pub restarts: AtomicU32,
    /// False from the moment the shard's thread dies until its replacement runs.
    pub alive: AtomicBool,
}

/// Add `n` to a counter that only the shard's own thread writes (the
/// request, response, refusal and panic counters and the duration
/// histogram; a restarted shard's thread starts after the old one has
/// ended). A load and a store, not a locked
/// read-modify-write: on x86 each `fetch_add` is a full barrier, and a
/// keep-alive batch of one request paid four. Other threads still read
/// whole, never-decreasing values.
#[inline]
pub(crate) fn add_own(counter: &AtomicU64, n: u64) {
    counter.store(counter.load(Relaxed).wrapping_add(n), Relaxed);
}

/// Counts of durations in the buckets of [`DURATION_BOUNDS`].
#[derive(Debug, Default)]
pub struct DurationHistogram {
    /// Not cumulative: bucket `i` counts durations in (bound `i-1`, bound `i`];
    /// the last one, those above every bound.
    buckets: [AtomicU64; DURATION_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl DurationHistogram {
    /// Record `count` requests that each took `duration`. Only the shard's
    /// own thread records (see [`add_own`]).
    pub(crate) fn record(&self, duration: Duration, count: u64) {
        let seconds = duration.as_secs_f64();
        let bucket = DURATION_BOUNDS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(DURATION_BOUNDS.len());
        add_own(&self.buckets[bucket], count);
        let nanos = u64::try_from(duration.as_nanos()).unwrap_or(u64::MAX);
        add_own(&self.sum_nanos, nanos.saturating_mul(count));
    }

    /// Cumulative counts per bound (then `+Inf`, the total) and the sum.
    pub fn snapshot(&self) -> HistogramSnapshot {
        let mut running = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|bucket| {
                running += bucket.load(Relaxed);
                running
            })
            .collect();
        HistogramSnapshot {
            cumulative,
            sum_seconds: self.sum_nanos.load(Relaxed) as f64 / 1e9,
        }
    }
}

/// A copy of a shard's request-duration histogram, in Prometheus' shape.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// For each bound of [`DURATION_BOUNDS`], then `+Inf`: how many took at most that long.
    pub cumulative: Vec<u64>,
    /// The durations added up, in seconds.
    pub sum_seconds: f64,
}

impl HistogramSnapshot {
    /// How many were recorded.
    pub fn count(&self) -> u64 {
        self.cumulative.last().copied().unwrap_or(0)
    }
}

impl ShardStats {
    /// Count a connection closed because `kind` of wait ran out.
    pub fn timed_out(&self, kind: TimeoutKind) {
        self.timeouts.fetch_add(1, Relaxed);
        self.timeouts_by_kind[kind as usize].fetch_add(1, Relaxed);
    }

    /// A consistent-enough copy for reporting.
    pub fn snapshot(&self) -> ShardStatsSnapshot {
        ShardStatsSnapshot {
            handed_off: self.handed_off.load(Relaxed),
            queued: self.ledger.queued(),
            open: self.ledger.open(),
            accepted: self.accepted.load(Relaxed),
            requests: self.requests.load(Relaxed),
            handler_panics: self.handler_panics.load(Relaxed),
            timeouts: self.timeouts.load(Relaxed),
            timeouts_by_kind: self.timeouts_by_kind.each_ref().map(|n| n.load(Relaxed)),
            responses_by_class: self.responses_by_class.each_ref().map(|n| n.load(Relaxed)),
            request_duration: self.request_duration.snapshot(),
            bad_requests: self.bad_requests.load(Relaxed),
            tls_handshakes: self.tls_handshakes.load(Relaxed),
            tls_handshake_failures: self.tls_handshake_failures.load(Relaxed),
            tls_handshake_timeouts: self.tls_handshake_timeouts.load(Relaxed),
            establish_failures: self.establish_failures.load(Relaxed),
            establish_timeouts: self.establish_timeouts.load(Relaxed),
            access_log_dropped: self.access_log_dropped.load(Relaxed),
            sendfile_bodies: self.sendfile_bodies.load(Relaxed),
            http2: Http2Snapshot {
                connections: self.http2.connections.load(Relaxed),
                resets_by_client: self.http2.resets_by_client.load(Relaxed),
                goaways_by_reason: self
                    .http2
                    .goaways_by_reason
                    .each_ref()
                    .map(|n| n.load(Relaxed)),
            },
            files: self.files.snapshot(),
            compression: self.compression.snapshot(),
            restarts: self.restarts.load(Relaxed),
            alive: self.alive.load(Relaxed),
        }
    }
}

/// One shard's stats at one moment, read without locks
/// (`ServerHandle::stats` in `shardd`).
#[derive(Clone, Debug, Default, PartialEq)]
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
    /// The same, by [`TimeoutKind`]: header, body, idle, send.
    pub timeouts_by_kind: [u64; 4],
    /// Responses by status class: 1xx, 2xx, 3xx, 4xx, 5xx.
    pub responses_by_class: [u64; 5],
    /// How long requests took, from the start of answering the batch they
    /// came in to their responses being encoded (the app's time included,
    /// the network's not).
    pub request_duration: HistogramSnapshot,
    /// Requests rejected by the codec (4xx/5xx before reaching the app).
    pub bad_requests: u64,
    /// TLS handshakes completed (total).
    pub tls_handshakes: u64,
    /// TLS handshakes that failed: garbage or plain HTTP on the TLS port, a
    /// protocol or certificate error, the client closing mid-handshake.
    pub tls_handshake_failures: u64,
    /// TLS connections closed because the handshake timeout ran out.
    pub tls_handshake_timeouts: u64,
    /// Connections closed because their listener's `establish` step (a
    /// PROXY protocol header, say) failed: malformed, absent or too long.
    pub establish_failures: u64,
    /// Connections closed because their `establish` step ran out of time.
    pub establish_timeouts: u64,
    /// Access-log lines this shard dropped because the access-log writer
    /// was behind (its queue full: a slow disk, a stuck pipe) or gone.
    pub access_log_dropped: u64,
    /// File bodies sent with `sendfile(2)`.
    pub sendfile_bodies: u64,
    /// HTTP/2 connections, resets and GOAWAYs.
    pub http2: Http2Snapshot,
    /// Static-file responses and open-file cache lookups.
    pub files: FileSnapshot,
    /// Responses compressed, and their bytes before and after.
    pub compression: CompressionSnapshot,
    /// Times the shard's thread died and was replaced.
    pub restarts: u32,
    /// False from the moment the shard's thread dies until its replacement runs.
    pub alive: bool,
}
