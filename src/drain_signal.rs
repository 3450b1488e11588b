//! The server-wide drain signal: set once, seen by the acceptor, the
//! supervisor and whoever waits in `ServerHandle::wait`.

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};

use shardd_shards::runtime::AcceptorWaker;

/// The drain, started once: what stops the server.
#[derive(Debug)]
pub struct DrainSignal {
    started: AtomicBool,
    /// Wakes the acceptor from `poll`: the one way it is woken, for room
    /// on a shard as for the drain (it never blocks anywhere else).
    acceptor_waker: Arc<AcceptorWaker>,
    waiters: (Mutex<bool>, Condvar),
}

impl DrainSignal {
    pub fn new() -> std::io::Result<Self> {
        Ok(DrainSignal {
            started: AtomicBool::new(false),
            acceptor_waker: Arc::new(AcceptorWaker::new()?),
            waiters: (Mutex::new(false), Condvar::new()),
        })
    }

    /// The signal the acceptor sleeps on while it waits for room; starting the drain wakes it too.
    pub(crate) fn acceptor_waker(&self) -> Arc<AcceptorWaker> {
        self.acceptor_waker.clone()
    }

    /// Start the drain (idempotent): wake the acceptor and every waiter.
    pub fn start(&self) {
        if self.started.swap(true, SeqCst) {
            return;
        }
        self.acceptor_waker.wake();
        let (lock, cvar) = &self.waiters;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
    }

    pub fn has_started(&self) -> bool {
        self.started.load(SeqCst)
    }

    /// Block until the drain has started.
    pub fn wait(&self) {
        let (lock, cvar) = &self.waiters;
        let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = cvar.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}
