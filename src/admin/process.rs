//! The process figures every Prometheus client exports, from `/proc/self`:
//! resident and virtual memory, open and maximum descriptors, CPU seconds,
//! threads, and the start time; and the process id, for `/status`.
//!
//! A figure that cannot be read (no `/proc`) is `None` and left out.

use std::sync::OnceLock;

/// The process, at one moment.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize)]
pub(crate) struct ProcessFigures {
    /// The process id: after an upgrade, the new process's.
    pub pid: u32,
    /// Resident memory, in bytes.
    pub resident_bytes: Option<u64>,
    /// Virtual memory, in bytes.
    pub virtual_bytes: Option<u64>,
    /// Open file descriptors.
    pub open_fds: Option<u64>,
    /// The soft limit on open file descriptors.
    pub max_fds: Option<u64>,
    /// User and system CPU time, in seconds.
    pub cpu_seconds: Option<f64>,
    /// Threads in the process.
    pub threads: Option<u64>,
    /// When the process started, in seconds since the Unix epoch.
    pub start_time_seconds: Option<f64>,
}

impl ProcessFigures {
    /// Read the figures now.
    pub(crate) fn read() -> ProcessFigures {
        let stat = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|text| Stat::parse(&text));
        let ticks = clock_ticks();
        ProcessFigures {
            pid: std::process::id(),
            resident_bytes: stat.map(|s| s.rss_pages * page_size()),
            virtual_bytes: stat.map(|s| s.vsize_bytes),
            open_fds: open_fds(),
            max_fds: max_fds(),
            cpu_seconds: stat.map(|s| (s.utime + s.stime) as f64 / ticks),
            threads: stat.map(|s| s.threads),
            start_time_seconds: start_time_seconds(),
        }
    }
}

/// The fields of `/proc/self/stat` used here, in their raw units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Stat {
    /// Field 14: user time, in clock ticks.
    utime: u64,
    /// Field 15: system time, in clock ticks.
    stime: u64,
    /// Field 20.
    threads: u64,
    /// Field 22: start time after boot, in clock ticks.
    starttime: u64,
    /// Field 23.
    vsize_bytes: u64,
    /// Field 24: resident set, in pages.
    rss_pages: u64,
}

impl Stat {
    fn parse(text: &str) -> Option<Stat> {
        // The command name (field 2) is in parentheses and may hold spaces or
        // parentheses itself: the fields that follow start after the last ')'.
        let rest = &text[text.rfind(')')? + 1..];
        let fields: Vec<&str> = rest.split_whitespace().collect();
        // `fields[0]` is field 3 (the state), so field N is `fields[N - 3]`.
        let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
        Some(Stat {
            utime: field(14)?,
            stime: field(15)?,
            threads: field(20)?,
            starttime: field(22)?,
            vsize_bytes: field(23)?,
            rss_pages: field(24)?,
        })
    }
}

fn page_size() -> u64 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        size if size > 0 => size as u64,
        _ => 4096,
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf has no preconditions.
    match unsafe { libc::sysconf(libc::_SC_CLK_TCK) } {
        ticks if ticks > 0 => ticks as f64,
        _ => 100.0,
    }
}

fn open_fds() -> Option<u64> {
    // The directory's own descriptor is among those counted, as other clients count it.
    Some(std::fs::read_dir("/proc/self/fd").ok()?.count() as u64)
}

fn max_fds() -> Option<u64> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit(2) writes into the struct we own.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return None;
    }
    Some(limit.rlim_cur)
}

/// Boot time (`btime` of `/proc/stat`) plus the process's start after boot; read once.
fn start_time_seconds() -> Option<f64> {
    static START: OnceLock<Option<f64>> = OnceLock::new();
    *START.get_or_init(|| {
        let stat = Stat::parse(&std::fs::read_to_string("/proc/self/stat").ok()?)?;
        let boot = std::fs::read_to_string("/proc/stat").ok()?;
        let btime: u64 = boot
            .lines()
            .find_map(|line| line.strip_prefix("btime "))?
            .trim()
            .parse()
            .ok()?;
        Some(btime as f64 + stat.starttime as f64 / clock_ticks())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_a_name_holding_parentheses_and_spaces() {
        let text = "4242 (we (ird) name) S 1 2 3 4 5 6 7 8 9 10 111 222 13 14 15 16 7 0 9999 123456789 321 18446744073709551615 1 2 3";
        let stat = Stat::parse(text).unwrap();
        assert_eq!(
            stat,
            Stat {
                utime: 111,
                stime: 222,
                threads: 7,
                starttime: 9999,
                vsize_bytes: 123_456_789,
                rss_pages: 321,
            }
        );
        assert_eq!(Stat::parse("1 (x) S 1 2"), None);
    }

    #[test]
    fn reads_this_process() {
        let figures = ProcessFigures::read();
        assert!(figures.resident_bytes.unwrap() > 0, "{figures:?}");
        assert!(figures.open_fds.unwrap() >= 3, "{figures:?}");
        assert!(figures.threads.unwrap() >= 1, "{figures:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        let start = figures.start_time_seconds.unwrap();
        assert!(
            start <= now + 1.0 && start > now - 86_400.0 * 365.0,
            "{start} vs {now}"
        );
    }
}
