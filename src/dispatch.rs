//! Choosing a shard for each accepted connection.
//!
//! Round-robin (or least-connections) over the shards' channels, skipping a
//! shard that is full (its `max_connections_per_shard`, or its channel) or
//! dead, and counting every skip. A connection no shard can take is given
//! back to the acceptor, never dropped and never waited on.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use shardd_shards::listeners::HandoffConn;
use shardd_shards::runtime::ShardStats;

use crate::config::DispatchPolicy;
use crate::stats::AcceptorStats;

/// One shard as the acceptor sees it.
pub(crate) struct Route {
    pub channel: flume::Sender<HandoffConn>,
    pub stats: Arc<ShardStats>,
}

pub(crate) struct Dispatcher {
    routes: Vec<Route>,
    /// Where the next round-robin scan starts.
    next: usize,
    policy: DispatchPolicy,
    /// Per-shard connection limit (`usize::MAX` when unlimited).
    max_per_shard: usize,
    counters: Arc<AcceptorStats>,
}

impl Dispatcher {
    pub(crate) fn new(
        routes: Vec<Route>,
        policy: DispatchPolicy,
        max_per_shard: usize,
        counters: Arc<AcceptorStats>,
    ) -> Self {
        let max_per_shard = if max_per_shard == 0 {
            usize::MAX
        } else {
            max_per_shard
        };
        Dispatcher {
            routes,
            next: 0,
            policy,
            max_per_shard,
            counters,
        }
    }

    /// Hand `conn` to a shard; `Err(conn)` if none can take it now.
    pub(crate) fn dispatch(&mut self, conn: HandoffConn) -> Result<usize, HandoffConn> {
        let conn = match self.policy {
            DispatchPolicy::LeastConnections => match self.least_loaded() {
                Some(index) => match self.try_route(index, conn) {
                    Ok(()) => return Ok(index),
                    Err(conn) => conn,
                },
                None => conn,
            },
            DispatchPolicy::RoundRobin => conn,
        };
        self.round_robin(conn)
    }

    /// Whether some live shard is below its connection limit and has room
    /// in its channel: what a connection waits for. A full channel counts,
    /// or with no limit (`max_connections_per_shard = 0`) a held connection
    /// would always seem placeable and the acceptor would retry in a loop
    /// instead of waiting (the shard rings it when it takes one out).
    pub(crate) fn has_room(&self) -> bool {
        self.routes
            .iter()
            .any(|r| self.can_take(r) && !r.channel.is_full())
    }

    fn can_take(&self, route: &Route) -> bool {
        route.stats.alive.load(Relaxed) && route.stats.ledger.has_room(self.max_per_shard)
    }

    fn round_robin(&mut self, mut conn: HandoffConn) -> Result<usize, HandoffConn> {
        let count = self.routes.len();
        for offset in 0..count {
            let index = (self.next + offset) % count;
            match self.try_route(index, conn) {
                Ok(()) => {
                    self.next = (index + 1) % count;
                    return Ok(index);
                }
                Err(back) => conn = back,
            }
        }
        Err(conn)
    }

    /// The live shard with the lowest load; ties go to the next in round-robin
    /// order, so equal shards share the work instead of the first taking all.
    fn least_loaded(&mut self) -> Option<usize> {
        let count = self.routes.len();
        let chosen = (0..count)
            .map(|offset| (self.next + offset) % count)
            .filter(|&i| self.can_take(&self.routes[i]))
            .min_by_key(|&i| self.routes[i].stats.ledger.load())?;
        self.next = (chosen + 1) % count;
        Some(chosen)
    }

