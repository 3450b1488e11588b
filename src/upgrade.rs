//! The zero-downtime upgrade (SIGUSR2, nginx's convention): start a new
//! process from this binary's path with the same arguments, pass it the
//! listening sockets with the systemd protocol (`LISTEN_FDS`, `LISTEN_PID`,
//! `LISTEN_FDNAMES`), and wait for its `READY=1` on a notification socket
//! of our own making. Then the caller drains this process. If the new one
//! exits or is not ready in time, it is stopped and this one keeps serving.
//!
//! Both processes accept on the same sockets while the new one starts: the
//! kernel's accept queue is shared, and the sockets are never closed, so
//! no connection is refused.

use std::ffi::{OsStr, OsString};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::DirBuilderExt;
use std::os::unix::net::UnixDatagram;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use shardd::systemd::{ListenFd, LISTEN_FDS_START};
use shardd::ServerControl;

use crate::notify::{Notifier, SERVICE_NOTIFY_VAR};

/// How long a new process that failed gets to exit after SIGTERM before SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// What the upgrade starts: this binary's path (as it was at start-up, so
/// that a new binary installed over it is what starts) and arguments.
pub(crate) struct Upgrade {
    pub exe: PathBuf,
    pub args: Vec<OsString>,
    pub timeout: Duration,
}

impl Upgrade {
    /// Start the new process and wait until it is ready; returns its pid.
    /// On failure the new process is stopped and the error says why.
    pub(crate) fn run(&self, server: &ServerControl, notifier: &Notifier) -> Result<u32> {
        let sockets = server
            .listen_fds_for_upgrade()
            .context("cannot pass on the listening sockets")?;
        if sockets.is_empty() {
            bail!("this server no longer listens");
        }
        let notify = PrivateNotifySocket::new().context("cannot make a notification socket")?;
        let mut child = self
            .spawn(sockets, &notify.path(), notifier.manager())
            .with_context(|| format!("cannot start {}", self.exe.display()))?;
        let pid = child.id();
        log::info!(
            "upgrade: started {} as process {pid}; waiting for it to be ready",
            self.exe.display()
        );
        match wait_ready(&mut child, &notify.socket, self.timeout, server) {
            Ok(()) => Ok(pid),
            Err(error) => {
                stop_in_background(child);
                Err(error)
            }
        }
    }

    fn spawn(
        &self,
        sockets: Vec<ListenFd>,
        notify_socket: &Path,
        manager: Option<&OsStr>,
    ) -> io::Result<Child> {
        let count = sockets.len() as RawFd;
        // Move every socket above the range it is passed in (3 .. 3 + count),
        // so that placing one never overwrites another in the child.
        let sources: Vec<OwnedFd> = sockets
            .iter()
            .map(|socket| duplicate_above(&socket.fd, LISTEN_FDS_START + count))
            .collect::<io::Result<_>>()?;
        let names: Vec<&str> = sockets.iter().map(|socket| socket.name.as_str()).collect();
        let mut env = ChildEnv::new(&[
            (OsStr::new("LISTEN_FDS"), OsStr::new(&count.to_string())),
            (OsStr::new("LISTEN_FDNAMES"), OsStr::new(&names.join(":"))),
            (OsStr::new("NOTIFY_SOCKET"), notify_socket.as_os_str()),
            (OsStr::new(SERVICE_NOTIFY_VAR), manager.unwrap_or_default()),
        ]);
        let raw: Vec<RawFd> = sources.iter().map(AsRawFd::as_raw_fd).collect();
        let mut command = Command::new(&self.exe);
        command.args(&self.args);
        // SAFETY: the closure runs in the child between fork and exec, and
        // only makes async-signal-safe calls (dup2, getpid) and writes to
        // memory prepared before the fork: no allocation, no locks.
        unsafe {
            command.pre_exec(move || {
                for (index, &fd) in raw.iter().enumerate() {
                    // dup2 leaves the copy without close-on-exec: the new process keeps it.
                    if libc::dup2(fd, LISTEN_FDS_START + index as RawFd) < 0 {
                        return Err(io::Error::last_os_error());
                    }
                }
                env.install_with_pid(libc::getpid() as u32);
                Ok(())
            })
        };
        let child = command.spawn();
        drop(sources);
        child
    }
}

/// The environment of the new process, prepared before the fork: this
/// process's variables (without the `LISTEN_*` and notification ones), the
/// ones given, and `LISTEN_PID`, whose value only the child knows. The
/// child writes its pid into the prepared entry and points `environ` at
/// the array; `Command` is never given an environment of its own, so it
/// runs `execvp` with `environ` as it finds it.
struct ChildEnv {
    /// `KEY=VALUE\0` entries; never resized after `new`, so the pointers stay valid.
    entries: Vec<Vec<u8>>,
    /// The `LISTEN_PID=` entry, with room for the digits.
    pid_entry: usize,
    /// Pointers to the entries, then null: the `envp` array.
    pointers: Vec<*const libc::c_char>,
}

// SAFETY: the raw pointers point into `entries`, which the struct owns and
// never changes the size of; the value moves into the `pre_exec` closure
// and is only used in the child.
unsafe impl Send for ChildEnv {}
// SAFETY: `Command::pre_exec` wants a `Sync` closure, but nothing shares a
// `ChildEnv`: only the child, which has a single thread, ever uses it.
unsafe impl Sync for ChildEnv {}

