//! The listening sockets: binding a TCP address or a Unix socket file,
//! taking over sockets inherited through `LISTEN_FDS`, and removing a Unix
//! socket file when the server stops.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockRef, Socket, Type};

use crate::bind_addr::{BindAddr, UnixMode};
use crate::error::Error;

/// How long the acceptor's blocking `accept` waits before it returns
/// `EAGAIN` and looks at the drain flag (`SO_RCVTIMEO`). A drain wakes it at
/// once with `shutdown(2)`, except on a socket another process shares
/// (systemd's, or one handed to a new process by an upgrade), which a
/// shutdown would close for everyone. Costs nothing while connections come.
pub(crate) const ACCEPT_WAKE: Duration = Duration::from_millis(100);

/// How long the kernel holds a connection that has sent nothing before
/// handing it to `accept` anyway, with `defer_accept` on (Linux rounds it to
/// the SYN-ACK retransmissions: the first comes after one second).
pub const DEFER_ACCEPT_SECS: i32 = 1;

/// Have the kernel hand a connection to `accept` only once data has
/// arrived on it (or after [`DEFER_ACCEPT_SECS`]): an HTTP client speaks
/// first, so the connection is read and answered at once, without a
/// wake-up for readiness, an epoll registration and a read finding nothing
/// (five system calls and a context switch fewer per connection).
pub(crate) fn defer_accept(socket: &impl AsRawFd) -> io::Result<()> {
    let seconds: libc::c_int = DEFER_ACCEPT_SECS;
    // SAFETY: a valid descriptor and an int option of the size given.
    let set = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_DEFER_ACCEPT,
            (&seconds as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if set < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Bind and listen on `addr` for the handoff acceptor.
///
/// `TCP_NODELAY` is set on the listening socket because Linux copies it to
/// every accepted socket, which saves a `setsockopt` per connection. The
/// socket stays blocking: the acceptor blocks in `accept4`.
pub(crate) fn bind_listener(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_nodelay(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog.min(i32::MAX as u32) as i32)?;
    Ok(socket.into())
}

/// Fail with "address already in use" if any socket listens on `addr`,
/// before `listener = "reuseport"` binds its sockets there. `SO_REUSEPORT`
/// lets every socket of the same user bind a port that reuseport sockets
/// listen on, so a second shardd would share the first one's port (the
/// kernel splitting connections between the two) instead of failing as in
/// handoff mode. A probe bound without `SO_REUSEPORT` conflicts with every
/// listening socket, reuseport or not; `SO_REUSEADDR` keeps connections
/// of an earlier run in `TIME_WAIT` from counting. The probe is closed
/// before the real sockets bind, so a process binding the port with
/// `SO_REUSEPORT` in the microseconds between the two still shares it;
/// holding the probe open would make our own binds fail.
///
/// Port 0 needs no probe: the kernel picks a port no socket has bound,
/// reuseport or not, for the first socket, and the rest bind that one.
pub(crate) fn ensure_nothing_listens(addr: SocketAddr) -> io::Result<()> {
    if addr.port() == 0 {
        return Ok(());
    }
    let probe = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    probe.set_reuse_address(true)?;
    probe.set_cloexec(true)?;
    probe.bind(&addr.into())
}

/// Bind and listen on the Unix socket file `path`, with permissions `mode`.
///
/// A socket file already there is tried first: if a process accepts on it,
/// that is an error ([`Error::UnixSocketInUse`]); if the connection is
/// refused, its process is gone and the stale file is replaced. Anything
/// else at `path` (a regular file, a directory) is left alone and is an
/// error. The mode is set between `bind` and `listen`, so no client can
/// connect while the file still has the umask's permissions.
pub(crate) fn bind_unix(
    path: &Path,
    backlog: u32,
    mode: Option<UnixMode>,
) -> Result<(OwnedFd, UnixSocketFile), Error> {
    let bind_error = |source| Error::Bind {
        addr: BindAddr::Unix(path.to_owned()),
        source,
    };
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => match UnixStream::connect(path) {
            Ok(_) => {
                return Err(Error::UnixSocketInUse {
                    path: path.to_owned(),
                })
            }
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                log::info!("replacing stale socket file {}", path.display());
                match std::fs::remove_file(path) {
                    Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(bind_error(e)),
                    _ => {}
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(bind_error(e)),
        },
        Ok(_) => {
            return Err(bind_error(io::Error::new(
                io::ErrorKind::AlreadyExists,
                "the path exists and is not a socket",
            )))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(bind_error(e)),
    }
    let socket = Socket::new(Domain::UNIX, Type::STREAM, None).map_err(bind_error)?;
    socket.set_cloexec(true).map_err(bind_error)?;
    socket
        .bind(&SockAddr::unix(path).map_err(bind_error)?)
        .map_err(bind_error)?;
    // From here on the file is ours: remove it again if anything fails.
    let file = UnixSocketFile::owned(path).map_err(bind_error)?;
    if let Some(mode) = mode {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode.bits()))
            .map_err(bind_error)?;
    }
    socket
        .listen(backlog.min(i32::MAX as u32) as i32)
        .map_err(bind_error)?;
    Ok((socket.into(), file))
}

/// A Unix socket file this process created (or took over from the
/// process it upgraded): removed when the server stops, unless it was
/// handed on to a new process ([`UnixSocketFile::keep`]).
#[derive(Debug)]
pub(crate) struct UnixSocketFile {
    path: PathBuf,
    /// Identity of the file we bound, so we never remove someone else's.
    dev: u64,
    ino: u64,
    armed: AtomicBool,
}

impl UnixSocketFile {
    /// The socket file now at `path` is ours to remove.
    pub(crate) fn owned(path: &Path) -> io::Result<UnixSocketFile> {
        let meta = std::fs::symlink_metadata(path)?;
        Ok(UnixSocketFile {
            path: path.to_owned(),
            dev: meta.dev(),
            ino: meta.ino(),
            armed: AtomicBool::new(true),
        })
    }

    /// Another process serves on the socket now: leave the file.
    pub(crate) fn keep(&self) {
        self.armed.store(false, SeqCst);
    }

    /// Remove the file (once), if it is still the one we bound.
    pub(crate) fn remove(&self) {
        if !self.armed.swap(false, SeqCst) {
            return;
        }
        match std::fs::symlink_metadata(&self.path) {
            Ok(meta) if meta.dev() == self.dev && meta.ino() == self.ino => {
                if let Err(error) = std::fs::remove_file(&self.path) {
                    log::warn!("cannot remove {}: {error}", self.path.display());
                }
            }
            _ => {}
        }
    }
}

impl Drop for UnixSocketFile {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Check that an inherited descriptor is a listening stream socket and say
/// what it listens on.
pub(crate) fn inspect_inherited(fd: &OwnedFd) -> Result<BindAddr, Error> {
    let raw = fd.as_raw_fd();
    let socket = SockRef::from(fd);
    let problem = |what: &str| Error::Inherited(format!("fd {raw} {what}"));
    match socket.r#type() {
        Ok(kind) if kind == Type::STREAM => {}
        Ok(_) => return Err(problem("is not a stream socket")),
        Err(error) => return Err(problem(&format!("is not a socket ({error})"))),
    }
    if !socket.is_listener().unwrap_or(false) {
        return Err(problem("is not listening"));
    }
    let local = socket
        .local_addr()
        .map_err(|error| problem(&format!("has no address ({error})")))?;
    if let Some(addr) = local.as_socket() {
        return Ok(BindAddr::Tcp(addr));
    }
    match local.as_pathname() {
        Some(path) => Ok(BindAddr::Unix(path.to_owned())),
        None => Err(problem(
            "is neither TCP nor a Unix socket with a path (abstract and unnamed sockets are not supported)",
        )),
    }
}

/// Prepare a socket for the handoff acceptor: blocking (the acceptor blocks
/// in `accept4`), with [`ACCEPT_WAKE`] as its accept timeout.
pub(crate) fn prepare_for_acceptor(fd: &OwnedFd) -> io::Result<()> {
    let socket = SockRef::from(fd);
    socket.set_nonblocking(false)?;
    socket.set_read_timeout(Some(ACCEPT_WAKE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepted_sockets_inherit_tcp_nodelay() {
        let listener = bind_listener("127.0.0.1:0".parse().unwrap(), 16).unwrap();
        let _client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (accepted, _) = listener.accept().unwrap();
        assert!(
            accepted.nodelay().unwrap(),
            "the acceptor relies on Linux copying TCP_NODELAY from the listener"
        );
    }

    fn temp_path(name: &str) -> PathBuf {
        std::env::temp_dir().join(format!("shardd-socket-{}-{name}.sock", std::process::id()))
    }

    #[test]
    fn the_probe_finds_reuseport_and_plain_listeners_and_ignores_closed_ones() {
        let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
        let reuseport = shardd_shards::listeners::reuseport_socket(any, 16).unwrap();
        let addr = reuseport.local_addr().unwrap();
        let error = ensure_nothing_listens(addr).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{error}");
        drop(reuseport);
        ensure_nothing_listens(addr).expect("nothing listens any more");

        let plain = bind_listener(any, 16).unwrap();
        let addr = plain.local_addr().unwrap();
        let error = ensure_nothing_listens(addr).unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::AddrInUse, "{error}");
        ensure_nothing_listens(any).expect("port 0 is not probed");
    }

    #[test]
    fn unix_socket_gets_its_mode_and_is_removed_once() {
        let path = temp_path("mode");
        let (fd, file) = bind_unix(&path, 16, Some("0600".parse().unwrap())).unwrap();
        let meta = std::fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        assert_eq!(
            inspect_inherited(&fd).unwrap(),
            BindAddr::Unix(path.clone())
        );
        drop(fd);
        drop(file);
        assert!(!path.exists(), "the file is removed with its guard");
    }

    #[test]
    fn kept_file_stays_and_a_replaced_file_is_not_removed() {
        let path = temp_path("keep");
        let (fd, file) = bind_unix(&path, 16, None).unwrap();
        file.keep();
        drop(file);
        assert!(path.exists(), "a kept file stays");
        drop(fd);
        // The stale file is replaced; the old guard must not remove the new one.
        let (fd, file) = bind_unix(&path, 16, None).unwrap();
        let old = UnixSocketFile {
            path: path.clone(),
            dev: 0,
            ino: 0,
            armed: AtomicBool::new(true),
        };
        drop(old);
        assert!(path.exists(), "someone else's file stays");
        drop(fd);
        drop(file);
        assert!(!path.exists());
    }

    #[test]
    fn not_a_socket_is_left_alone() {
        let path = temp_path("regular");
        std::fs::write(&path, b"data").unwrap();
        let error = bind_unix(&path, 16, None).unwrap_err();
        // The cause is the error's source, printed by a chain report.
        let error = format!("{:#}", anyhow::Error::from(error));
        assert!(error.contains("not a socket"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn inspect_refuses_what_does_not_listen() {
        let (a, _b) = UnixStream::pair().unwrap();
        let error = inspect_inherited(&OwnedFd::from(a))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not listening"), "{error}");
        let file = std::fs::File::open("/dev/null").unwrap();
        let error = inspect_inherited(&OwnedFd::from(file))
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a socket"), "{error}");
    }
}
