//! `DatabaseHealth`: what every shard's pool reports to the rest of the
//! process: live connections per shard (what `/health/ready` asks) and
//! counters of how requests fared (what `/metrics` shows).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;

/// How one request's use of the database ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Its queries were answered.
    Answered,
    /// Too many requests of its shard were waiting on the database: 503 at once.
    Busy,
    /// Its shard had no live connection: 503 at once.
    Unavailable,
    /// Its queries took longer than `query_timeout_ms`: 503.
    TimedOut,
    /// Postgres answered with an error, or the connection broke under it: 500 or 503.
    Failed,
}

impl Outcome {
    /// Every outcome, in the order `/metrics` lists them.
    pub const ALL: [Outcome; 5] = [
        Outcome::Answered,
        Outcome::Busy,
        Outcome::Unavailable,
        Outcome::TimedOut,
        Outcome::Failed,
    ];

    /// The `outcome` label's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Answered => "answered",
            Outcome::Busy => "busy",
            Outcome::Unavailable => "unavailable",
            Outcome::TimedOut => "timed_out",
            Outcome::Failed => "failed",
        }
    }
}

/// Shared by every shard's [`Database`](super::Database) and read by the
/// admin port: each shard writes only its own counters (on a cache line of
/// their own, so shards never contend on a request's count); the rare
/// connection events are shared.
#[derive(Debug)]
pub struct DatabaseHealth {
    shards: Box<[ShardHealth]>,
    connects: AtomicU64,
    connect_failures: AtomicU64,
}

/// One shard's figures, written by that shard's thread only.
#[derive(Debug, Default)]
#[repr(align(128))]
struct ShardHealth {
    live_connections: AtomicUsize,
    outcomes: [AtomicU64; 5],
}

impl DatabaseHealth {
    /// Health for `shard_count` shards, none connected yet.
    pub fn new(shard_count: usize) -> Arc<DatabaseHealth> {
        Arc::new(DatabaseHealth {
            shards: (0..shard_count.max(1))
                .map(|_| ShardHealth::default())
                .collect(),
            connects: AtomicU64::new(0),
            connect_failures: AtomicU64::new(0),
        })
    }

    /// Whether every shard has at least one live connection: a request
    /// landing on any shard can reach the database.
    pub fn is_ready(&self) -> bool {
        self.shards
            .iter()
            .all(|shard| shard.live_connections.load(Ordering::Relaxed) > 0)
    }

    /// Live connections of each shard.
    pub fn live_connections(&self) -> Vec<usize> {
        self.shards
            .iter()
            .map(|shard| shard.live_connections.load(Ordering::Relaxed))
            .collect()
    }

    /// Requests that ended with `outcome`, since start, on every shard.
    pub fn outcome_count(&self, outcome: Outcome) -> u64 {
        self.shards
            .iter()
            .map(|shard| shard.outcomes[outcome as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// Connections opened (with their statements prepared), since start.
    pub fn connects(&self) -> u64 {
        self.connects.load(Ordering::Relaxed)
    }

    /// Attempts to connect that failed, since start.
    pub fn connect_failures(&self) -> u64 {
        self.connect_failures.load(Ordering::Relaxed)
    }

    /// The Prometheus exposition of these figures (`shardd_database_*`).
    pub fn write_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(
            out,
            "# HELP shardd_database_connections Live Postgres connections, by shard.\n\
             # TYPE shardd_database_connections gauge"
        );
        for (shard, live) in self.live_connections().into_iter().enumerate() {
            let _ = writeln!(
                out,
                "shardd_database_connections{{shard=\"{shard}\"}} {live}"
            );
        }
        let _ = writeln!(
            out,
            "# HELP shardd_database_requests_total Requests that used the database, by how it went \
             (busy, unavailable and timed_out got 503).\n\
             # TYPE shardd_database_requests_total counter"
        );
        for outcome in Outcome::ALL {
            let _ = writeln!(
                out,
                "shardd_database_requests_total{{outcome=\"{}\"}} {}",
                outcome.as_str(),
                self.outcome_count(outcome)
            );
        }
        let _ = writeln!(
            out,
            "# HELP shardd_database_connects_total Postgres connections opened.\n\
             # TYPE shardd_database_connects_total counter\n\
             shardd_database_connects_total {}\n\
             # HELP shardd_database_connect_failures_total Attempts to connect to Postgres that failed.\n\
             # TYPE shardd_database_connect_failures_total counter\n\
             shardd_database_connect_failures_total {}",
            self.connects(),
            self.connect_failures()
        );
    }

    /// One more request of `shard` that ended with `outcome`. Only that
    /// shard's thread counts there: a load and a store, no locked add.
    pub(super) fn count(&self, shard: usize, outcome: Outcome) {
        let counter = &self.shard(shard).outcomes[outcome as usize];
        counter.store(counter.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
    }

    pub(super) fn count_connect_failure(&self) {
        self.connect_failures.fetch_add(1, Ordering::Relaxed);
    }

    fn shard(&self, shard: usize) -> &ShardHealth {
        &self.shards[shard.min(self.shards.len() - 1)]
    }

    /// One more live connection on `shard`, until the guard drops.
    pub(super) fn connected(self: &Arc<Self>, shard: usize) -> LiveConnection {
        self.connects.fetch_add(1, Ordering::Relaxed);
        let shard = shard.min(self.shards.len() - 1);
        self.shard(shard)
            .live_connections
            .fetch_add(1, Ordering::Relaxed);
        LiveConnection {
            health: Arc::clone(self),
            shard,
        }
    }
}

/// Counts one live connection while it lives.
#[derive(Debug)]
pub(super) struct LiveConnection {
    health: Arc<DatabaseHealth>,
    shard: usize,
}

impl Drop for LiveConnection {
    fn drop(&mut self) {
        self.health
            .shard(self.shard)
            .live_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ready_only_while_every_shard_has_a_connection() {
        let health = DatabaseHealth::new(2);
        assert!(!health.is_ready());
        let first = health.connected(0);
        assert!(!health.is_ready(), "shard 1 has none");
        let second = health.connected(1);
        assert!(health.is_ready());
        drop(first);
        assert!(!health.is_ready());
        drop(second);
        assert_eq!(health.live_connections(), [0, 0]);
        assert_eq!(health.connects(), 2);
    }

    #[test]
    fn metrics_name_every_outcome() {
        let health = DatabaseHealth::new(1);
        health.count(0, Outcome::Busy);
        let mut text = String::new();
        health.write_metrics(&mut text);
        assert!(
            text.contains("shardd_database_requests_total{outcome=\"busy\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("shardd_database_connections{shard=\"0\"} 0"),
            "{text}"
        );
    }
}
