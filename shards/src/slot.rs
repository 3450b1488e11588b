//! `ConnectionSlot`: a connection's place in its shard's bookkeeping.

use std::rc::Rc;

use crate::drain::DrainKey;
use crate::env::ShardEnv;

/// Held by a connection's task from spawn until it ends, however it ends
/// (even if it is dropped before it ever runs): while held, the connection
/// counts as open in the shard's [`AdmissionLedger`](crate::runtime::AdmissionLedger)
/// and the drain waits for it.
pub(crate) struct ConnectionSlot {
    env: Rc<ShardEnv>,
    key: DrainKey,
}

impl ConnectionSlot {
    /// Take a slot for a connection that is about to be spawned.
    pub(crate) fn take(env: Rc<ShardEnv>) -> Self {
        env.stats.ledger.admit();
        let key = env.drain.register();
        ConnectionSlot { env, key }
    }

    /// The connection's entry in the drain, for its task to watch.
    pub(crate) fn drain_key(&self) -> DrainKey {
        self.key
    }
}

impl Drop for ConnectionSlot {
    fn drop(&mut self) {
        self.env.drain.unregister(self.key);
        // Wakes the acceptor if it waits for a shard with room.
        self.env.stats.ledger.release();
    }
}
