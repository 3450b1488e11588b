//! `ShardEnv`: what every connection on one shard shares.
//!
//! The connection loop sees its shard only through this: the limits it
//! enforces, the cached `Date`, the buffer pool, the drain, the stats and
//! the access log.
//! Single-threaded (`Cell`, `RefCell` inside), built once per shard.

use std::cell::Cell;
use std::ops::Deref;
use std::sync::{Arc, Mutex};

use crate::access_log::AccessLog;
use crate::buffers::BufferPool;
use crate::drain::Drain;
use crate::http::DateCache;
use crate::http2::Http2Settings;
use crate::limits::Limits;
use crate::stats::ShardStats;

/// The shard-wide state a connection uses.
pub(crate) struct ShardEnv {
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
    pub http2: Http2Settings,
}

/// The shard's current [`Limits`], replaced whole when the configuration is
/// reloaded (`ShardCommand::SetLimits`). Derefs to `Limits`, so the
/// connection loop reads it as before, at the cost of one pointer load.
///
/// The limits live for the rest of the process (`&'static`), so a
/// connection holds `&Limits` across awaits with no reference counting on
/// the hot path. They are interned: every shard, restart and reload that
/// uses a set of limits seen before shares its one copy, so the memory
/// kept is one copy per distinct set ever configured (a reload is a
/// manual act), not one per shard, restart and reload.
/// A connection sees the new limits from its next read of them.
pub(crate) struct LiveLimits(Cell<&'static Limits>);

impl LiveLimits {
    /// Limits to start with.
    pub(crate) fn new(limits: Limits) -> Self {
        LiveLimits(Cell::new(intern(limits)))
    }

    /// Use `limits` from now on (nothing happens if they are unchanged).
    pub(crate) fn set(&self, limits: Limits) {
        if *self.0.get() != limits {
            self.0.set(intern(limits));
        }
    }
}

/// The one process-wide copy of `limits`, made the first time they are seen.
fn intern(limits: Limits) -> &'static Limits {
    static SEEN: Mutex<Vec<&'static Limits>> = Mutex::new(Vec::new());
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&known) = seen.iter().find(|&&known| *known == limits) {
        return known;
    }
    let fresh: &'static Limits = Box::leak(Box::new(limits));
    seen.push(fresh);
    fresh
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_same_limits_share_one_copy_across_shards_and_reloads() {
        let shard_a = LiveLimits::new(Limits::default());
        let shard_b = LiveLimits::new(Limits::default());
        assert!(
            std::ptr::eq(&*shard_a, &*shard_b),
            "one copy for two shards"
        );

        let tighter = Limits {
            max_headers: 7,
            ..Limits::default()
        };
        // Reloads back and forth between two sets keep two copies, not one per reload.
        let first = {
            shard_a.set(tighter.clone());
            &*shard_a as *const Limits
        };
        shard_a.set(Limits::default());
        shard_a.set(tighter.clone());
        assert!(std::ptr::eq(&*shard_a, first), "the reload reuses the copy");
        shard_b.set(tighter);
        assert!(std::ptr::eq(&*shard_b, first), "and so does another shard");
    }
}
