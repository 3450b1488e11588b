//! `AcceptorWaker`: an eventfd that wakes the acceptor from `poll`.
//!
//! Shards ring it when a connection ends while the acceptor waits for a
//! shard with room for another (admission control); the drain rings it to
//! stop the acceptor.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{fence, AtomicBool, Ordering::Relaxed, Ordering::SeqCst};

/// Wakes the acceptor when a shard gets room for another connection.
///
/// The acceptor only waits on it while it holds connections it could not
/// place (or has stopped accepting), so shards check `waiting` with one
/// relaxed load and write the eventfd only when someone listens.
#[derive(Debug)]
pub struct AcceptorWaker {
    waiting: AtomicBool,
    eventfd: OwnedFd,
}

impl AcceptorWaker {
    /// A new eventfd, nobody waiting.
    pub fn new() -> io::Result<Self> {
        // SAFETY: eventfd has no memory-safety preconditions; we check the result.
        let fd = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(AcceptorWaker {
            waiting: AtomicBool::new(false),
            // SAFETY: fd is a fresh descriptor we own.
            eventfd: unsafe { OwnedFd::from_raw_fd(fd) },
        })
    }

    /// Called by a shard after one of its connections ended (after its
    /// `open` count went down).
    pub fn notify(&self) {
        // Pairs with the fence in `set_waiting`: either the acceptor sees the
        // lower count, or we see that it waits. Without both fences each side
        // could read the other's old value and the wakeup would be lost.
        fence(SeqCst);
        if self.waiting.load(Relaxed) {
            self.wake();
        }
    }

    /// Wake the waiter unconditionally (also used for shutdown).
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a valid u64 to our own eventfd.
        unsafe { libc::write(self.eventfd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Announce (or withdraw) that the acceptor is about to wait; it must
    /// re-check the shards' counts after announcing (see `notify`).
    pub fn set_waiting(&self, waiting: bool) {
        self.waiting.store(waiting, Relaxed);
        fence(SeqCst);
    }

    /// Reset the eventfd counter after a wakeup.
    pub fn consume(&self) {
        let mut value: u64 = 0;
        // SAFETY: reading 8 bytes into a valid u64 from our own non-blocking eventfd.
        unsafe { libc::read(self.eventfd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
    }

    /// The descriptor to `poll` on.
    pub fn fd(&self) -> i32 {
        self.eventfd.as_raw_fd()
    }
}
