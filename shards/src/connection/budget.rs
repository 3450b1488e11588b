//! Fairness: how long one connection may keep its shard to itself.
//!
//! A shard is one thread running every connection's task in turn, and a task
//! only gives the thread back when it has to wait. `TcpConn` reads and
//! writes with system calls that succeed at once whenever the client keeps
//! up, so a client that pipelines nonstop (or uploads a huge body) would
//! never make its task wait, and every other connection on the shard would
//! starve. The budget caps the turns a connection takes in a row without
//! waiting; then it yields, and the shard runs everyone else (and polls the
//! reactor) before it comes back. hyper's dispatcher does the same.

use std::future::Future;

/// Turns (read, answer, write) a connection may take in a row without its
/// socket making it wait. A benchmark client that pipelines 16 requests per
/// write makes the connection wait after every turn, so it never meets the
/// budget and pays nothing; a greedy client is answered about 16 full read
/// buffers (hundreds of requests) at a time, well under a millisecond of work,
/// before the shard's other connections get their turn.
const TURNS_IN_A_ROW: u32 = 16;

/// Turns left before this connection yields.
pub(crate) struct Budget {
    turns_left: u32,
}

impl Budget {
    pub(crate) fn new() -> Self {
        Budget {
            turns_left: TURNS_IN_A_ROW,
        }
    }

    /// The socket made the connection wait: the other tasks have run since.
    pub(crate) fn waited(&mut self) {
        self.turns_left = TURNS_IN_A_ROW;
    }

    /// Count one turn where the caller cannot await: false when the budget
    /// is spent (it is refilled), and the caller must yield by returning
    /// `Pending` after waking itself.
    pub(crate) fn try_spend_turn(&mut self) -> bool {
        if self.turns_left > 0 {
            self.turns_left -= 1;
            return true;
        }
        self.turns_left = TURNS_IN_A_ROW;
        false
    }

    /// Count one turn; when the budget is spent, yield to the shard's other
    /// tasks. The count is taken at the call; the future only yields (it
    /// borrows nothing, so the usual turn costs no state machine of its own).
    pub(crate) fn spend_turn(&mut self) -> impl Future<Output = ()> {
        let spent = !self.try_spend_turn();
        async move {
            if spent {
                // yield_now defers the wake-up until the runtime has polled its
                // reactor, so connections with fresh readiness also get their turn.
                tokio::task::yield_now().await;
            }
        }
    }
}
