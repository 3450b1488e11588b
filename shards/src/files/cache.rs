//! A shard's cache of open files, like nginx's `open_file_cache`: a file
//! served again within `valid` costs no `open` and no `fstat`, only the
//! send. An entry older than `valid` is looked up afresh (a changed,
//! replaced or deleted file is seen within that time); failed lookups
//! are cached too, so a missing precompressed sibling costs nothing
//! either. The cache holds at most `capacity` entries (descriptors).

use std::cell::RefCell;
use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::open::Root;
use crate::stats::ShardStats;

/// What is known of an open file: what its responses are built from.
#[derive(Debug)]
pub(crate) struct OpenedFile {
    pub(crate) file: Rc<File>,
    pub(crate) len: u64,
    pub(crate) is_dir: bool,
    pub(crate) modified: SystemTime,
    /// A strong validator: the inode, length and modification time (to the
    /// nanosecond), so a file replaced or rewritten gets a new one.
    pub(crate) etag: String,
    /// `Last-Modified`, as an HTTP date.
    pub(crate) last_modified: String,
}

/// Why a lookup found nothing to send.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Missing {
    /// No such file, or not one that may be served (a FIFO, a device, a
    /// path that leaves the root): `404`.
    NotFound,
    /// It exists but the server may not read it: `403`.
    Forbidden,
}

struct Entry {
    found: Result<Rc<OpenedFile>, Missing>,
    looked_up: Instant,
}

/// A bounded cache of open files, for one shard (not shared: no locks).
pub(crate) struct OpenFileCache {
    entries: RefCell<HashMap<String, Entry>>,
    capacity: usize,
    valid: Duration,
    /// Where hits and misses are counted (`None` outside a shard).
    stats: Option<Arc<ShardStats>>,
}

impl OpenFileCache {
    pub(crate) fn new(capacity: usize, valid: Duration, stats: Option<Arc<ShardStats>>) -> Self {
        OpenFileCache {
            entries: RefCell::new(HashMap::new()),
            capacity,
            valid,
            stats,
        }
    }

    /// The file at `relative` beneath `root`, from the cache while it is valid.
    pub(crate) fn get(&self, root: &Root, relative: &str) -> Result<Rc<OpenedFile>, Missing> {
        let now = Instant::now();
        if let Some(entry) = self.entries.borrow().get(relative) {
            if now.duration_since(entry.looked_up) < self.valid {
                if let Some(stats) = &self.stats {
                    stats.files.looked_up(true);
                }
                return entry.found.clone();
            }
        }
        if let Some(stats) = &self.stats {
            stats.files.looked_up(false);
        }
        let found = look_up(root, relative);
        if self.capacity > 0 {
            let mut entries = self.entries.borrow_mut();
            if entries.len() >= self.capacity && !entries.contains_key(relative) {
                evict(&mut entries, now, self.valid);
            }
            let entry = Entry {
                found: found.clone(),
                looked_up: now,
            };
            entries.insert(relative.to_owned(), entry);
        }
        found
    }
}

/// Make room for one entry: drop the expired ones, or else the oldest.
fn evict(entries: &mut HashMap<String, Entry>, now: Instant, valid: Duration) {
    entries.retain(|_, entry| now.duration_since(entry.looked_up) < valid);
    if entries.is_empty() {
        return;
    }
    let oldest = entries
        .iter()
        .min_by_key(|(_, entry)| entry.looked_up)
        .map(|(key, _)| key.clone());
    if let Some(oldest) = oldest {
        entries.remove(&oldest);
    }
}

fn look_up(root: &Root, relative: &str) -> Result<Rc<OpenedFile>, Missing> {
    let file = root.open_file(relative).map_err(missing)?;
    let meta = file.metadata().map_err(missing)?;
    if !meta.is_file() && !meta.is_dir() {
        return Err(Missing::NotFound);
    }
    let modified = meta.modified().unwrap_or(UNIX_EPOCH);
    let since_epoch = modified.duration_since(UNIX_EPOCH).unwrap_or_default();
    Ok(Rc::new(OpenedFile {
        file: Rc::new(file),
        len: meta.len(),
        is_dir: meta.is_dir(),
        modified,
        etag: format!(
            "\"{:x}-{:x}-{:x}\"",
            meta.ino(),
            meta.len(),
            since_epoch.as_nanos()
        ),
        last_modified: httpdate::fmt_http_date(modified),
    }))
}

/// What a failed open or `fstat` tells the client (never the error's
/// text: it could name server paths).
fn missing(error: io::Error) -> Missing {
    match error.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => Missing::Forbidden,
        _ => Missing::NotFound,
    }
}