const LISTEN_PID_PREFIX: &[u8] = b"LISTEN_PID=";

extern "C" {
    static mut environ: *const *const libc::c_char;
}

impl ChildEnv {
    fn new(set: &[(&OsStr, &OsStr)]) -> ChildEnv {
        let replaced = |key: &OsStr| {
            key.as_bytes().starts_with(b"LISTEN_") || set.iter().any(|(k, _)| *k == key)
        };
        let mut entries: Vec<Vec<u8>> = std::env::vars_os()
            .filter(|(key, _)| !replaced(key))
            .chain(
                set.iter()
                    .map(|(k, v)| (k.to_os_string(), v.to_os_string())),
            )
            .filter(|(key, value)| !key.as_bytes().contains(&0) && !value.as_bytes().contains(&0))
            .map(|(key, value)| {
                let mut entry = key.as_bytes().to_vec();
                entry.push(b'=');
                entry.extend_from_slice(value.as_bytes());
                entry.push(0);
                entry
            })
            .collect();
        let mut pid = LISTEN_PID_PREFIX.to_vec();
        pid.resize(LISTEN_PID_PREFIX.len() + 21, 0);
        entries.push(pid);
        let pid_entry = entries.len() - 1;
        let pointers = entries
            .iter()
            .map(|entry| entry.as_ptr().cast())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        ChildEnv {
            entries,
            pid_entry,
            pointers,
        }
    }

    /// In the child: write `pid` into `LISTEN_PID=` and make the prepared
    /// array the environment. Allocates nothing.
    fn install_with_pid(&mut self, pid: u32) {
        let entry = &mut self.entries[self.pid_entry];
        let mut digits = [0u8; 10];
        let mut n = pid;
        let mut len = 0;
        loop {
            digits[len] = b'0' + (n % 10) as u8;
            len += 1;
            n /= 10;
            if n == 0 {
                break;
            }
        }
        let start = LISTEN_PID_PREFIX.len();
        for (slot, digit) in entry[start..].iter_mut().zip(digits[..len].iter().rev()) {
            *slot = *digit;
        }
        entry[start + len] = 0;
        // SAFETY: the array and its entries live as long as `self`, which
        // the `pre_exec` closure owns until exec replaces the process image.
        unsafe { environ = self.pointers.as_ptr() };
    }
}

/// A close-on-exec duplicate of `fd` numbered at least `min`.
fn duplicate_above(fd: &OwnedFd, min: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: fcntl on a descriptor we own; the copy is a new one we own.
    let copy = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, min) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: fcntl just returned `copy`, an open descriptor nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(copy) })
}

/// A datagram socket in a directory only this user can enter, where the new
/// process sends `READY=1`; both are removed on drop.
struct PrivateNotifySocket {
    dir: PathBuf,
    socket: UnixDatagram,
}

impl PrivateNotifySocket {
    fn new() -> io::Result<Self> {
        let unique = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        let dir =
            std::env::temp_dir().join(format!("shardd-upgrade-{}-{unique}", std::process::id()));
        std::fs::DirBuilder::new().mode(0o700).create(&dir)?;
        let socket = match UnixDatagram::bind(dir.join("notify")) {
            Ok(socket) => socket,
            Err(error) => {
                let _ = std::fs::remove_dir(&dir);
                return Err(error);
            }
        };
        socket.set_read_timeout(Some(Duration::from_millis(100)))?;
        Ok(PrivateNotifySocket { dir, socket })
    }

    fn path(&self) -> PathBuf {
        self.dir.join("notify")
    }
}

impl Drop for PrivateNotifySocket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(self.path());
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Wait for `READY=1` from the child, at most `timeout`.
fn wait_ready(
    child: &mut Child,
    socket: &UnixDatagram,
    timeout: Duration,
    server: &ServerControl,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let mut message = [0u8; 4096];
    loop {
        if let Some(status) = child.try_wait()? {
            bail!("the new process exited ({status}) before it was ready");
        }
        if server.is_draining() {
            bail!("this server started draining");
        }
        if Instant::now() >= deadline {
            bail!("the new process was not ready within {timeout:?}");
        }
        match socket.recv(&mut message) {
            Ok(n) => {
                if message[..n]
                    .split(|&b| b == b'\n')
                    .any(|line| line == b"READY=1")
                {
                    return Ok(());
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(anyhow!("reading the notification socket: {e}")),
        }
    }
}

/// SIGTERM the failed new process (it drains, if it got that far), SIGKILL
/// it if it is still there after a grace period, and reap it.
fn stop_in_background(mut child: Child) {
    let pid = child.id();
    // SAFETY: kill(2) on our own child, not yet reaped, so the pid is still its.
    unsafe { libc::kill(pid as libc::pid_t, libc::SIGTERM) };
    let reap = move || {
        let until = Instant::now() + STOP_GRACE;
        while Instant::now() < until {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => return,
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            }
        }
        log::warn!("upgrade: process {pid} ignored SIGTERM; killing it");
        let _ = child.kill();
        let _ = child.wait();
    };
    if std::thread::Builder::new()
        .name("upgrade-reaper".into())
        .spawn(reap)
        .is_err()
    {
        log::warn!("upgrade: cannot start a thread to reap process {pid}");
    }
}
