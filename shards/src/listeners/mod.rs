//! The listeners shardd ships.
//!
//! - [`Handoff`] (default): connections accepted by the main thread arrive
//!   over this shard's channel.
//! - [`ReusePort`]: the shard binds its own `SO_REUSEPORT` socket and the
//!   kernel balances connections between shards.
//!
//! Both hand out [`TcpConn`], a stream socket that reads and writes before
//! asking epoll (see its docs): a TCP stream, or a Unix domain stream when
//! the acceptor listens on a `unix:` address.
//!
//! - [`TlsListener`] wraps any listener, handing out [`TlsConn`]s whose
//!   handshake runs on the connection's own task.

mod handoff;
mod reuseport;
mod tcp;
mod tls;

pub use handoff::{Handoff, HandoffConn};
pub use reuseport::{reuseport_socket, ReusePort};
pub use tcp::{accept_nonblocking, accept_stream, TcpConn};
pub use tls::{TlsConn, TlsContext, TlsError, TlsListener};
