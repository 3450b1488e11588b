//! `ProxyProtocol`: the PROXY protocol (v1 and v2) over any other listener,
//! so that behind a TCP load balancer (HAProxy `send-proxy`/`send-proxy-v2`,
//! an AWS Network Load Balancer, nginx `proxy_protocol on` in a `stream`
//! block) each connection's peer is the client, not the balancer.
//!
//! The inner listener accepts as before and the connection is handed out at
//! once; its header is read by [`Listener::establish`], on the connection's
//! own task, so a client slow to send its header holds up nobody else on
//! the shard. The header must be complete within the header timeout
//! (counted from accept). A connection whose header is absent, malformed,
//! too long or late is closed without an answer and counted in the shard's
//! stats (`establish_failures`, `establish_timeouts`).
//!
//! The header comes first on the wire, so with TLS the PROXY decoding runs
//! under it: a server with both serves `TlsListener<ProxyProtocol<_>>`.
//! The header is required: only put this listener behind a balancer that
//! sends it (anyone who can reach the port directly can name any address).

mod conn;
pub mod header;

use std::io;
use std::time::Duration;

use tokio::time::Instant;

pub use self::conn::ProxyConn;
use crate::listener::{Accepted, Listener, PeerAddr};
use crate::listeners::TcpConn;

/// A deadline that never comes, for a timeout too large to add to now.
const FAR_FUTURE: Duration = Duration::from_secs(100 * 365 * 86_400);

/// How a [`ProxyProtocol`] listener reads headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyProtocolSettings {
    /// Longest a connection may take, from accept, to send its whole header.
    pub header_timeout: Duration,
}

impl ProxyProtocolSettings {
    /// The default header timeout: 5 s. A balancer sends the header with
    /// its first packet, so only a client that is not a balancer waits.
    pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(5);

    /// Settings with this header timeout.
    pub fn with_header_timeout(header_timeout: Duration) -> Self {
        ProxyProtocolSettings { header_timeout }
    }
}

impl Default for ProxyProtocolSettings {
    fn default() -> Self {
        Self::with_header_timeout(Self::DEFAULT_HEADER_TIMEOUT)
    }
}

/// A listener whose connections start with a PROXY protocol header (v1 or
/// v2), read before the connection is served; the peer becomes the client
/// the header names.
///
/// ```no_run
/// # use shardd_shards::listeners::{ProxyProtocol, ProxyProtocolSettings, ReusePort};
/// # fn on_shard() -> std::io::Result<()> {
/// let inner = ReusePort::bind("127.0.0.1:8080".parse().unwrap(), 1024)?;
/// let listener = ProxyProtocol::new(inner, ProxyProtocolSettings::default());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct ProxyProtocol<L> {
    inner: L,
    settings: ProxyProtocolSettings,
}

impl<L: Listener> ProxyProtocol<L> {
    /// Read a PROXY protocol header at the start of each of `inner`'s connections.
    pub fn new(inner: L, settings: ProxyProtocolSettings) -> Self {
        ProxyProtocol { inner, settings }
    }

    /// The listener underneath.
    pub fn get_ref(&self) -> &L {
        &self.inner
    }
}

impl<L: Listener> Listener for ProxyProtocol<L> {
    type Conn = ProxyConn<L::Conn>;

    async fn accept(&mut self) -> io::Result<Option<Accepted<ProxyConn<L::Conn>>>> {
        let Some(accepted) = self.inner.accept().await? else {
            return Ok(None);
        };
        let now = Instant::now();
        let deadline = now
            .checked_add(self.settings.header_timeout)
            .unwrap_or(now + FAR_FUTURE);
        Ok(Some(Accepted {
            conn: ProxyConn::new(accepted.conn, deadline),
            peer: accepted.peer,
        }))
    }

    async fn establish(conn: &mut Self::Conn, peer: &mut PeerAddr) -> io::Result<()> {
        // What is under us is nearer the wire: it goes first.
        L::establish(conn.get_mut(), peer).await?;
        conn.read_header(peer).await
    }

    fn stop_accepting(&mut self) {
        self.inner.stop_accepting();
    }

    /// The inner connection's socket: this one writes through to it (the
    /// bytes read ahead with the header are the client's, waiting to be
    /// read; nothing written is held back), so files still go out with
    /// `sendfile(2)` behind a balancer.
    fn plain_socket(conn: &mut Self::Conn) -> Option<&mut TcpConn> {
        L::plain_socket(conn.get_mut())
    }
}
