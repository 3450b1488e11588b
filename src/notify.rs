//! Telling the service manager (systemd, `Type=notify`) and an upgrading
//! parent what this process is doing: `READY=1` once it serves,
//! `STOPPING=1` when it drains, `MAINPID=` when an upgrade hands over.
//!
//! Readiness goes to `$NOTIFY_SOCKET`. Everything after goes to the service
//! manager: normally the same socket, but a process started by an upgrade
//! reports its readiness to the process it replaces, which passes the
//! service manager's socket in `SHARDD_SERVICE_NOTIFY_SOCKET` (empty when
//! there is none).

use std::ffi::{OsStr, OsString};

use shardd::systemd::notify_to;

/// Set by an upgrading shardd for the new process: the service manager's
/// notification socket, or empty for none.
pub(crate) const SERVICE_NOTIFY_VAR: &str = "SHARDD_SERVICE_NOTIFY_SOCKET";

/// Where this process's notifications go.
#[derive(Debug)]
pub(crate) struct Notifier {
    /// Where `READY=1` goes.
    ready: Option<OsString>,
    /// The service manager's socket, for everything after.
    manager: Option<OsString>,
    /// Started by an upgrading shardd, to take over from it.
    takes_over: bool,
}

impl Notifier {
    /// Read `NOTIFY_SOCKET` and `SHARDD_SERVICE_NOTIFY_SOCKET`, and remove
    /// them from the environment so that no child process reports as us.
    ///
    /// # Safety
    ///
    /// Changes the environment: call before any other thread runs.
    pub(crate) unsafe fn from_env() -> Notifier {
        let ready = std::env::var_os("NOTIFY_SOCKET").filter(|s| !s.is_empty());
        let takes_over = std::env::var_os(SERVICE_NOTIFY_VAR).is_some();
        let manager = match std::env::var_os(SERVICE_NOTIFY_VAR) {
            Some(socket) => Some(socket).filter(|s| !s.is_empty()),
            None => ready.clone(),
        };
        std::env::remove_var("NOTIFY_SOCKET");
        std::env::remove_var(SERVICE_NOTIFY_VAR);
        Notifier {
            ready,
            manager,
            takes_over,
        }
    }

    /// Whether an upgrading shardd started this process to take over
    /// from it (and keeps serving if this one never says ready).
    pub(crate) fn takes_over(&self) -> bool {
        self.takes_over
    }

    /// The service manager's socket, to pass on to a new process.
    pub(crate) fn manager(&self) -> Option<&OsStr> {
        self.manager.as_deref()
    }

    /// The server serves: `READY=1`.
    pub(crate) fn ready(&self) {
        send(self.ready.as_deref(), "READY=1");
    }

    /// The server drains to stop: `STOPPING=1`.
    pub(crate) fn stopping(&self) {
        send(self.manager.as_deref(), "STOPPING=1");
    }

    /// An upgrade handed over to process `pid`, which the service manager
    /// should follow from now on.
    pub(crate) fn main_pid(&self, pid: u32) {
        send(self.manager.as_deref(), &format!("MAINPID={pid}"));
    }
}

fn send(socket: Option<&OsStr>, state: &str) {
    if let Some(socket) = socket {
        if let Err(error) = notify_to(socket, state) {
            log::warn!(
                "cannot notify {} of {state}: {error}",
                socket.to_string_lossy()
            );
        }
    }
}
