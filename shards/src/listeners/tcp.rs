//! `TcpConn`: a non-blocking stream socket that tries the system call first.
//!
//! Despite its name it carries any connected stream socket: a TCP stream,
//! or a Unix domain stream accepted on a `unix:` address. Its system calls
//! (`read`, `send`, `sendmsg`, `shutdown`) are the same for both.
//!
//! Every system call per request counts (as meinheld shows): read right after
//! accept without waiting for readiness, and write without waiting for
//! writability. tokio's own `TcpStream` waits for a readiness event before
//! its first read, so a new connection costs an extra `epoll_wait` round.
//! `TcpConn` instead:
//! - reads at once; after a read that did not fill the buffer it assumes the
//!   socket is drained and waits for the next edge instead of spending a
//!   `read` that would return `EAGAIN`;
//! - writes at once, and only waits for writability after `EAGAIN`;
//! - joins the shard's epoll set only when a call first returns `EAGAIN`.
//!   A short connection whose request is already in the socket when it is
//!   handed over (the churn workload) is read, answered and closed without
//!   ever being registered: no `epoll_ctl` ADD and DEL for it.

use std::io;
use std::net::{SocketAddr, TcpStream};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd, RawFd};
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use socket2::SockAddr;
use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

use crate::listener::PeerAddr;

/// A connection of one shard (TCP, or a Unix domain stream), registered
/// with its reactor on first need.
#[derive(Debug)]
pub struct TcpConn {
    socket: Socket,
    /// The raw descriptor, for the system calls made without the reactor.
    fd: RawFd,
    /// The last read drained the socket: wait for a readiness edge before reading again.
    read_parked: bool,
}

#[derive(Debug)]
enum Socket {
    /// Not in the epoll set yet: nothing has had to wait.
    Unregistered(OwnedFd),
    Registered(AsyncFd<OwnedFd>),
    /// Registration failed and the stream was closed; every call fails.
    Lost,
}

impl TcpConn {
    /// Wrap a non-blocking TCP stream accepted for the current shard.
    pub fn new(stream: TcpStream) -> io::Result<Self> {
        Self::from_fd(stream.into())
    }

    /// Wrap any non-blocking, connected stream socket (TCP or Unix domain)
    /// accepted for the current shard.
    pub fn from_fd(socket: OwnedFd) -> io::Result<Self> {
        let fd = socket.as_raw_fd();
        Ok(TcpConn {
            socket: Socket::Unregistered(socket),
            fd,
            read_parked: false,
        })
    }

    /// The socket, unless the connection was lost (for `getsockopt` and
    /// the like, e.g. through `socket2::SockRef`).
    pub fn get_ref(&self) -> Option<BorrowedFd<'_>> {
        match &self.socket {
            Socket::Unregistered(socket) => Some(socket.as_fd()),
            Socket::Registered(io) => Some(io.get_ref().as_fd()),
            Socket::Lost => None,
        }
    }

    /// The descriptor, unless registration failed and closed it (a closed
    /// number may already belong to another file: never touch it).
    fn fd(&self) -> io::Result<RawFd> {
        match self.socket {
            Socket::Lost => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "connection lost",
            )),
            _ => Ok(self.fd),
        }
    }

    /// The reactor registration, made now if this is the first wait.
    #[inline]
    fn reactor(&mut self) -> io::Result<&AsyncFd<OwnedFd>> {
        if let Socket::Unregistered(_) = self.socket {
            self.register()?;
        }
        match &self.socket {
            Socket::Registered(io) => Ok(io),
            _ => Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "connection lost",
            )),
        }
    }

    /// Join the shard's epoll set (once per connection, and only if it ever
    /// has to wait: out of line).
    #[cold]
    fn register(&mut self) -> io::Result<()> {
        let Socket::Unregistered(socket) = std::mem::replace(&mut self.socket, Socket::Lost) else {
            return Ok(());
        };
        // SAFETY: the OwnedFd is the descriptor, and the AsyncFd owns it until
        // it is dropped, so the fd stays open and unchanged.
        // EPOLL_CTL_ADD reports readiness that already exists, so data that
        // arrived since our last EAGAIN still wakes us.
        let io = unsafe {
            AsyncFd::register_with_interest(socket, Interest::READABLE | Interest::WRITABLE)
        }
        .map_err(io::Error::from)?;
        self.socket = Socket::Registered(io);
        Ok(())
    }
}

