//! What a connection is waiting for, and when that wait runs out.
//!
//! One lazily created timer per connection serves every wait (head, body,
//! idle, send). A wait's start is fixed at its first pending poll (or, after
//! a batch of answers, at the clock reading that timed the batch: one
//! reading fewer per turn); its deadline is that start plus the timeout, and
//! the timer is re-armed only when it fires before a deadline that has
//! since moved later, so keep-alive traffic does not touch the timer wheel.
//! Nor does it poll the timer: an armed timer that has not fired already
//! holds the waker of the task waiting, so polling it again would only
//! register the same waker again.

use std::future::Future;
use std::pin::{pin, Pin};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use tokio::task::coop::unconstrained;
use tokio::time::{Instant, Sleep};

use crate::limits::Limits;

/// What the connection is reading for; each has its own timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Waiting {
    /// A new connection that has sent nothing yet: `header_timeout` from
    /// accept, then a silent close; a drain closes it once nothing is readable.
    Initial,
    /// Between requests (keep-alive): `idle_timeout`, and a drain closes it.
    Idle,
    /// The rest of a request head: `header_timeout` from its first byte, then 408.
    Head,
    /// The rest of a body: `body_timeout` since the last bytes arrived, then 408.
    Body,
    /// Nothing of a request buffered while the shard drains: `drain_grace`
    /// for a request already on its way, then a silent close.
    Draining,
}

impl Waiting {
    /// Nothing of a request is buffered: the connection may give its buffers back.
    pub(crate) fn is_idle(self) -> bool {
        matches!(self, Waiting::Initial | Waiting::Idle | Waiting::Draining)
    }

    /// The timeout of a read in this state.
    pub(crate) fn read_timeout(self, limits: &Limits) -> Duration {
        match self {
            Waiting::Idle => limits.idle_timeout,
            Waiting::Initial | Waiting::Head => limits.header_timeout,
            Waiting::Body => limits.body_timeout,
            Waiting::Draining => limits.drain_grace,
        }
    }
}

/// The connection's current wait and its deadline.
pub(crate) struct Wait {
    waiting: Waiting,
    /// When this wait began; `None`: it begins at the next pending poll.
    since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
    /// The waker the armed timer was last polled with: it wakes that task
    /// when it fires, without being polled again.
    timer_wakes: Option<Waker>,
}

impl Wait {
    pub(crate) fn new() -> Self {
        Wait {
            waiting: Waiting::Initial,
            since: None,
            timer: None,
            timer_wakes: None,
        }
    }

    pub(crate) fn waiting(&self) -> Waiting {
        self.waiting
    }

    /// Wait for something else from now on, with a fresh deadline — except
    /// that a head arriving on a new connection keeps the deadline it has
    /// had since accept (`header_timeout` covers accept to complete head).
    pub(crate) fn switch(&mut self, to: Waiting) {
        if self.waiting == to {
            return;
        }
        if !(self.waiting == Waiting::Initial && to == Waiting::Head) {
            self.since = None;
        }
        self.waiting = to;
    }

    /// A request was answered: wait for the next, with a fresh idle deadline.
    pub(crate) fn answered(&mut self) {
        self.waiting = Waiting::Idle;
        self.since = None;
    }

    /// Bytes moved (body arrived, output written): the deadline starts over.
    pub(crate) fn restart(&mut self) {
        self.since = None;
    }

    /// Unless the wait already began, it began at `at` (a clock reading
    /// the caller made anyway, just before it goes on to wait).
    pub(crate) fn began(&mut self, at: Instant) {
        self.since.get_or_insert(at);
    }

    /// Ready once `timeout` has passed since this wait began.
    pub(crate) fn poll_expired(&mut self, timeout: Duration, cx: &mut Context<'_>) -> Poll<()> {
        let due = *self.since.get_or_insert_with(Instant::now) + timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        let wakes_this_task = self
            .timer_wakes
            .as_ref()
            .is_some_and(|waker| waker.will_wake(cx.waker()));
        if timer.deadline() > due {
            timer.as_mut().reset(due);
        } else if wakes_this_task && !timer.is_elapsed() {
            // Armed for no later than `due`, not fired, and it wakes this task.
            return Poll::Pending;
        }
        if !wakes_this_task {
            self.timer_wakes = Some(cx.waker().clone());
        }
        loop {
            // Outside tokio's cooperative budget: a poll the budget turns away
            // registers no waker, and the skip above would then trust a timer
            // that wakes nobody (a connection that never times out).
            match pin!(unconstrained(timer.as_mut())).poll(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(()) if Instant::now() >= due => return Poll::Ready(()),
                Poll::Ready(()) => timer.as_mut().reset(due),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_on_a_new_connection_keeps_the_deadline_from_accept() {
        let mut wait = Wait::new();
        wait.since = Some(Instant::now());
        wait.switch(Waiting::Head);
        assert!(wait.since.is_some(), "header_timeout runs from accept");
        wait.answered();
        assert_eq!((wait.waiting(), wait.since), (Waiting::Idle, None));
        wait.since = Some(Instant::now());
        wait.switch(Waiting::Head);
        assert!(
            wait.since.is_none(),
            "a new request's head times from its first byte"
        );
        wait.since = Some(Instant::now());
        wait.switch(Waiting::Head);
        assert!(
            wait.since.is_some(),
            "more of the same head keeps the deadline"
        );
        wait.switch(Waiting::Body);
        assert!(wait.since.is_none());
    }
}
