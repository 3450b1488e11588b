//! Polling until something holds, with a deadline.

use std::fmt::Debug;
use std::time::{Duration, Instant};

/// How often a wait looks again.
const POLL_EVERY: Duration = Duration::from_millis(2);

/// Returns the first value of `probe` that `done` accepts; panics naming `what` and showing the last value after `within`.
pub fn poll_until<T: Debug>(
    what: &str,
    within: Duration,
    mut probe: impl FnMut() -> T,
    done: impl Fn(&T) -> bool,
) -> T {
    let until = Instant::now() + within;
    loop {
        let value = probe();
        if done(&value) {
            return value;
        }
        if Instant::now() >= until {
            panic!("timed out after {within:?} waiting for {what}; last seen: {value:#?}");
        }
        std::thread::sleep(POLL_EVERY);
    }
}

/// Returns once `check()` holds; panics naming `what` after `within`.
pub fn wait_until(what: &str, within: Duration, check: impl FnMut() -> bool) {
    poll_until(what, within, check, |&held| held);
}