impl TcpConn {
    /// Send up to `len` bytes of `file` from `offset` with `sendfile(2)`:
    /// the kernel copies them from the page cache to the socket, and
    /// nothing passes through user space. Returns how many went (0 only
    /// if `len` is 0 or the file ends before `offset`).
    ///
    /// `sendfile` has no `MSG_NOSIGNAL`: writing to a socket the peer
    /// closed raises `SIGPIPE`, which Rust programs ignore from the start.
    pub(crate) fn poll_sendfile(
        &mut self,
        cx: &mut Context<'_>,
        file: BorrowedFd<'_>,
        offset: u64,
        len: usize,
    ) -> Poll<io::Result<usize>> {
        let Ok(mut at) = libc::off_t::try_from(offset) else {
            return Poll::Ready(Err(io::Error::from(io::ErrorKind::InvalidInput)));
        };
        loop {
            let fd = self.fd()?;
            // SAFETY: both descriptors are open (the socket is ours, the
            // file is borrowed for the call) and `at` is a valid offset
            // the kernel may update.
            let n = unsafe { libc::sendfile(fd, file.as_raw_fd(), &mut at, len) };
            if n >= 0 {
                return Poll::Ready(Ok(n as usize));
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::WouldBlock => {
                    let mut guard = ready!(self.reactor()?.poll_write_ready(cx))?;
                    guard.clear_ready();
                }
                io::ErrorKind::Interrupted => {}
                _ => return Poll::Ready(Err(error)),
            }
        }
    }
}

impl AsyncRead for TcpConn {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            if !this.read_parked {
                // SAFETY: read(2) only writes initialised bytes into the unfilled part,
                // and we mark exactly the `n` bytes it reports as initialised and filled.
                let unfilled = unsafe { buf.unfilled_mut() };
                let want = unfilled.len();
                let fd = this.fd()?;
                // SAFETY: `unfilled` is valid for `want` bytes of writes and
                // `fd` is this connection's open socket.
                let n = unsafe { sys_read(fd, unfilled.as_mut_ptr().cast(), want) };
                if n >= 0 {
                    let n = n as usize;
                    // SAFETY: read(2) initialised the first `n` bytes of `unfilled`.
                    unsafe { buf.assume_init(n) };
                    buf.advance(n);
                    this.read_parked = n < want && n > 0;
                    return Poll::Ready(Ok(()));
                }
                let error = io::Error::last_os_error();
                match error.kind() {
                    io::ErrorKind::WouldBlock => this.read_parked = true,
                    io::ErrorKind::Interrupted => continue,
                    _ => return Poll::Ready(Err(error)),
                }
            }
            // Consume the readiness event before reading: an edge that arrives after
            // this point sets it again, so no data can be missed.
            let mut guard = ready!(this.reactor()?.poll_read_ready(cx))?;
            guard.clear_ready();
            this.read_parked = false;
        }
    }
}

impl AsyncWrite for TcpConn {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            let fd = this.fd()?;
            // MSG_NOSIGNAL: a peer that has gone must give EPIPE, not kill the process.
            // SAFETY: send(2) reads `data.len()` bytes from a valid slice.
            let n = unsafe { sys_send(fd, data.as_ptr().cast(), data.len(), libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Poll::Ready(Ok(n as usize));
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::WouldBlock => {
                    let mut guard = ready!(this.reactor()?.poll_write_ready(cx))?;
                    guard.clear_ready();
                }
                io::ErrorKind::Interrupted => {}
                _ => return Poll::Ready(Err(error)),
            }
        }
    }

    /// `sendmsg` with several slices: a head and a large body that is not
    /// copied behind it go out in one system call (not `writev`, which
    /// cannot say MSG_NOSIGNAL).
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let count = slices.len().min(libc::UIO_MAXIOV as usize);
        loop {
            let fd = this.fd()?;
            // SAFETY: an all-zero msghdr is valid (no address, no control data).
            let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
            // IoSlice is ABI-compatible with iovec; sendmsg only reads them.
            message.msg_iov = slices.as_ptr() as *mut libc::iovec;
            message.msg_iovlen = count as _;
            // SAFETY: the message points at `count` valid slices for the whole call.
            let n = unsafe { sys_sendmsg(fd, &message, libc::MSG_NOSIGNAL) };
            if n >= 0 {
                return Poll::Ready(Ok(n as usize));
            }
            let error = io::Error::last_os_error();
            match error.kind() {
                io::ErrorKind::WouldBlock => {
                    let mut guard = ready!(this.reactor()?.poll_write_ready(cx))?;
                    guard.clear_ready();
                }
                io::ErrorKind::Interrupted => {}
                _ => return Poll::Ready(Err(error)),
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        let fd = self.fd()?;
        // SAFETY: shutdown(2) on our own open descriptor.
        if unsafe { libc::shutdown(fd, libc::SHUT_WR) } < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::NotConnected {
                return Poll::Ready(Err(error));
            }
        }
        Poll::Ready(Ok(()))
    }
}

