//! Admission: how many connections a shard holds, and the doorbell that
//! wakes the acceptor when one of them ends.
//!
//! [`AdmissionLedger`] is one shard's ledger: connections handed to it and
//! still in its channel (**queued**) plus those it serves (**open**). Two
//! threads write it, through methods only:
//!
//! | who | call | when |
//! | --- | --- | --- |
//! | the acceptor (dispatcher) | [`try_reserve`](AdmissionLedger::try_reserve) | before putting a connection in the shard's channel, if the shard is under its capacity |
//! | the acceptor (dispatcher) | [`cancel_reservation`](AdmissionLedger::cancel_reservation) | the channel refused it (full, or the shard gone) |
//! | the shard | [`admit`](AdmissionLedger::admit) | it takes a connection from its listener (queued → open): rings the [`AcceptorWaker`] if the acceptor waits (its channel has room again) |
//! | the shard | [`release`](AdmissionLedger::release) | the connection ended: rings the [`AcceptorWaker`] if the acceptor waits for room |
//!
//! Invariants (checked under loom by the tests below,
//! `RUSTFLAGS="--cfg shardd_loom" cargo test -p shardd-shards --lib ledger`):
//!
//! 1. **Never over-admits.** [`load`](AdmissionLedger::load) never reads
//!    below what the shard holds: the shard counts a connection open
//!    before it takes it off `queued` (with `Release`), and the acceptor
//!    reads `queued` (with `Acquire`) before `open`, so a connection may
//!    be counted twice for an instant, never zero times. Only one thread
//!    (the acceptor) reserves; every other write lowers the load. So a
//!    reservation made when the load was under the capacity keeps the
//!    shard at or under it.
//! 2. **Never loses a wake-up.** `release` lowers `open`, then (`SeqCst`
//!    fence) reads whether the acceptor waits; the acceptor announces that
//!    it waits ([`AcceptorWaker::set_waiting`]), then (`SeqCst` fence)
//!    reads the load again before it sleeps. One of the two sees the
//!    other: the acceptor sees the room, or the shard rings. Likewise for
//!    room in a full channel: the shard takes a connection out, then
//!    `admit` (fence) reads whether the acceptor waits; the acceptor reads
//!    the channel (under the channel's lock) after announcing.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, OnceLock};

#[cfg(shardd_loom)]
use loom::sync::atomic::{fence, AtomicBool, AtomicUsize};
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
#[cfg(not(shardd_loom))]
use std::sync::atomic::{fence, AtomicBool, AtomicUsize};

/// One shard's admission ledger: queued + open connections, the capacity
/// check, and the release that wakes the acceptor (see the module docs for
/// who calls what, and the invariants).
#[derive(Debug, Default)]
pub struct AdmissionLedger {
    /// Handed to the shard and not yet taken from its channel (handoff
    /// mode only; 0 with any other listener).
    queued: AtomicUsize,
    /// Served by the shard right now.
    open: AtomicUsize,
    /// The acceptor's doorbell, in handoff mode (set once, before the
    /// shard runs; kept across the shard's restarts).
    waker: OnceLock<Arc<AcceptorWaker>>,
}

impl AdmissionLedger {
    /// Ring `waker` from [`release`](Self::release) (room under the limit)
    /// and [`admit`](Self::admit) (room in the channel) when the acceptor
    /// waits for room (handoff mode). Set once; a second call is ignored.
    pub fn wake_on_release(&self, waker: Arc<AcceptorWaker>) {
        let _ = self.waker.set(waker);
    }

    /// Acceptor: reserve a place for a connection about to be handed to
    /// the shard, if its load is under `capacity` (`usize::MAX`: no limit).
    /// False: the shard is full, nothing changed. Only the acceptor's
    /// thread may call it (invariant 1).
    pub fn try_reserve(&self, capacity: usize) -> bool {
        if self.load() >= capacity {
            return false;
        }
        // Before the handoff: the channel orders it before the shard's
        // `admit`, which never finds `queued` at 0 for it.
        self.queued.fetch_add(1, Relaxed);
        true
    }

    /// Acceptor: the reserved connection was not handed off after all.
    pub fn cancel_reservation(&self) {
        self.queued.fetch_sub(1, Relaxed);
    }

    /// Shard: a connection from its listener is now open. A handed-off one
    /// leaves `queued` (any other listener never reserved, and `queued`
    /// stays 0).
    ///
    /// Also wakes the acceptor if it waits for room: the shard has just
    /// taken the connection out of its channel, so the channel has room
    /// again (what the acceptor waits for when a full channel, not the
    /// shard's limit, stopped it).
    pub fn admit(&self) {
        // Open first, then no longer queued (Release, paired with `load`'s
        // Acquire): counted twice for an instant, never zero times.
        self.open.fetch_add(1, Relaxed);
        let _ = self
            .queued
            .fetch_update(Release, Relaxed, |queued| queued.checked_sub(1));
        if let Some(waker) = self.waker.get() {
            waker.notify();
        }
    }

