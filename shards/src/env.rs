//! `ShardEnv`: what every connection on one shard shares.
//!
//! The connection loop sees its shard only through this: the limits it
//! enforces, the cached `Date`, the buffer pool, the drain, the stats and
//! the access log.
//! Single-threaded (`Cell`, `RefCell` inside), built once per shard.

use std::cell::Cell;
use std::ops::Deref;
use std::sync::Arc;

use crate::access_log::AccessLog;
use crate::buffers::BufferPool;
use crate::drain::Drain;
use crate::http::DateCache;
use crate::limits::Limits;
use crate::stats::ShardStats;

/// The shard-wide state a connection uses.
pub struct ShardEnv {
    /// Read as `&env.limits` (a `&Limits`); replaced live on a config reload.
    pub limits: LiveLimits,
    pub date: DateCache,
    pub pool: BufferPool,
    pub drain: Drain,
    /// Shared with the main thread (dispatch, admission, the stats API).
    pub stats: Arc<ShardStats>,
    /// The shard's access log; `None` (the default) when it is off, so the
    /// hot path pays one branch per request for it.
    pub access_log: Option<AccessLog>,
}

/// The shard's current [`Limits`], replaced whole when the configuration is
/// reloaded (`ShardCommand::SetLimits`). Derefs to `Limits`, so the
/// connection loop reads it as before, at the cost of one pointer load.
///
/// Each distinct set of limits is leaked (a few hundred bytes per shard and
/// reload): a reload is a rare, manual act, and a `&'static Limits` lets a
/// connection hold `&Limits` across awaits with no reference counting on the
/// hot path. A connection sees the new limits from its next read of them.
pub struct LiveLimits(Cell<&'static Limits>);

impl LiveLimits {
    /// Limits to start with.
    pub fn new(limits: Limits) -> Self {
        LiveLimits(Cell::new(Box::leak(Box::new(limits))))
    }

    /// Use `limits` from now on (nothing happens if they are unchanged).
    pub fn set(&self, limits: Limits) {
        if *self.0.get() != limits {
            self.0.set(Box::leak(Box::new(limits)));
        }
    }
}

impl From<Limits> for LiveLimits {
    fn from(limits: Limits) -> Self {
        LiveLimits::new(limits)
    }
}

impl Deref for LiveLimits {
    type Target = Limits;

    fn deref(&self) -> &Limits {
        self.0.get()
    }
}
