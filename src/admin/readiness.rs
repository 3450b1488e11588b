//! Whether the server takes new connections: what `/health/ready` says.
//!
//! Ready while it accepts: no drain has started, and a new connection has
//! somewhere to go (a live shard below its limits, or room in the
//! acceptor's pending queue). From the moment a drain starts it is not, so
//! a load balancer stops routing here before any connection is closed.
//! And while a service the app needs (a database) is down, it is not
//! either: its requests would only get 503s.

use crate::config::Admission;
use crate::stats::StatsSnapshot;

/// Whether a new connection would be taken, and if not, why.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Readiness {
    /// New connections are served (or queued).
    Ready,
    /// A drain has started: no new connections.
    Draining,
    /// Every shard is full (or dead) and so is the pending queue.
    Full,
    /// A service the app needs (a registered `Dependency`) is down.
    Unavailable,
}

impl Readiness {
    /// `ready`, `draining` or `full`.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Readiness::Ready => "ready",
            Readiness::Draining => "draining",
            Readiness::Full => "full",
            Readiness::Unavailable => "unavailable",
        }
    }
}

/// The room a server has for connections: what the stats are compared with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Capacity {
    /// The main thread accepts and applies admission control (handoff mode).
    /// Without it (reuseport, a custom listener) only the drain and dead
    /// shards make the server unready.
    pub acceptor: bool,
    /// Most connections one shard serves or has queued (`usize::MAX`: no limit).
    pub max_per_shard: usize,
    /// Capacity of each shard's handoff channel.
    pub channel_capacity: usize,
    /// Connections the acceptor may hold while every shard is full.
    pub max_pending: usize,
}

impl Capacity {
    /// The capacity `admission` and `channel_capacity` give a server, with or without an acceptor.
    pub(crate) fn new(acceptor: bool, admission: &Admission, channel_capacity: usize) -> Capacity {
        Capacity {
            acceptor,
            max_per_shard: match admission.max_connections_per_shard {
                0 => usize::MAX,
                max => max,
            },
            channel_capacity,
            max_pending: admission.max_pending,
        }
    }

    /// Ready, draining or full, given the drain flag and the stats now.
    pub(crate) fn readiness(&self, draining: bool, stats: &StatsSnapshot) -> Readiness {
        if draining {
            return Readiness::Draining;
        }
        let room = if self.acceptor {
            // As the dispatcher decides: alive, below the limit, channel not full.
            let shard_has_room = stats.shards.iter().any(|shard| {
                shard.alive
                    && shard.queued + shard.open < self.max_per_shard
                    && shard.queued < self.channel_capacity
            });
            shard_has_room || stats.acceptor.pending < self.max_pending
        } else {
            stats.shards.iter().any(|shard| shard.alive)
        };
        if room {
            Readiness::Ready
        } else {
            Readiness::Full
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shardd_shards::ShardStatsSnapshot;

    fn stats(shards: &[(bool, usize)], pending: usize) -> StatsSnapshot {
        let mut stats = StatsSnapshot::default();
        stats.acceptor.pending = pending;
        stats.shards = shards
            .iter()
            .map(|&(alive, open)| ShardStatsSnapshot {
                alive,
                open,
                ..ShardStatsSnapshot::default()
            })
            .collect();
        stats
    }

    fn capacity(acceptor: bool) -> Capacity {
        let admission = Admission {
            max_connections_per_shard: 2,
            max_pending: 1,
            ..Admission::default()
        };
        Capacity::new(acceptor, &admission, 16)
    }

    #[test]
    fn full_only_when_every_shard_and_the_pending_queue_are() {
        let c = capacity(true);
        assert_eq!(
            c.readiness(false, &stats(&[(true, 1)], 0)),
            Readiness::Ready
        );
        assert_eq!(
            c.readiness(false, &stats(&[(true, 2), (true, 2)], 0)),
            Readiness::Ready,
            "the pending queue has room"
        );
        assert_eq!(
            c.readiness(false, &stats(&[(true, 2), (false, 0)], 1)),
            Readiness::Full,
            "a dead shard has no room"
        );
        assert_eq!(
            c.readiness(true, &stats(&[(true, 0)], 0)),
            Readiness::Draining
        );
    }

    #[test]
    fn without_an_acceptor_only_the_drain_and_dead_shards_count() {
        let c = capacity(false);
        assert_eq!(
            c.readiness(false, &stats(&[(true, 9)], 5)),
            Readiness::Ready
        );
        assert_eq!(
            c.readiness(false, &stats(&[(false, 0)], 0)),
            Readiness::Full
        );
    }

    #[test]
    fn no_limit_means_room() {
        let c = Capacity::new(true, &Admission::default(), 16);
        assert_eq!(
            c.readiness(false, &stats(&[(true, 100_000)], 0)),
            Readiness::Ready
        );
    }
}
