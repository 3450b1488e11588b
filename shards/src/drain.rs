//! Shard-local drain: tell idle connections to close, and know when all are gone.
//!
//! Each connection task registers its waker once when it starts. Draining
//! sets a flag and wakes every registered task; a task that is idle sees the
//! flag and closes, one that is mid-request finishes it first (and answers
//! with `Connection: close`). The hot path pays one `Cell` read.

use std::cell::{Cell, RefCell};
use std::future::poll_fn;
use std::task::{Poll, Waker};

/// Registry of a shard's live connection tasks.
#[derive(Debug, Default)]
pub struct Drain {
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
    pub fn is_draining(&self) -> bool {
        self.draining.get()
    }

    /// Connections still open on this shard.
    pub fn live(&self) -> usize {
        self.tasks.borrow().live
    }

    /// Register the calling task; the key must be passed to [`Drain::unregister`].
    pub async fn register(&self) -> usize {
        let waker = poll_fn(|cx| Poll::Ready(cx.waker().clone())).await;
        let mut tasks = self.tasks.borrow_mut();
        tasks.live += 1;
        match tasks.free.pop() {
            Some(key) => {
                tasks.slots[key] = Some(waker);
                key
            }
            None => {
                tasks.slots.push(Some(waker));
                tasks.slots.len() - 1
            }
        }
    }

    pub fn unregister(&self, key: usize) {
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
    pub fn start(&self) {
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
    pub async fn all_closed(&self) {
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
