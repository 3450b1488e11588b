//! The server-wide drain signal: set once, seen by the acceptor, the
//! supervisor and whoever waits in `ServerHandle::wait`.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};

use shardd_shards::runtime::AcceptorWaker;

/// Set once to stop the server.
#[derive(Debug)]
pub struct DrainSignal {
    triggered: AtomicBool,
    /// The listening socket the acceptor blocks on; `shutdown(2)` on it wakes `accept`.
    listen_fd: Mutex<Option<RawFd>>,
    /// Wakes the acceptor when it waits in `poll` for room.
    acceptor_waker: Arc<AcceptorWaker>,
    waiters: (Mutex<bool>, Condvar),
}

impl DrainSignal {
    pub fn new() -> std::io::Result<Self> {
        Ok(DrainSignal {
            triggered: AtomicBool::new(false),
            listen_fd: Mutex::new(None),
            acceptor_waker: Arc::new(AcceptorWaker::new()?),
            waiters: (Mutex::new(false), Condvar::new()),
        })
    }

    /// The signal the acceptor sleeps on while it waits for room; triggering wakes it too.
    pub(crate) fn acceptor_waker(&self) -> Arc<AcceptorWaker> {
        self.acceptor_waker.clone()
    }

    /// The acceptor blocks in `accept` on `fd`: `trigger` will wake it.
    pub(crate) fn watch_listener(&self, fd: RawFd) {
        *self.listen_fd.lock().unwrap_or_else(|e| e.into_inner()) = Some(fd);
    }

    /// The acceptor is about to close `fd`: forget it first, under the lock,
    /// so `trigger` can never shut down a descriptor number reused since.
    pub(crate) fn unwatch_listener(&self) {
        *self.listen_fd.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Stop the server (idempotent).
    pub fn trigger(&self) {
        if self.triggered.swap(true, SeqCst) {
            return;
        }
        let watched = self.listen_fd.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(fd) = *watched {
            // SAFETY: `fd` is open: the acceptor clears it under this lock
            // before closing it. shutdown(2) makes a blocked accept return
            // at once (Linux: EINVAL).
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
        drop(watched);
        self.acceptor_waker.wake();
        let (lock, cvar) = &self.waiters;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
    }

    pub fn is_triggered(&self) -> bool {
        self.triggered.load(SeqCst)
    }

    /// Block until [`DrainSignal::trigger`] is called.
    pub fn wait(&self) {
        let (lock, cvar) = &self.waiters;
        let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = cvar.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}