/// Accept one connection on a listening TCP socket with
/// `accept4(SOCK_NONBLOCK | SOCK_CLOEXEC)`, so the new socket needs no
/// further `fcntl`. Returns `WouldBlock` when none is waiting on a
/// non-blocking listener.
pub fn accept_nonblocking(listener: impl AsFd) -> io::Result<(TcpStream, SocketAddr)> {
    let (fd, peer) = accept4(listener.as_fd())?;
    let stream = TcpStream::from(fd);
    let peer = peer
        .as_socket()
        .unwrap_or_else(|| SocketAddr::from(([0, 0, 0, 0], 0)));
    Ok((stream, peer))
}

/// Accept one connection on a listening stream socket, TCP or Unix domain
/// (a `std::net::TcpListener`, a `std::os::unix::net::UnixListener`, or
/// any descriptor of one), as [`accept_nonblocking`] does: the new socket
/// (non-blocking, close-on-exec) and who is on its other end
/// ([`PeerAddr::Tcp`] or [`PeerAddr::Unix`]), both from the one `accept4`
/// call. Returns `WouldBlock` when none is waiting on a non-blocking
/// listener; the new socket is ready for [`TcpConn::from_fd`].
pub fn accept_stream(listener: impl AsFd) -> io::Result<(OwnedFd, PeerAddr)> {
    let (fd, addr) = accept4(listener.as_fd())?;
    let peer = match addr.as_socket() {
        Some(addr) => PeerAddr::Tcp(addr),
        None if addr.is_unix() => PeerAddr::Unix(addr.as_pathname().map(|path| path.to_owned())),
        None => PeerAddr::Unknown,
    };
    Ok((fd, peer))
}

fn accept4(listener: BorrowedFd<'_>) -> io::Result<(OwnedFd, SockAddr)> {
    // SAFETY: accept4 fills at most `len` bytes of the storage socket2 gives us,
    // and we take ownership of the returned descriptor only when it is valid.
    let (fd, addr) = unsafe {
        SockAddr::try_init(|storage, len| {
            let fd = libc::accept4(
                listener.as_raw_fd(),
                storage.cast(),
                len,
                libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            );
            if fd < 0 {
                Err(io::Error::last_os_error())
            } else {
                Ok(fd)
            }
        })?
    };
    // SAFETY: accept4 returned a fresh descriptor that nothing else owns.
    Ok((unsafe { OwnedFd::from_raw_fd(fd) }, addr))
}

// The three calls of every turn, made with `syscall(2)` rather than glibc's
// wrappers: those are thread-cancellation points, and bracket each call
// with two more calls to switch cancellation on and off (about 90
// instructions a turn). Rust never cancels a thread. Each returns what the
// wrapper would: the count, or -1 with `errno` set.

/// `read(2)`.
///
/// # Safety
/// As `libc::read`: `buf` is valid for `len` bytes of writes.
#[inline]
unsafe fn sys_read(fd: RawFd, buf: *mut libc::c_void, len: usize) -> isize {
    // SAFETY: the caller vouches for the buffer; the kernel checks the rest.
    unsafe { libc::syscall(libc::SYS_read, fd, buf, len) as isize }
}

/// `send(2)`, as `sendto` without an address (what glibc's `send` calls).
///
/// # Safety
/// As `libc::send`: `buf` is valid for `len` bytes of reads.
#[inline]
unsafe fn sys_send(fd: RawFd, buf: *const libc::c_void, len: usize, flags: libc::c_int) -> isize {
    // SAFETY: as above; a null address of length 0 is `send`.
    unsafe {
        libc::syscall(
            libc::SYS_sendto,
            fd,
            buf,
            len,
            flags,
            std::ptr::null::<libc::sockaddr>(),
            0 as libc::socklen_t,
        ) as isize
    }
}

/// `sendmsg(2)`.
///
/// # Safety
/// As `libc::sendmsg`: `message` and the slices it points to are valid.
#[inline]
unsafe fn sys_sendmsg(fd: RawFd, message: &libc::msghdr, flags: libc::c_int) -> isize {
    // SAFETY: the caller vouches for the message.
    unsafe { libc::syscall(libc::SYS_sendmsg, fd, message as *const libc::msghdr, flags) as isize }
}
