//! `ReusePort`: each shard accepts on its own `SO_REUSEPORT` socket.
//!
//! The kernel spreads connections over the shards' sockets by a hash of
//! the 4-tuple, so there is no acceptor thread and no channel; the price is
//! no admission control across shards and uneven spread with few clients.

use std::io;
use std::net::{SocketAddr, TcpListener};

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::io::Interest;

use super::{accept_nonblocking, TcpConn};
use crate::listener::{Accepted, Listener, PeerAddr};

/// A shard's own listening socket in a `SO_REUSEPORT` group.
#[derive(Debug)]
pub struct ReusePort {
    socket: AsyncFd<TcpListener>,
    /// Draining: accept what the kernel already queued, then report the end.
    stopping: bool,
}

impl ReusePort {
    /// Bind `addr` with `SO_REUSEPORT` (and `SO_REUSEADDR`, `TCP_NODELAY`
    /// inherited by accepted sockets) and listen with `backlog`.
    pub fn bind(addr: SocketAddr, backlog: i32) -> io::Result<Self> {
        let socket = reuseport_socket(addr, backlog)?;
        Self::from_listener(socket)
    }

    /// Use an already bound and listening socket (it is made non-blocking).
    pub fn from_listener(listener: TcpListener) -> io::Result<Self> {
        listener.set_nonblocking(true)?;
        // SAFETY: the TcpListener owns its descriptor for the AsyncFd's whole life.
        let socket = unsafe { AsyncFd::register_with_interest(listener, Interest::READABLE) }
            .map_err(io::Error::from)?;
        Ok(ReusePort {
            socket,
            stopping: false,
        })
    }
}

/// A listening socket that may share its port with the other shards.
pub fn reuseport_socket(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nodelay(true)?;
    socket.set_cloexec(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}

impl Listener for ReusePort {
    type Conn = TcpConn;

    fn plain_socket(conn: &mut TcpConn) -> Option<&mut TcpConn> {
        Some(conn)
    }

    async fn accept(&mut self) -> io::Result<Option<Accepted<TcpConn>>> {
        loop {
            match accept_nonblocking(self.socket.get_ref()) {
                Ok((stream, peer)) => {
                    let conn = TcpConn::new(stream)?;
                    return Ok(Some(Accepted {
                        conn,
                        peer: PeerAddr::Tcp(peer),
                    }));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if self.stopping {
                        return Ok(None);
                    }
                    let mut guard = self.socket.readable().await?;
                    guard.clear_ready();
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::ConnectionAborted => {}
                Err(e) => return Err(e),
            }
        }
    }

    fn stop_accepting(&mut self) {
        self.stopping = true;
    }
}
