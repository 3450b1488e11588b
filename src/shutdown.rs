//! The server-wide stop signal: set once, seen by the acceptor, the
//! supervisor and whoever waits in `ServerHandle::wait`.

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};

use shardd_shards::RoomSignal;

/// Set once to stop the server.
#[derive(Debug)]
pub struct Shutdown {
    triggered: AtomicBool,
    /// The listening socket the acceptor blocks on; `shutdown(2)` on it wakes `accept`.
    listen_fd: AtomicI32,
    /// Wakes the acceptor when it waits in `poll` for room.
    room: Arc<RoomSignal>,
    waiters: (Mutex<bool>, Condvar),
}

impl Shutdown {
    pub fn new() -> std::io::Result<Self> {
        Ok(Shutdown {
            triggered: AtomicBool::new(false),
            listen_fd: AtomicI32::new(-1),
            room: Arc::new(RoomSignal::new()?),
            waiters: (Mutex::new(false), Condvar::new()),
        })
    }

    /// The signal the acceptor sleeps on while it waits for room; triggering wakes it too.
    pub(crate) fn room(&self) -> Arc<RoomSignal> {
        self.room.clone()
    }

    pub(crate) fn watch_listener(&self, fd: RawFd) {
        self.listen_fd.store(fd, SeqCst);
    }

    /// Stop the server (idempotent).
    pub fn trigger(&self) {
        if self.triggered.swap(true, SeqCst) {
            return;
        }
        let fd = self.listen_fd.load(SeqCst);
        if fd >= 0 {
            // SAFETY: shutdown(2) on the listening socket the acceptor owns and
            // keeps open until it has seen `triggered`; it makes a blocked
            // accept return at once (Linux: EINVAL).
            unsafe { libc::shutdown(fd, libc::SHUT_RDWR) };
        }
        self.room.wake();
        let (lock, cvar) = &self.waiters;
        *lock.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cvar.notify_all();
    }

    pub fn is_triggered(&self) -> bool {
        self.triggered.load(SeqCst)
    }

    /// Block until [`Shutdown::trigger`] is called.
    pub fn wait(&self) {
        let (lock, cvar) = &self.waiters;
        let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = cvar.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}
