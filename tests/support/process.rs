//! Running the built `shardd` binary as a process: its log lines, signals,
//! bounded waits, sockets passed the way systemd passes them, and a
//! notification socket that hears its `READY=1`.

use std::io::{BufRead, BufReader};
use std::os::fd::RawFd;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The binary cargo built for these tests.
pub const BIN: &str = env!("CARGO_BIN_EXE_shardd");

/// A running `shardd`; killed on drop so a failed test leaves nothing behind.
pub struct Process {
    pub child: Child,
    /// stderr lines, read on a thread.
    lines: mpsc::Receiver<String>,
    /// Every line read so far.
    pub seen: Vec<String>,
}

impl Process {
    /// Start `command` with stderr captured (and `RUST_LOG=info`).
    pub fn spawn(command: Command) -> Process {
        Process::start(command, Stdio::null())
    }

    /// [`spawn`](Self::spawn), with stdout piped too (`child.stdout`).
    pub fn spawn_with_stdout(command: Command) -> Process {
        Process::start(command, Stdio::piped())
    }

    fn start(mut command: Command, stdout: Stdio) -> Process {
        let mut child = command
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shardd");
        let (send, lines) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if send.send(line).is_err() {
                    break;
                }
            }
        });
        Process {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Returns the first new log line containing `needle`; panics with
    /// every line seen if none comes within `within`.
    pub fn wait_for_line(&mut self, needle: &str, within: Duration) -> String {
        let until = Instant::now() + within;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if line.contains(needle) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no log line with {needle:?} within {within:?}; seen: {:#?}",
                    self.seen
                ),
            }
        }
    }

    /// Every line logged so far (waiting up to `settle` for more).
    pub fn lines_so_far(&mut self, settle: Duration) -> &[String] {
        while let Ok(line) = self.lines.recv_timeout(settle) {
            self.seen.push(line);
        }
        &self.seen
    }

    /// Send `signal` to the process.
    pub fn signal(&self, signal: i32) {
        send_signal(self.pid(), signal);
    }

    /// Wait for the process to exit, at most `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        wait_timeout(&mut self.child, timeout)
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            // A new process an upgrade started would outlive its parent.
            let pid = self.pid();
            let children = std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"));
            for child in children.unwrap_or_default().split_whitespace() {
                if let Ok(child) = child.parse::<u32>() {
                    drop(Adopted(child));
                }
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A process this test did not start itself but caused (the new process of
/// an upgrade): killed and reaped on drop if it is still there, so a failed
/// test leaves nothing behind.
pub struct Adopted(pub u32);

impl Drop for Adopted {
    fn drop(&mut self) {
        if !process_gone(self.0) {
            // SAFETY: kill(2) has no memory-safety preconditions.
            unsafe { libc::kill(self.0 as libc::pid_t, libc::SIGKILL) };
            let _ = reap(self.0, Duration::from_secs(5));
        }
    }
}

/// Wait for `child` to exit, at most `timeout`; `None` if it is still running.
pub fn wait_timeout(child: &mut Child, timeout: Duration) -> Option<ExitStatus> {
    let until = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return Some(status);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// kill(2) a process this test started (directly, or through an upgrade).
pub fn send_signal(pid: u32, signal: i32) {
    // SAFETY: kill(2) has no memory-safety preconditions.
    let result = unsafe { libc::kill(pid as libc::pid_t, signal) };
    assert_eq!(result, 0, "kill({pid}, {signal})");
}

/// A `shardd` command with `args`, run through `sh` so that the process
/// gets `fds` as descriptors 3, 4, ... with `LISTEN_FDS` and `LISTEN_PID`
/// set, exactly as systemd passes sockets (`exec` keeps the shell's pid,
/// which `$$` names).
pub fn with_listen_fds(program: &Path, args: &[&str], fds: &[RawFd]) -> Command {
    let mut command = Command::new("/bin/sh");
    command
        .arg("-c")
        .arg("export LISTEN_PID=$$; exec \"$0\" \"$@\"")
        .arg(program)
        .args(args)
        .env("LISTEN_FDS", fds.len().to_string());
    let fds = fds.to_vec();
    // SAFETY: only dup2 and fcntl between fork and exec.
    unsafe {
        command.pre_exec(move || {
            // Move the sources out of the way first, then place them.
            let high: Vec<RawFd> = fds
                .iter()
                .map(|&fd| libc::fcntl(fd, libc::F_DUPFD, 100))
                .collect();
            for (index, &fd) in high.iter().enumerate() {
                if fd < 0 || libc::dup2(fd, 3 + index as RawFd) < 0 {
                    return Err(std::io::Error::last_os_error());
                }
                libc::close(fd);
            }
            Ok(())
        })
    };
    command
}

/// A datagram socket standing in for systemd's notification socket.
pub struct NotifySocket {
    pub path: PathBuf,
    socket: UnixDatagram,
}

impl NotifySocket {
    /// Bind one in the temp dir, under a name unique to this test.
    pub fn new(name: &str) -> NotifySocket {
        let path = std::env::temp_dir().join(format!(
            "shardd-test-notify-{}-{name}.sock",
            std::process::id()
        ));
        let _ = std::fs::remove_file(&path);
        let socket = UnixDatagram::bind(&path).unwrap();
        NotifySocket { path, socket }
    }

    /// The next notification, waiting at most `within`; panics if none comes.
    pub fn next(&self, within: Duration) -> String {
        self.socket.set_read_timeout(Some(within)).unwrap();
        let mut buf = [0u8; 4096];
        let n = self
            .socket
            .recv(&mut buf)
            .unwrap_or_else(|e| panic!("no notification within {within:?}: {e}"));
        String::from_utf8_lossy(&buf[..n]).into_owned()
    }
}

impl Drop for NotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Whether `pid` is gone: no such process, or only its zombie is left.
pub fn process_gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

/// Make this test process the reaper of orphaned descendants: the process
/// an upgrade starts outlives its parent (our child), and is then ours to
/// wait for instead of init's.
pub fn become_subreaper() {
    // SAFETY: prctl(PR_SET_CHILD_SUBREAPER) only sets a flag on this process.
    let result = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) };
    assert_eq!(result, 0, "prctl(PR_SET_CHILD_SUBREAPER)");
}

/// Wait (reap) for a descendant that became ours via [`become_subreaper`],
/// at most `within`; its exit status code, or `None` if it is still running.
pub fn reap(pid: u32, within: Duration) -> Option<i32> {
    let until = Instant::now() + within;
    loop {
        let mut status = 0;
        // SAFETY: waitpid on a pid with WNOHANG, into a local.
        let result = unsafe { libc::waitpid(pid as libc::pid_t, &mut status, libc::WNOHANG) };
        if result == pid as libc::pid_t {
            return Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                128 + libc::WTERMSIG(status)
            });
        }
        if result < 0 && process_gone(pid) {
            // Not our child after all (reaped by someone else): gone is gone.
            return Some(-1);
        }
        if Instant::now() >= until {
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}