    /// Shard: an open connection ended. Wakes the acceptor if it waits
    /// for room (invariant 2).
    pub fn release(&self) {
        self.open.fetch_sub(1, Relaxed);
        if let Some(waker) = self.waker.get() {
            waker.notify();
        }
    }

    /// Connections queued for or served by the shard, as the acceptor
    /// sees it: never below the truth (invariant 1).
    pub fn load(&self) -> usize {
        let queued = self.queued.load(Acquire);
        queued + self.open.load(Relaxed)
    }

    /// Whether the shard's load is under `capacity`.
    pub fn has_room(&self, capacity: usize) -> bool {
        self.load() < capacity
    }

    /// Connections handed to the shard and still in its channel.
    pub fn queued(&self) -> usize {
        self.queued.load(Relaxed)
    }

    /// Connections the shard serves right now.
    pub fn open(&self) -> usize {
        self.open.load(Relaxed)
    }
}

/// Wakes the acceptor from `poll`: an eventfd, rung by a shard when a
/// connection ends or leaves its channel while the acceptor waits for a
/// shard with room (through [`AdmissionLedger::release`] and
/// [`AdmissionLedger::admit`]), and by the drain to stop the acceptor.
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

    /// Ring if the acceptor waits; after a connection's `open` count went down.
    fn notify(&self) {
        // Pairs with the fence in `set_waiting`: either the acceptor sees the
        // lower count, or we see that it waits. Without both fences each side
        // could read the other's old value and the wakeup would be lost.
        fence(SeqCst);
        if self.waiting.load(Relaxed) {
            self.wake();
        }
    }

    /// Wake the waiter unconditionally (also used for the drain).
    pub fn wake(&self) {
        let one: u64 = 1;
        // SAFETY: writing 8 bytes from a valid u64 to our own eventfd.
        unsafe { libc::write(self.eventfd.as_raw_fd(), (&one as *const u64).cast(), 8) };
    }

    /// Announce (or withdraw) that the acceptor is about to wait; it must
    /// re-check the shards' loads after announcing (see `notify`).
    pub fn set_waiting(&self, waiting: bool) {
        self.waiting.store(waiting, Relaxed);
        fence(SeqCst);
    }

    /// Reset the eventfd counter after a wakeup; whether it had been rung.
    pub fn consume(&self) -> bool {
        let mut value: u64 = 0;
        // SAFETY: reading 8 bytes into a valid u64 from our own non-blocking eventfd.
        let read =
            unsafe { libc::read(self.eventfd.as_raw_fd(), (&mut value as *mut u64).cast(), 8) };
        read == 8 && value > 0
    }

    /// The descriptor to `poll` on.
    pub fn fd(&self) -> i32 {
        self.eventfd.as_raw_fd()
    }
}

#[cfg(all(test, not(shardd_loom)))]
mod tests {
    use super::*;

    #[test]
    fn ledger_counts_reservations_admissions_and_releases() {
        let ledger = AdmissionLedger::default();
        assert!(ledger.try_reserve(2));
        assert!(ledger.try_reserve(2));
        assert!(!ledger.try_reserve(2), "full at its capacity");
        ledger.cancel_reservation();
        assert_eq!((ledger.queued(), ledger.open(), ledger.load()), (1, 0, 1));
        ledger.admit();
        assert_eq!((ledger.queued(), ledger.open()), (0, 1));
        // Not handed off (another listener): open only, queued stays 0.
        ledger.admit();
        assert_eq!((ledger.queued(), ledger.open()), (0, 2));
        assert!(!ledger.has_room(2));
        ledger.release();
        assert!(ledger.has_room(2));
    }

    #[test]
    fn ledger_release_rings_only_a_waiting_acceptor() {
        let ledger = AdmissionLedger::default();
        let waker = Arc::new(AcceptorWaker::new().unwrap());
        ledger.wake_on_release(waker.clone());
        ledger.admit();
        ledger.admit();
        ledger.release();
        assert!(!waker.consume(), "nobody waits: no write to the eventfd");
        waker.set_waiting(true);
        ledger.release();
        assert!(waker.consume(), "the waiting acceptor is rung");
    }

    #[test]
    fn ledger_admit_rings_a_waiting_acceptor_for_the_room_in_the_channel() {
        let ledger = AdmissionLedger::default();
        let waker = Arc::new(AcceptorWaker::new().unwrap());
        ledger.wake_on_release(waker.clone());
        assert!(ledger.try_reserve(usize::MAX));
        ledger.admit();
        assert!(!waker.consume(), "nobody waits: no write to the eventfd");
        assert!(ledger.try_reserve(usize::MAX));
        waker.set_waiting(true);
        ledger.admit();
        assert!(waker.consume(), "the waiting acceptor is rung");
    }
}

/// Model checks: every interleaving (and every value the memory model lets
/// a load return) of the acceptor and a shard working one ledger.
#[cfg(all(test, shardd_loom))]
mod loom_tests {
    use std::collections::VecDeque;

    use loom::sync::{Arc, Mutex};
    use loom::thread;

    use super::*;

