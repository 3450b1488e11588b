//! The two systemd protocols shardd speaks, written by hand (a few system
//! calls each): socket activation, where the service manager passes
//! listening sockets as descriptors 3, 4, ... (`LISTEN_FDS`, `LISTEN_PID`,
//! `LISTEN_FDNAMES`), and readiness notification (`sd_notify`: a datagram
//! such as `READY=1` sent to the socket named by `NOTIFY_SOCKET`).
//!
//! The `shardd` binary uses the same protocols for its zero-downtime
//! upgrade: the old process passes its listening sockets to the new one as
//! systemd would, and learns that it is ready from its `READY=1`.
//!
//! ```no_run
//! use shardd::{systemd, Config, Server, TechEmpower};
//!
//! // SAFETY: first thing in main: nothing else owns descriptors 3 and up.
//! let inherited = unsafe { systemd::take_listen_fds() }?;
//! let server = if inherited.is_empty() {
//!     Server::bind(Config::default())?
//! } else {
//!     Server::from_listen_fds(Config::default(), inherited)?
//! };
//! let handle = server.serve(|_shard| TechEmpower)?;
//! systemd::notify("READY=1")?;
//! handle.wait_for_shutdown()?; // systemd stops a service with SIGTERM: drain
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::ffi::OsStr;
use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr as UnixAddr, UnixDatagram};

use crate::error::Error;

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
pub const LISTEN_FDS_START: RawFd = 3;

/// The name systemd gives a passed socket that has none (`LISTEN_FDNAMES`).
pub const UNNAMED: &str = "unknown";

/// A listening socket passed to this process.
#[derive(Debug)]
pub struct ListenFd {
    /// The socket, close-on-exec.
    pub fd: OwnedFd,
    /// Its name from `LISTEN_FDNAMES` (`FileDescriptorName=` in a socket
    /// unit), or [`UNNAMED`]. An upgrading shardd names the sockets it
    /// passes `shardd-handoff` or `shardd-reuseport`, and its admin port's
    /// socket `shardd-admin` (the name a socket unit gives an admin socket
    /// for shardd to serve).
    pub name: String,
}

/// Take the listening sockets passed with the systemd protocol: `LISTEN_FDS`
/// descriptors from 3 on, if `LISTEN_PID` is this process. Returns none when
/// the variables are absent or meant for another process. Each socket is
/// made close-on-exec, and the three variables are removed from the
/// environment so that no child process takes them for its own.
///
/// # Safety
///
/// Call it once, at the start of `main`, before any other thread runs: it
/// takes ownership of the descriptors `LISTEN_FDS` names, which nothing else
/// may own or use, and it changes the environment.
pub unsafe fn take_listen_fds() -> Result<Vec<ListenFd>, Error> {
    let pid = std::env::var("LISTEN_PID").ok();
    let count = std::env::var("LISTEN_FDS").ok();
    let names = std::env::var("LISTEN_FDNAMES").ok();
    for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"] {
        std::env::remove_var(name);
    }
    let Some(count) = count else {
        return Ok(Vec::new());
    };
    if pid.as_deref().and_then(|pid| pid.parse::<u32>().ok()) != Some(std::process::id()) {
        log::debug!("LISTEN_FDS is set for another process (LISTEN_PID={pid:?}): ignored");
        return Ok(Vec::new());
    }
    let count: RawFd = match count.parse() {
        Ok(count) if (0..=1024).contains(&count) => count,
        _ => {
            return Err(Error::Inherited(format!(
                "LISTEN_FDS={count:?} is not a count"
            )))
        }
    };
    let names: Vec<String> = match names {
        Some(names) if names.split(':').count() == count as usize => {
            names.split(':').map(str::to_owned).collect()
        }
        _ => vec![UNNAMED.to_owned(); count as usize],
    };
    let mut fds = Vec::with_capacity(count as usize);
    for (fd, name) in (LISTEN_FDS_START..).zip(names) {
        // SAFETY: fcntl on a descriptor number; an unused one gives EBADF.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } < 0 {
            let error = io::Error::last_os_error();
            return Err(Error::Inherited(format!(
                "LISTEN_FDS={count}, but fd {fd} is not open ({error})"
            )));
        }
        // SAFETY: the protocol gives this process descriptors 3 .. 3 + count,
        // and the caller promises nothing else owns them.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        fds.push(ListenFd { fd, name });
    }
    Ok(fds)
}

/// Tell the service manager about a state change: `state` is one or more
/// `KEY=VALUE` lines such as `READY=1`, `STOPPING=1` or `MAINPID=1234`. Sent
/// to `$NOTIFY_SOCKET`; `Ok(false)` when that is unset (not started by a
/// service manager, or `Type=` is not `notify`).
pub fn notify(state: &str) -> io::Result<bool> {
    match std::env::var_os("NOTIFY_SOCKET") {
        Some(socket) => notify_to(&socket, state).map(|()| true),
        None => Ok(false),
    }
}

/// Send `state` to the notification socket `socket`: a path, or a name in
/// the abstract namespace when it starts with `@`.
pub fn notify_to(socket: &OsStr, state: &str) -> io::Result<()> {
    let bytes = socket.as_bytes();
    let addr = match bytes.strip_prefix(b"@") {
        Some(name) => UnixAddr::from_abstract_name(name)?,
        None => UnixAddr::from_pathname(socket)?,
    };
    let sender = UnixDatagram::unbound()?;
    let sent = sender.send_to_addr(state.as_bytes(), &addr)?;
    if sent != state.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            "notification cut short",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notify_reaches_a_path_and_an_abstract_socket() {
        let path =
            std::env::temp_dir().join(format!("shardd-notify-test-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let receiver = UnixDatagram::bind(&path).unwrap();
        notify_to(path.as_os_str(), "READY=1").unwrap();
        let mut buf = [0u8; 64];
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"READY=1");
        std::fs::remove_file(&path).unwrap();

        let name = format!("shardd-notify-test-{}", std::process::id());
        let addr = UnixAddr::from_abstract_name(name.as_bytes()).unwrap();
        let receiver = UnixDatagram::bind_addr(&addr).unwrap();
        notify_to(OsStr::new(&format!("@{name}")), "STOPPING=1").unwrap();
        let n = receiver.recv(&mut buf).unwrap();
        assert_eq!(&buf[..n], b"STOPPING=1");
    }
}
