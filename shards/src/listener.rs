//! The `Listener` trait: where a shard's connections come from.
//!
//! The shard's server loop calls [`Listener::accept`] and serves whatever
//! comes back. Swap the implementation (handoff from the main
//! thread, a socket of the shard's own, a Unix socket, TLS, an in-memory
//! pipe) and the server loop does not change.

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

use tokio::io::{AsyncRead, AsyncWrite};

use crate::listeners::TcpConn;

/// Who is on the other end of a connection, as far as the listener knows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum PeerAddr {
    /// A TCP peer.
    Tcp(SocketAddr),
    /// A peer on a Unix domain socket: the path its socket is bound to, or
    /// `None` for the usual unbound client socket.
    Unix(Option<PathBuf>),
    /// The listener cannot say (in-memory pipes).
    Unknown,
}

/// `127.0.0.1:5000`, `unix:/path` (`unix:` for an unbound client), `unknown`.
impl fmt::Display for PeerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PeerAddr::Tcp(addr) => write!(f, "{addr}"),
            PeerAddr::Unix(Some(path)) => write!(f, "unix:{}", path.display()),
            PeerAddr::Unix(None) => f.write_str("unix:"),
            PeerAddr::Unknown => f.write_str("unknown"),
        }
    }
}

/// A connection handed to the server loop.
#[derive(Debug)]
pub struct Accepted<C> {
    /// The connection's byte stream.
    pub conn: C,
    /// Who is on the other end.
    pub peer: PeerAddr,
}

/// A source of connections for one shard.
///
/// Implementations are built on the shard's own thread by a factory, so they
/// need not be `Send`. The shard calls `accept` in a loop and spawns one
/// task per connection.
pub trait Listener: 'static {
    /// The byte stream of one connection.
    type Conn: AsyncRead + AsyncWrite + Unpin + 'static;

    /// Wait for the next connection.
    ///
    /// `Ok(None)` means this listener will never produce another one; the
    /// shard then finishes its open connections and stops. An `Err` is
    /// logged and the shard calls again after a short back-off (accept
    /// errors such as EMFILE are usually transient). The future must be
    /// cancel-safe: the shard drops it when it has to react to a command.
    fn accept(&mut self) -> impl Future<Output = io::Result<Option<Accepted<Self::Conn>>>>;

    /// Finish setting up a connection before it is served: read what comes
    /// on the wire before HTTP (a PROXY protocol header), and correct
    /// `peer` from it. Runs on the connection's own task, so a slow client
    /// holds up no other connection, and counts against the admission
    /// limits like the rest of the connection's life.
    ///
    /// An `Err` closes the connection unanswered; the shard counts it in
    /// its stats (`establish_timeouts` for `TimedOut`, else
    /// `establish_failures`). The default does nothing.
    ///
    /// A listener that wraps another and hands out its connections (or a
    /// wrapper of them) must call the inner listener's `establish` first,
    /// on the inner connection: it is nearer the wire.
    fn establish(
        conn: &mut Self::Conn,
        peer: &mut PeerAddr,
    ) -> impl Future<Output = io::Result<()>> {
        let _ = (conn, peer);
        std::future::ready(Ok(()))
    }

    /// The server is draining: take no new connections from outside, but
    /// still return those already accepted, then `Ok(None)`.
    fn stop_accepting(&mut self) {}

    /// The plain socket under `conn`, when what is written to it reaches
    /// the client byte for byte (no TLS, no framing of the listener's
    /// own): file bodies ([`Body::File`](crate::Body::File)) then go out
    /// with `sendfile(2)`, straight from the page cache. `None`, the
    /// default, has them read and written in chunks, which works over
    /// any connection.
    ///
    /// The built-in TCP and Unix listeners answer their socket. A listener
    /// that wraps another and writes through to its connection (as the
    /// PROXY protocol does once its header is read) forwards this to the
    /// inner listener's; one that transforms what is written (TLS) keeps
    /// the default.
    fn plain_socket(conn: &mut Self::Conn) -> Option<&mut TcpConn> {
        let _ = conn;
        None
    }
}
