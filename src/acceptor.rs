//! The acceptor: the main thread's loop over the one listening socket.
//!
//! Accept (accept4: non-blocking + close-on-exec), hand the connection to a
//! shard through the [`Dispatcher`], and when no shard has room apply
//! admission control: hold it in a bounded pending
//! queue, oldest first, then either answer 503 (`reject`) or stop accepting
//! and let the kernel backlog hold new connections (`backlog`).

use std::collections::VecDeque;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::Duration;

use shardd_shards::listeners::{accept_stream, HandoffConn};
use shardd_shards::runtime::AcceptorWaker;

use crate::config::OverloadPolicy;
use crate::dispatch::Dispatcher;
use crate::drain_signal::DrainSignal;
use crate::rejecter::Rejecter;
use crate::stats::AcceptorStats;

/// Pause after accept fails for lack of descriptors, so the loop does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

pub(crate) struct Acceptor {
    /// A blocking listening stream socket, TCP or Unix, whose accept times
    /// out after `socket::ACCEPT_WAKE`.
    pub listener: OwnedFd,
    pub dispatcher: Dispatcher,
    pub max_pending: usize,
    pub overload: OverloadPolicy,
    pub waker: Arc<AcceptorWaker>,
    pub drain: Arc<DrainSignal>,
    pub rejecter: Rejecter,
    pub stats: Arc<AcceptorStats>,
}

impl Acceptor {
    /// Run until the drain starts; then place or answer every connection still held.
    /// Returns the rejecter, still lingering on rejected connections.
    pub(crate) fn run(self) -> Rejecter {
        let Acceptor {
            listener,
            mut dispatcher,
            max_pending,
            overload,
            waker,
            drain,
            rejecter,
            stats,
        } = self;
        let listen_fd = listener.as_raw_fd();
        let mut pending: VecDeque<HandoffConn> = VecDeque::new();
        while !drain.has_started() {
            place_pending(&mut pending, &mut dispatcher, &stats);
            let may_accept = overload == OverloadPolicy::Reject
                || pending.len() < max_pending
                || dispatcher.has_room();
            if !pending.is_empty() || !may_accept {
                // Something waits for room: sleep until a shard frees some,
                // or (if we may) a new connection arrives.
                if !wait_for_room_or_client(
                    &waker,
                    &dispatcher,
                    &pending,
                    may_accept.then_some(listen_fd),
                ) {
                    continue;
                }
                if drain.has_started() {
                    break;
                }
            }
            let conn = match accept_stream(&listener) {
                Ok((stream, peer)) => HandoffConn { stream, peer },
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    // The accept timed out (the drain may have started without
                    // a shutdown), or the socket was made non-blocking by
                    // another process sharing it: wait for a client or a wake.
                    wait_for_client_or_wake(&waker, listen_fd);
                    continue;
                }
                Err(error) => {
                    if !drain.has_started() {
                        handle_accept_error(error, &stats);
                    }
                    continue;
                }
            };
            stats.accepted.fetch_add(1, Relaxed);
            if let Err(conn) = dispatcher.dispatch(conn) {
                if pending.len() < max_pending || overload == OverloadPolicy::Backlog {
                    pending.push_back(conn);
                    stats.queued.fetch_add(1, Relaxed);
                    stats.pending.store(pending.len(), Relaxed);
                } else {
                    stats.rejected.fetch_add(1, Relaxed);
                    rejecter.reject(conn.stream);
                }
            }
        }
        // Draining: what the shards can still take they get; the rest hear 503.
        place_pending(&mut pending, &mut dispatcher, &stats);
        for conn in pending.drain(..) {
            stats.rejected.fetch_add(1, Relaxed);
            rejecter.reject(conn.stream);
        }
        stats.pending.store(0, Relaxed);
        drop(dispatcher); // closes the channels: shards serve what is queued, then stop
        drain.unwatch_listener();
        drop(listener);
        rejecter
    }
}

/// Hand waiting connections to shards, oldest first, while any has room.
fn place_pending(
    pending: &mut VecDeque<HandoffConn>,
    dispatcher: &mut Dispatcher,
    stats: &AcceptorStats,
) {
    while let Some(conn) = pending.pop_front() {
        if let Err(conn) = dispatcher.dispatch(conn) {
            pending.push_front(conn);
            break;
        }
    }
    stats.pending.store(pending.len(), Relaxed);
}

/// Block until `listen_fd` is readable or the waker rings (the drain), at most 100 ms.
fn wait_for_client_or_wake(waker: &AcceptorWaker, listen_fd: i32) {
    let (rang, _) = poll_waker_and_listener(waker, Some(listen_fd));
    if rang {
        waker.consume();
    }
}

/// Block until a shard signals room, or `listen_fd` (if given) is readable.
/// Returns true when the listening socket is readable.
fn wait_for_room_or_client(
    waker: &AcceptorWaker,
    dispatcher: &Dispatcher,
    pending: &VecDeque<HandoffConn>,
    listen_fd: Option<i32>,
) -> bool {
    waker.set_waiting(true);
    // Re-check after announcing: a shard that freed room just before would not have signalled.
    if !pending.is_empty() && dispatcher.has_room() {
        waker.set_waiting(false);
        return false;
    }
    let (_, readable) = poll_waker_and_listener(waker, listen_fd);
    waker.set_waiting(false);
    waker.consume();
    readable
}

/// Wait until the waker's eventfd or `listen_fd` (if given) is readable,
/// at most 100 ms (the timeout bounds the cost of any missed wake-up).
/// Returns (the waker rang, the listener is readable).
fn poll_waker_and_listener(waker: &AcceptorWaker, listen_fd: Option<i32>) -> (bool, bool) {
    let pollfd = |fd| libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // A negative fd is ignored by poll(2).
    let mut fds = [pollfd(waker.fd()), pollfd(listen_fd.unwrap_or(-1))];
    // SAFETY: poll(2) on two pollfd structs we own.
    unsafe { libc::poll(fds.as_mut_ptr(), 2, 100) };
    let readable = |fd: &libc::pollfd| fd.revents & libc::POLLIN != 0;
    (readable(&fds[0]), listen_fd.is_some() && readable(&fds[1]))
}

fn handle_accept_error(error: io::Error, stats: &AcceptorStats) {
    match error.kind() {
        io::ErrorKind::Interrupted
        | io::ErrorKind::WouldBlock
        | io::ErrorKind::ConnectionAborted => {}
        _ => {
            stats.accept_errors.fetch_add(1, Relaxed);
            log::warn!("accept failed: {error}");
            std::thread::sleep(ACCEPT_BACKOFF);
        }
    }
}
