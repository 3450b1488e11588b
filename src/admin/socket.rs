//! The admin port's listening socket: bound here, or taken over from the
//! process that passed it (the shardd an upgrade replaces, or systemd), and
//! passed on to a new process in an upgrade.
//!
//! An inherited admin socket is shared with the process that passed it, so
//! it is never shut down: a shutdown would stop it for both. Its workers
//! notice that they must stop within [`ACCEPT_WAKE`] instead (the accept
//! timeout set here).

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;

use socket2::SockRef;

use crate::error::Error;
use crate::socket::{inspect_inherited, ACCEPT_WAKE};

/// `LISTEN_FDNAMES` name of the admin socket: what an upgrading shardd
/// passes it under, and the `FileDescriptorName=` a systemd socket unit
/// gives an admin socket for shardd to take over.
pub(crate) const ADMIN_FD_NAME: &str = "shardd-admin";

/// An admin socket passed to this process, not yet taken over.
#[derive(Debug)]
pub(crate) struct InheritedAdmin {
    listener: TcpListener,
    addr: SocketAddr,
}

impl InheritedAdmin {
    /// Check that `fd` is a listening TCP socket.
    pub(crate) fn new(fd: OwnedFd) -> Result<InheritedAdmin, Error> {
        let addr = inspect_inherited(&fd)?.tcp().ok_or_else(|| {
            Error::Inherited(format!("the socket named {ADMIN_FD_NAME} is not TCP"))
        })?;
        Ok(InheritedAdmin {
            listener: TcpListener::from(fd),
            addr,
        })
    }

    /// Whether this socket is what `configured` asks for: the same IP, and
    /// the same port unless `configured` says any port (0).
    fn serves(&self, configured: SocketAddr) -> bool {
        configured.ip() == self.addr.ip()
            && (configured.port() == 0 || configured.port() == self.addr.port())
    }
}

/// The admin port's socket, bound or taken over but not yet served.
pub(crate) struct AdminPort {
    pub(super) listener: TcpListener,
    pub(super) local_addr: SocketAddr,
    /// Inherited: another process has it open too.
    pub(super) shared: bool,
}

impl AdminPort {
    /// The admin port `configured` asks for: `inherited` if it listens
    /// there (an upgrade, or systemd), else a socket bound now. An inherited
    /// socket that is not wanted is closed here (the process that passed it
    /// still has its own copy), and the log says so.
    pub(crate) fn open(
        configured: Option<SocketAddr>,
        inherited: Option<InheritedAdmin>,
    ) -> Result<Option<AdminPort>, Error> {
        match (configured, inherited) {
            (None, None) => Ok(None),
            (None, Some(inherited)) => {
                log::info!(
                    "admin port is off in this configuration: the inherited admin socket {} is not served",
                    inherited.addr
                );
                Ok(None)
            }
            (Some(addr), None) => AdminPort::bind(addr).map(Some),
            (Some(addr), Some(inherited)) if inherited.serves(addr) => {
                AdminPort::adopt(inherited).map(Some)
            }
            (Some(addr), Some(inherited)) => {
                log::info!(
                    "admin = {addr} differs from the inherited admin socket {}: binding {addr}",
                    inherited.addr
                );
                AdminPort::bind(addr).map(Some)
            }
        }
    }

    /// Bind `addr` (port 0 picks a free port).
    pub(crate) fn bind(addr: SocketAddr) -> Result<AdminPort, Error> {
        let bind_error = |source| Error::AdminBind { addr, source };
        let listener = TcpListener::bind(addr).map_err(bind_error)?;
        let local_addr = listener.local_addr().map_err(bind_error)?;
        wake_accept_regularly(&listener).map_err(bind_error)?;
        Ok(AdminPort {
            listener,
            local_addr,
            shared: false,
        })
    }

    /// Serve an inherited socket.
    fn adopt(inherited: InheritedAdmin) -> Result<AdminPort, Error> {
        wake_accept_regularly(&inherited.listener)?;
        Ok(AdminPort {
            listener: inherited.listener,
            local_addr: inherited.addr,
            shared: true,
        })
    }

