//! Shard-local drain: tell idle connections to close, and know when all are gone.
//!
//! Each connection is registered when it is spawned, and its task leaves its
//! waker on its first poll. Draining
//! sets a flag and wakes every registered task; a task that is idle sees the
//! flag and closes, one that is mid-request finishes it first (and answers
//! with `Connection: close`). The hot path pays one `Cell` read.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// A connection's entry in its shard's [`Drain`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct DrainKey(usize);

/// Registry of a shard's live connection tasks.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    draining: Cell<bool>,
    tasks: RefCell<Registry>,
    /// The shard's main loop, waiting for the last connection to end.
    all_closed: RefCell<Option<Waker>>,
}

#[derive(Debug, Default)]
struct Registry {
    slots: Vec<Option<Waker>>,
    free: Vec<usize>,
    live: usize,
}

impl Drain {
    pub(crate) fn is_draining(&self) -> bool {
        self.draining.get()
    }

    /// Connections still open on this shard.
    pub(crate) fn live(&self) -> usize {
        self.tasks.borrow().live
    }

    /// Register a connection that is about to be spawned; the key must be
    /// passed to [`Drain::unregister`]. Counted as live from now on, so a
    /// drain waits for it even before its task first runs.
    pub(crate) fn register(&self) -> DrainKey {
        let mut tasks = self.tasks.borrow_mut();
        tasks.live += 1;
        DrainKey(match tasks.free.pop() {
            Some(key) => key,
            None => {
                tasks.slots.push(None);
                tasks.slots.len() - 1
            }
        })
    }

    /// Leave the calling task's waker, to be woken when the drain starts
    /// (a connection task does this first thing).
    pub(crate) async fn watch(&self, key: DrainKey) {
        poll_fn(|cx| {
            self.tasks.borrow_mut().slots[key.0] = Some(cx.waker().clone());
            Poll::Ready(())
        })
        .await
    }

    pub(crate) fn unregister(&self, key: DrainKey) {
        let key = key.0;
        let mut tasks = self.tasks.borrow_mut();
        tasks.slots[key] = None;
        tasks.free.push(key);
        tasks.live -= 1;
        if tasks.live == 0 {
            if let Some(waker) = self.all_closed.borrow_mut().take() {
                waker.wake();
            }
        }
    }

    /// Start draining: wake every connection so idle ones close.
    pub(crate) fn start(&self) {
        self.draining.set(true);
        let wakers: Vec<Waker> = self
            .tasks
            .borrow()
            .slots
            .iter()
            .flatten()
            .cloned()
            .collect();
        for waker in wakers {
            waker.wake();
        }
    }

    /// Resolves when no connection is left.
    pub(crate) async fn all_closed(&self) {
        poll_fn(|cx| {
            if self.live() == 0 {
                Poll::Ready(())
            } else {
                *self.all_closed.borrow_mut() = Some(cx.waker().clone());
                Poll::Pending
            }
        })
        .await
    }
}
