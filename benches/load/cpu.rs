//! CPU accounting from `/proc` and getrusage: the server's process tree, this
//! process (the generator), and the whole machine, sampled around a window.

/// CPU seconds used so far, by whom.
pub struct CpuSample {
    server: f64,
    generator: f64,
    machine_busy: f64,
}

/// CPU seconds used between two samples.
pub struct CpuUsed {
    pub server: f64,
    pub generator: f64,
    /// Busy CPU of the machine not charged to the server or the generator:
    /// other workloads, plus kernel time charged to no process.
    pub other: f64,
}

impl CpuSample {
    /// The server tree of `server_pid`, this process, and the machine, now.
    pub fn take(server_pid: u32) -> CpuSample {
        CpuSample {
            server: tree_cpu_seconds(server_pid),
            generator: self_cpu_seconds(),
            machine_busy: machine_busy_seconds(),
        }
    }

    /// What was used from `start` to this sample.
    pub fn since(&self, start: &CpuSample) -> CpuUsed {
        let server = self.server - start.server;
        let generator = self.generator - start.generator;
        let machine_busy = self.machine_busy - start.machine_busy;
        CpuUsed {
            server,
            generator,
            other: (machine_busy - server - generator).max(0.0),
        }
    }
}

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// (pid, ppid, utime + stime) from a `/proc/PID/stat` line: fields 4, 14 and 15.
fn parse_stat(stat: &str) -> Option<(i32, i32, u64)> {
    let pid = stat.split_whitespace().next()?.parse().ok()?;
    // The command name may contain spaces and ')': the fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((pid, ppid, utime + stime))
}

/// (pid, ppid, utime + stime) of every process in `/proc`.
fn all_processes() -> Vec<(i32, i32, u64)> {
    let mut procs = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) {
                if let Some(p) = parse_stat(&stat) {
                    procs.push(p);
                }
            }
        }
    }
    procs
}

/// CPU seconds used so far by `root` and all its descendants (a thread-group
/// leader's stat already covers all its threads).
fn tree_cpu_seconds(root: u32) -> f64 {
    let procs = all_processes();
    let mut tree = vec![root as i32];
    let mut ticks = 0u64;
    let mut i = 0;
    while i < tree.len() {
        let pid = tree[i];
        for &(p, ppid, t) in &procs {
            if p == pid {
                ticks += t;
            }
            if ppid == pid && !tree.contains(&p) {
                tree.push(p);
            }
        }
        i += 1;
    }
    ticks as f64 / clk_tck()
}

/// Busy CPU seconds of the whole machine so far (`/proc/stat`: all but idle and iowait).
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = ticks.iter().take(8).sum::<u64>()
        - ticks.get(3).copied().unwrap_or(0)
        - ticks.get(4).copied().unwrap_or(0);
    busy as f64 / clk_tck()
}

/// CPU seconds used so far by this process (all generator threads).
fn self_cpu_seconds() -> f64 {
    // SAFETY: `rusage` is plain integers, for which all zeros is a value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: getrusage fills the struct we pass.
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}
