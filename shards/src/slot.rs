//! `ConnectionSlot`: a connection's place in its shard's bookkeeping.

use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;

use crate::drain::DrainKey;
use crate::env::ShardEnv;

/// Held by a connection's task from spawn until it ends, however it ends
/// (even if it is dropped before it ever runs): while held, the connection
/// counts as `open` in the shard's stats and the drain waits for it.
pub struct ConnectionSlot {
    env: Rc<ShardEnv>,
    key: DrainKey,
}

impl ConnectionSlot {
    /// Take a slot for a connection that is about to be spawned.
    pub fn take(env: Rc<ShardEnv>) -> Self {
        // Open first, then no longer queued: the acceptor, reading the two
        // without a lock, may count this connection twice for an instant but
        // never zero times, so a shard cannot go over its limit.
        env.stats.open.fetch_add(1, Relaxed);
        // Only handed-off connections were counted as queued; for any other
        // listener `queued` stays 0 and this does nothing.
        let _ = env
            .stats
            .queued
            .fetch_update(Relaxed, Relaxed, |queued| queued.checked_sub(1));
        let key = env.drain.register();
        ConnectionSlot { env, key }
    }

    /// The connection's entry in the drain, for its task to watch.
    pub fn drain_key(&self) -> DrainKey {
        self.key
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.env.drain.unregister(self.key);
        self.env.stats.open.fetch_sub(1, Relaxed);
        if let Some(waker) = &self.env.acceptor_waker {
            waker.notify();
        }
    }
}
