//! `ShardEnv`: what every connection on one shard shares.
//!
//! The connection loop sees its shard only through this: the limits it
//! enforces, the cached `Date`, the buffer pool, the drain, the stats and
//! the access log.
//! Single-threaded (`Cell`, `RefCell` inside), built once per shard.

use std::sync::Arc;

use crate::acceptor_waker::AcceptorWaker;
use crate::access_log::AccessLog;
use crate::buffers::BufferPool;
use crate::drain::Drain;
use crate::http::DateCache;
use crate::limits::Limits;
use crate::stats::ShardStats;

/// The shard-wide state a connection uses.
pub struct ShardEnv {
    pub limits: Limits,
    pub date: DateCache,
    pub pool: BufferPool,
    pub drain: Drain,
    /// Shared with the main thread (dispatch, admission, the stats API).
    pub stats: Arc<ShardStats>,
    /// Rung when a connection ends, so an acceptor waiting for room sees it.
    pub acceptor_waker: Option<Arc<AcceptorWaker>>,
    /// The shard's access log; `None` (the default) when it is off, so the
    /// hot path pays one branch per request for it.
    pub access_log: Option<AccessLog>,
}