    /// The address bound.
    pub(crate) fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

/// Blocking accepts that time out after [`ACCEPT_WAKE`], so a worker sees
/// that it must stop without a shutdown of the socket. Both are properties
/// of the socket, so they hold in every process that has it open (systemd
/// may pass it non-blocking, which would make the workers spin).
fn wake_accept_regularly(listener: &TcpListener) -> io::Result<()> {
    let socket = SockRef::from(listener);
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(ACCEPT_WAKE))
}

/// A running admin port's socket, as the server's control sees it: passed
/// on in an upgrade, and no longer accepted on once the new process serves.
#[derive(Clone)]
pub(crate) struct AdminSocket {
    pub(super) listener: Arc<TcpListener>,
    /// Set: the workers stop accepting (and, once out of `accept`, exit).
    pub(super) stopping: Arc<AtomicBool>,
    /// Set: another process has the socket open, so it must never be shut down.
    pub(super) shared: Arc<AtomicBool>,
}

impl AdminSocket {
    /// A close-on-exec duplicate to pass to a new process. From now on the
    /// socket counts as shared.
    pub(crate) fn duplicate_for_upgrade(&self) -> io::Result<OwnedFd> {
        self.shared.store(true, SeqCst);
        self.listener.try_clone().map(OwnedFd::from)
    }

    /// Stop accepting on the socket and leave it open: the new process
    /// answers on it. Workers finish the connection they hold (one accepted
    /// after this call too) and exit within [`ACCEPT_WAKE`].
    pub(crate) fn stop_accepting(&self) {
        self.stopping.store(true, SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn inherited(addr: &str) -> InheritedAdmin {
        let listener = TcpListener::bind(addr).unwrap();
        InheritedAdmin::new(OwnedFd::from(listener)).unwrap()
    }

    #[test]
    fn an_inherited_socket_serves_its_own_address_or_any_port() {
        let socket = inherited("127.0.0.1:0");
        let addr = socket.addr;
        assert!(socket.serves(addr));
        assert!(socket.serves("127.0.0.1:0".parse().unwrap()));
        assert!(!socket.serves(SocketAddr::new(addr.ip(), addr.port() ^ 1)));
        assert!(!socket.serves(SocketAddr::new("0.0.0.0".parse().unwrap(), addr.port())));
    }

    #[test]
    fn an_inherited_socket_is_taken_over_only_at_its_address() {
        let socket = inherited("127.0.0.1:0");
        let addr = socket.addr;
        let port = AdminPort::open(Some(addr), Some(socket)).unwrap().unwrap();
        assert!(port.shared, "taken over, so shared");
        assert_eq!(port.local_addr(), addr);

        let socket = inherited("127.0.0.1:0");
        let other = socket.addr;
        let port = AdminPort::open(Some("127.0.0.1:0".parse().unwrap()), Some(socket))
            .unwrap()
            .unwrap();
        assert!(
            port.shared && port.local_addr() == other,
            "port 0: any port"
        );

        let socket = inherited("127.0.0.1:0");
        let port = AdminPort::open(Some("127.0.0.2:0".parse().unwrap()), Some(socket))
            .unwrap()
            .unwrap();
        assert!(!port.shared, "another address: bound anew");
        assert_eq!(port.local_addr().ip().to_string(), "127.0.0.2");

        let socket = inherited("127.0.0.1:0");
        assert!(AdminPort::open(None, Some(socket)).unwrap().is_none());
    }

    #[test]
    fn a_socket_that_is_not_tcp_is_refused() {
        let path = std::env::temp_dir().join(format!("shardd-admin-{}.sock", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let unix = std::os::unix::net::UnixListener::bind(&path).unwrap();
        let error = InheritedAdmin::new(OwnedFd::from(unix)).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(error.to_string().contains("not TCP"), "{error}");
    }
}
