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
//! - [`BuiltinListener`] is either, as one type: what a bound server
//!   builds on each shard, and what `shardd::Server::wrap_listener` hands a
//!   decorator to wrap.
//!
//! - `TlsListener` (feature `tls`) wraps any listener, handing out `TlsConn`s whose
//!   handshake runs on the connection's own task.
//! - [`ProxyProtocol`] wraps any listener, handing out [`ProxyConn`]s whose
//!   PROXY protocol header (v1 or v2) is read on the connection's own task;
//!   the peer becomes the client behind the load balancer.

mod builtin;
pub(crate) mod handoff;
pub mod proxy_protocol;
mod reuseport;
pub(crate) mod stack;
mod tcp;
#[cfg(feature = "tls")]
mod tls;
#[cfg(not(feature = "tls"))]
mod tls_disabled;

pub use builtin::BuiltinListener;
pub use handoff::{Handoff, HandoffConn};
pub use proxy_protocol::{ProxyConn, ProxyProtocol, ProxyProtocolSettings};
pub use reuseport::{reuseport_socket, ReusePort};
pub use tcp::{accept_nonblocking, accept_stream, TcpConn};
#[cfg(feature = "tls")]
pub use tls::{TlsConn, TlsContext, TlsError, TlsListener};
#[cfg(not(feature = "tls"))]
#[doc(hidden)]
pub use tls_disabled::TlsContext;
