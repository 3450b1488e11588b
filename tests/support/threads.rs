//! The threads of a process as Linux shows them in `/proc`.

use std::time::Duration;

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

/// The CPU time (user + system) the threads named `name` of this test
/// process have used so far, from `/proc/self/task/*/stat`.
pub fn cpu_time(name: &str) -> Duration {
    // SAFETY: sysconf only reads a configuration value.
    let ticks_per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as u64;
    let mut ticks = 0;
    let mut found = false;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // After "pid (comm) ": state is field 3, utime 14 and stime 15.
        let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
        ticks += fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        found = true;
    }
    assert!(found, "no thread named {name:?} in this process");
    Duration::from_millis(ticks * 1000 / ticks_per_second)
}
