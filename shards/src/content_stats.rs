//! Counters of the content layers a shard's app may have: static files
//! ([`files`](crate::files)) and response compression
//! ([`compression`](crate::compression)). They live in the shard's
//! [`ShardStats`](crate::stats::ShardStats), so `/metrics` sums them like
//! the request counters.
//!
//! The layers are built by the app factory on the shard's thread, and
//! find the shard's stats there ([`current_shard_stats`]); they count
//! with [`add_own`] (a load and a store, no locked instruction). Built
//! outside a shard (a unit test), they count nothing.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use crate::stats::{add_own, ShardStats};

thread_local! {
    /// The stats of the shard whose thread this is, while its app is built and runs.
    static CURRENT: RefCell<Option<Arc<ShardStats>>> = const { RefCell::new(None) };
}

/// Make `stats` the current shard's, on this (the shard's) thread.
pub(crate) fn set_current_shard_stats(stats: Arc<ShardStats>) {
    CURRENT.with(|current| *current.borrow_mut() = Some(stats));
}

/// The stats of the shard whose thread this is, if it is one.
pub(crate) fn current_shard_stats() -> Option<Arc<ShardStats>> {
    CURRENT.with(|current| current.borrow().clone())
}

/// What a static-file mount answered, in [`FileCounters::responses`] order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileOutcome {
    /// `200` or `206`: a file (or part of one) sent.
    Served,
    /// `304 Not Modified`.
    NotModified,
    /// No such file (`404`; behind `--static`, the app answers instead).
    NotFound,
    /// The file exists but the server may not read it (`403`).
    Forbidden,
    /// Anything else: a redirect to a directory's `/`, `400`, `405`, `412`, `416`.
    Other,
}

impl FileOutcome {
    /// The `outcome` label values `/metrics` uses, in order.
    pub const NAMES: [&'static str; 5] =
        ["served", "not_modified", "not_found", "forbidden", "other"];

    /// The outcome a response of `status` stands for.
    pub(crate) fn of(status: u16) -> FileOutcome {
        match status {
            200 | 206 => FileOutcome::Served,
            304 => FileOutcome::NotModified,
            404 => FileOutcome::NotFound,
            403 => FileOutcome::Forbidden,
            _ => FileOutcome::Other,
        }
    }
}

/// Static-file counters of one shard.
#[derive(Debug, Default)]
pub struct FileCounters {
    /// Responses by [`FileOutcome`].
    pub responses: [AtomicU64; 5],
    /// Open-file cache lookups answered from the cache (no `open`, no `fstat`).
    pub cache_hits: AtomicU64,
    /// Open-file cache lookups that opened the file (or found it missing):
    /// a first request, an expired entry, or a full cache.
    pub cache_misses: AtomicU64,
}

impl FileCounters {
    pub(crate) fn answered(&self, outcome: FileOutcome) {
        add_own(&self.responses[outcome as usize], 1);
    }

    pub(crate) fn looked_up(&self, hit: bool) {
        add_own(
            if hit {
                &self.cache_hits
            } else {
                &self.cache_misses
            },
            1,
        );
    }

    pub(crate) fn snapshot(&self) -> FileSnapshot {
        FileSnapshot {
            responses: self.responses.each_ref().map(|n| n.load(Relaxed)),
            cache_hits: self.cache_hits.load(Relaxed),
            cache_misses: self.cache_misses.load(Relaxed),
        }
    }
}

/// Static-file counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FileSnapshot {
    /// Responses by [`FileOutcome`] (in its order).
    pub responses: [u64; 5],
    /// Open-file cache lookups answered from the cache.
    pub cache_hits: u64,
    /// Open-file cache lookups that opened the file.
    pub cache_misses: u64,
}

/// Response-compression counters of one shard.
#[derive(Debug, Default)]
pub struct CompressionCounters {
    /// Responses compressed, by encoding, in [`CompressionCounters::ENCODINGS`] order.
    pub responses: [AtomicU64; 3],
    /// Bytes of bodies before compression.
    pub input_bytes: AtomicU64,
    /// Bytes of the same bodies compressed.
    pub output_bytes: AtomicU64,
}

impl CompressionCounters {
    /// The `encoding` label values `/metrics` uses, in order.
    pub const ENCODINGS: [&'static str; 3] = ["gzip", "br", "zstd"];

    pub(crate) fn compressed(&self, encoding: &str) {
        if let Some(index) = Self::ENCODINGS.iter().position(|name| *name == encoding) {
            add_own(&self.responses[index], 1);
        }
    }

    /// `n` bytes went into an encoder.
    pub(crate) fn took(&self, n: usize) {
        add_own(&self.input_bytes, n as u64);
    }

    /// `n` compressed bytes came out of an encoder.
    pub(crate) fn gave(&self, n: usize) {
        add_own(&self.output_bytes, n as u64);
    }

    pub(crate) fn snapshot(&self) -> CompressionSnapshot {
        CompressionSnapshot {
            responses: self.responses.each_ref().map(|n| n.load(Relaxed)),
            input_bytes: self.input_bytes.load(Relaxed),
            output_bytes: self.output_bytes.load(Relaxed),
        }
    }
}

/// Response-compression counters at one moment.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompressionSnapshot {
    /// Responses compressed, by encoding (gzip, br, zstd).
    pub responses: [u64; 3],
    /// Bytes of bodies before compression.
    pub input_bytes: u64,
    /// Bytes of the same bodies compressed.
    pub output_bytes: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_outcomes() {
        for (status, outcome) in [
            (200, FileOutcome::Served),
            (206, FileOutcome::Served),
            (304, FileOutcome::NotModified),
            (404, FileOutcome::NotFound),
            (403, FileOutcome::Forbidden),
            (301, FileOutcome::Other),
            (416, FileOutcome::Other),
        ] {
            assert_eq!(FileOutcome::of(status), outcome, "{status}");
        }
    }
}
