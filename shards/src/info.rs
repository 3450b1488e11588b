//! `ShardInfo`: who a shard is, handed to app and listener factories.

/// Identity of the shard a factory is being called on.
///
/// App factories receive it so an app can keep shard-local state (caches,
/// connection pools, counters) without locks, the way actix-web's per-worker
/// factory does.
#[derive(Clone, Debug)]
pub struct ShardInfo {
    /// Index of this shard, `0..shard_count`. Stable across restarts.
    pub shard_id: usize,
    /// How many shards the server runs.
    pub shard_count: usize,
    /// The core this shard's thread is pinned to, if pinning is on and worked.
    pub core: Option<usize>,
    /// How many times this shard has been restarted after its thread died.
    pub generation: u32,
}
