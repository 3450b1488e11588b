//! The scheduling policy of the threads that do the serving: the acceptor
//! and the shards run as `SCHED_BATCH`.
//!
//! Under churn every connection wakes the acceptor (a client connected) and
//! then a shard (a connection was handed to it). With the default policy
//! each wake-up may preempt whatever runs on that core, very often the
//! other of the two, so a connection costs extra context switches on top
//! of its own work. A `SCHED_BATCH` thread is never woken into preempting
//! the running thread: it waits for that thread's slice to end or for it
//! to sleep, and meanwhile more connections queue up for it. Same niceness,
//! same share of the CPU, no privilege needed. Measured on the 2-core box
//! (BENCHMARKS.md): churn server CPU per request −18 to −20 %, pinned or not.

/// Make the calling thread `SCHED_BATCH`; on failure (a seccomp policy, say)
/// it keeps the default policy, which only costs speed.
pub(crate) fn serve_in_batches() {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: sched_setscheduler on the calling thread (pid 0) with a valid param.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_BATCH, &param) } != 0 {
        log::debug!(
            "SCHED_BATCH refused ({}); the default policy stays",
            std::io::Error::last_os_error()
        );
    }
}