    /// What the shard really holds: its channel and its open connections,
    /// updated under one lock, apart from the ledger's counters.
    #[derive(Default)]
    struct Custody {
        channel: VecDeque<u32>,
        open: usize,
    }

    /// A full shard (capacity 1) takes its queued connection off its
    /// channel while the acceptor looks for room: the acceptor must not
    /// see the connection in neither count (with relaxed orderings it can
    /// read `queued` after the shard's decrement and `open` before its
    /// increment, and admit a second connection).
    #[test]
    fn ledger_never_over_admits() {
        loom::model(|| {
            const CAPACITY: usize = 1;
            let ledger = Arc::new(AdmissionLedger::default());
            assert!(ledger.try_reserve(CAPACITY), "an empty shard has room");
            let shard = {
                let ledger = ledger.clone();
                thread::spawn(move || ledger.admit())
            };
            let acceptor = {
                let ledger = ledger.clone();
                thread::spawn(move || ledger.try_reserve(CAPACITY))
            };
            shard.join().unwrap();
            assert!(
                !acceptor.join().unwrap(),
                "admitted a second connection to a shard of capacity 1"
            );
        });
    }

    /// The acceptor reserves and hands off over a channel while the shard
    /// admits and releases: what the shard really holds (channel + open,
    /// kept apart under a lock) never passes the capacity.
    #[test]
    fn ledger_handoff_stays_within_capacity() {
        loom::model(|| {
            const CAPACITY: usize = 1;
            let ledger = Arc::new(AdmissionLedger::default());
            let custody = Arc::new(Mutex::new(Custody::default()));
            let shard = {
                let (ledger, custody) = (ledger.clone(), custody.clone());
                thread::spawn(move || {
                    // Take what is queued, serve it, end it.
                    let taken = custody.lock().unwrap().channel.pop_front();
                    if taken.is_some() {
                        custody.lock().unwrap().open += 1;
                        ledger.admit();
                        custody.lock().unwrap().open -= 1;
                        ledger.release();
                    }
                })
            };
            let acceptor = thread::spawn(move || {
                for conn in 0..2 {
                    if ledger.try_reserve(CAPACITY) {
                        let mut held = custody.lock().unwrap();
                        held.channel.push_back(conn);
                        let total = held.channel.len() + held.open;
                        assert!(total <= CAPACITY, "shard holds {total} > {CAPACITY}");
                    }
                }
            });
            shard.join().unwrap();
            acceptor.join().unwrap();
        });
    }

    /// The shard is full; the acceptor waits for room while the shard ends
    /// a connection: the acceptor either sees the room or is rung.
    #[test]
    fn ledger_never_loses_a_wake_up() {
        loom::model(|| {
            const CAPACITY: usize = 1;
            let doorbell = std::sync::Arc::new(AcceptorWaker::new().unwrap());
            let ledger = Arc::new(AdmissionLedger::default());
            ledger.wake_on_release(doorbell.clone());
            ledger.admit();
            let shard = {
                let ledger = ledger.clone();
                thread::spawn(move || ledger.release())
            };
            // The acceptor: no room, so announce the wait, look again, sleep.
            let acceptor = {
                let (ledger, doorbell) = (ledger.clone(), doorbell.clone());
                thread::spawn(move || {
                    if ledger.has_room(CAPACITY) {
                        return false;
                    }
                    doorbell.set_waiting(true);
                    !ledger.has_room(CAPACITY)
                })
            };
            shard.join().unwrap();
            if acceptor.join().unwrap() {
                assert!(doorbell.consume(), "the acceptor sleeps and nobody rings");
            }
        });
    }

    /// No per-shard limit, but the shard's channel (capacity 1, behind its
    /// lock as flume's is) is full; the acceptor waits for room in it while
    /// the shard takes the queued connection out and admits it: the
    /// acceptor either sees the room or is rung.
    #[test]
    fn ledger_never_loses_the_wake_up_for_room_in_the_channel() {
        loom::model(|| {
            const CHANNEL: usize = 1;
            let doorbell = std::sync::Arc::new(AcceptorWaker::new().unwrap());
            let ledger = Arc::new(AdmissionLedger::default());
            ledger.wake_on_release(doorbell.clone());
            let custody = Arc::new(Mutex::new(Custody::default()));
            assert!(ledger.try_reserve(usize::MAX));
            custody.lock().unwrap().channel.push_back(0);
            let shard = {
                let (ledger, custody) = (ledger.clone(), custody.clone());
                thread::spawn(move || {
                    let taken = custody.lock().unwrap().channel.pop_front();
                    assert!(taken.is_some());
                    ledger.admit();
                })
            };
            // The acceptor: the channel is full, so announce the wait,
            // look again, sleep.
            let acceptor = {
                let doorbell = doorbell.clone();
                thread::spawn(move || {
                    let full = || custody.lock().unwrap().channel.len() >= CHANNEL;
                    if !full() {
                        return false;
                    }
                    doorbell.set_waiting(true);
                    full()
                })
            };
            shard.join().unwrap();
            if acceptor.join().unwrap() {
                assert!(doorbell.consume(), "the acceptor sleeps and nobody rings");
            }
        });
    }
}
