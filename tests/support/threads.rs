//! The threads of a process as Linux shows them in `/proc`.

/// The scheduling policy (`SCHED_OTHER`, `SCHED_BATCH`, ...) of each
/// thread named `name` in process `pid` (`None`: this test process).
pub fn scheduling_policies(pid: Option<u32>, name: &str) -> Vec<i32> {
    let tasks = match pid {
        Some(pid) => format!("/proc/{pid}/task"),
        None => "/proc/self/task".to_owned(),
    };
    let mut policies = Vec::new();
    for task in std::fs::read_dir(tasks).unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let tid: i32 = task.file_name().to_string_lossy().parse().unwrap();
            // SAFETY: sched_getscheduler only reads the thread's policy.
            policies.push(unsafe { libc::sched_getscheduler(tid) });
        }
    }
    policies
}