    fn try_route(&self, index: usize, conn: HandoffConn) -> Result<(), HandoffConn> {
        let route = &self.routes[index];
        if !route.stats.alive.load(Relaxed) {
            self.counters.skipped_dead.fetch_add(1, Relaxed);
            return Err(conn);
        }
        // Counted as queued before the shard can see it.
        if !route.stats.ledger.try_reserve(self.max_per_shard) {
            self.counters.skipped_full.fetch_add(1, Relaxed);
            return Err(conn);
        }
        match route.channel.try_send(conn) {
            Ok(()) => {
                route.stats.handed_off.fetch_add(1, Relaxed);
                self.counters.handed_off.fetch_add(1, Relaxed);
                Ok(())
            }
            Err(flume::TrySendError::Full(conn)) => {
                route.stats.ledger.cancel_reservation();
                self.counters.skipped_full.fetch_add(1, Relaxed);
                Err(conn)
            }
            Err(flume::TrySendError::Disconnected(conn)) => {
                route.stats.ledger.cancel_reservation();
                self.counters.skipped_dead.fetch_add(1, Relaxed);
                Err(conn)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{TcpListener, TcpStream};

    fn conn(listener: &TcpListener) -> HandoffConn {
        let _client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (stream, peer) = listener.accept().unwrap();
        HandoffConn {
            stream: stream.into(),
            peer: shardd_shards::PeerAddr::Tcp(peer),
        }
    }

    fn dispatcher(
        shards: usize,
        policy: DispatchPolicy,
        max: usize,
    ) -> (Dispatcher, Vec<flume::Receiver<HandoffConn>>) {
        let mut routes = Vec::new();
        let mut receivers = Vec::new();
        for _ in 0..shards {
            let (tx, rx) = flume::bounded(8);
            let stats = Arc::new(ShardStats::default());
            stats.alive.store(true, Relaxed);
            routes.push(Route { channel: tx, stats });
            receivers.push(rx);
        }
        (
            Dispatcher::new(routes, policy, max, Arc::default()),
            receivers,
        )
    }

    #[test]
    fn round_robin_skips_full_and_dead_shards() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut d, _rx) = dispatcher(3, DispatchPolicy::RoundRobin, 2);
        let order: Vec<usize> = (0..3)
            .map(|_| d.dispatch(conn(&listener)).unwrap())
            .collect();
        assert_eq!(order, [0, 1, 2]);
        d.routes[1].stats.alive.store(false, Relaxed);
        assert_eq!(d.dispatch(conn(&listener)).unwrap(), 0);
        assert_eq!(d.dispatch(conn(&listener)).unwrap(), 2);
        // Shards 0 and 2 are at their limit of 2, shard 1 is dead.
        assert!(d.dispatch(conn(&listener)).is_err());
        assert!(!d.has_room());
        assert!(d.counters.skipped_dead.load(Relaxed) >= 2);
    }

    #[test]
    fn with_no_limit_full_channels_leave_no_room() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut d, rx) = dispatcher(2, DispatchPolicy::RoundRobin, 0);
        for _ in 0..16 {
            d.dispatch(conn(&listener)).unwrap();
        }
        // Both channels (capacity 8) are full: what the acceptor waits on.
        assert!(!d.has_room());
        assert!(d.dispatch(conn(&listener)).is_err());
        rx[1].recv().unwrap();
        assert!(d.has_room());
    }

    #[test]
    fn least_connections_spreads_ties() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut d, rx) = dispatcher(2, DispatchPolicy::LeastConnections, 0);
        for _ in 0..4 {
            let shard = d.dispatch(conn(&listener)).unwrap();
            // The shard picks it up at once, so loads stay equal.
            rx[shard].recv().unwrap();
            d.routes[shard].stats.ledger.admit();
            d.routes[shard].stats.ledger.release();
        }
        let handed: Vec<u64> = d
            .routes
            .iter()
            .map(|r| r.stats.handed_off.load(Relaxed))
            .collect();
        assert_eq!(handed, [2, 2]);
    }

    #[test]
    fn least_connections_picks_the_emptiest() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let (mut d, _rx) = dispatcher(3, DispatchPolicy::LeastConnections, 0);
        for (route, open) in d.routes.iter().zip([5, 0, 1]) {
            (0..open).for_each(|_| route.stats.ledger.admit());
        }
        // Loads 5, 0, 1: the empty shard 1; then 5, 1, 1: the tie goes on to
        // shard 2; then 5, 1, 2: shard 1 again. Shard 0 is never picked.
        let picks: Vec<usize> = (0..3)
            .map(|_| d.dispatch(conn(&listener)).unwrap())
            .collect();
        assert_eq!(picks, [1, 2, 1]);
    }
}
