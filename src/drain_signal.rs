//! The server-wide drain signal: set once, seen by the acceptor, the
//! supervisor and whoever waits in `ServerHandle::wait`.

use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Condvar, Mutex};

use shardd_shards::runtime::AcceptorWaker;

/// The drain, started once: what stops the server.
#[derive(Debug)]
pub(crate) struct DrainSignal {
    started: AtomicBool,
    /// The listening socket the acceptor blocks on; `shutdown(2)` on it wakes `accept`.
    listen_fd: Mutex<Option<RawFd>>,
    /// Another process shares the listening socket (systemd, an upgrade):
    /// never shut it down; the acceptor's accept timeout wakes it instead.
    listener_shared: AtomicBool,
    /// Wakes the acceptor when it waits in `poll` for room.
    acceptor_waker: Arc<AcceptorWaker>,
    waiters: (Mutex<bool>, Condvar),
}

impl DrainSignal {
    pub(crate) fn new() -> std::io::Result<Self> {
        Ok(DrainSignal {
            started: AtomicBool::new(false),
            listen_fd: Mutex::new(None),
            listener_shared: AtomicBool::new(false),
            acceptor_waker: Arc::new(AcceptorWaker::new()?),
            waiters: (Mutex::new(false), Condvar::new()),
        })
    }

    /// The signal the acceptor sleeps on while it waits for room; starting the drain wakes it too.
    pub(crate) fn acceptor_waker(&self) -> Arc<AcceptorWaker> {
        self.acceptor_waker.clone()
    }

    /// The acceptor blocks in `accept` on `fd`: `start` will wake it.
    pub(crate) fn watch_listener(&self, fd: RawFd) {
        *self.listen_fd.lock().unwrap_or_else(|e| e.into_inner()) = Some(fd);
    }

    /// The acceptor is about to close `fd`: forget it first, under the lock,
    /// so `start` can never shut down a descriptor number reused since.
    pub(crate) fn unwatch_listener(&self) {
        *self.listen_fd.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }

    /// Another process has (or is about to have) the listening socket too:
    /// `shutdown(2)` would stop it listening for that process as well.
    pub(crate) fn listener_is_shared(&self) {
        self.listener_shared.store(true, SeqCst);
    }

    /// A close-on-exec duplicate of the acceptor's listening socket, while
    /// it still listens (for an upgrade).
    pub(crate) fn duplicate_listener(&self) -> std::io::Result<Option<OwnedFd>> {
        let watched = self.listen_fd.lock().unwrap_or_else(|e| e.into_inner());
        let Some(fd) = *watched else {
            return Ok(None);
        };
        // SAFETY: `fd` is open while it is watched (see `start`); the
        // duplicate is a new descriptor that we own.
        let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if copy < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: fcntl just returned `copy`, an open descriptor nothing else owns.
        Ok(Some(unsafe { OwnedFd::from_raw_fd(copy) }))
    }

    /// Start the drain (idempotent): wake the acceptor and every waiter.
    pub(crate) fn start(&self) {
        if self.started.swap(true, SeqCst) {
            return;
        }
        let watched = self.listen_fd.lock().unwrap_or_else(|e| e.into_inner());
        let shared = self.listener_shared.load(SeqCst);
        if let Some(fd) = watched.filter(|_| !shared) {
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

    pub(crate) fn has_started(&self) -> bool {
        self.started.load(SeqCst)
    }

    /// Block until the drain has started.
    pub(crate) fn wait(&self) {
        let (lock, cvar) = &self.waiters;
        let mut done = lock.lock().unwrap_or_else(|e| e.into_inner());
        while !*done {
            done = cvar.wait(done).unwrap_or_else(|e| e.into_inner());
        }
    }
}
