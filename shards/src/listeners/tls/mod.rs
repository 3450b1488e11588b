//! `TlsListener`: TLS (rustls) over any other listener.
//!
//! The inner listener accepts as before (with the default handoff, the main
//! thread still only accepts and hands the TCP connection over); the TLS
//! listener wraps each connection in a [`TlsConn`] and returns it at once.
//! The handshake runs when the connection's task first reads, on the
//! shard, so handshakes spread over the cores and never block the accept
//! loop. TLS 1.3 and 1.2, ALPN `http/1.1`, the certificate from a
//! [`TlsContext`] that a reload swaps for new handshakes.
//!
//! A connection counts as open on its shard from accept, so connections
//! still shaking hands count against the admission limits; the shard counts
//! completed, failed and timed-out handshakes in its stats.

mod certs;
mod conn;

use std::io;
use std::rc::Rc;
use std::sync::Arc;

use tokio::time::Instant;

pub use self::certs::{TlsContext, TlsError};
use self::conn::HandshakeStats;
pub use self::conn::TlsConn;
use crate::listener::{Accepted, Listener, PeerAddr};
use crate::stats::ShardStats;

/// A deadline that never comes, for a handshake timeout too large to add to now.
const FAR_FUTURE: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 86_400);

/// A listener that serves TLS over the connections of another listener.
pub struct TlsListener<L> {
    inner: L,
    context: Arc<TlsContext>,
    stats: Rc<HandshakeStats>,
}

impl<L: Listener> TlsListener<L> {
    /// TLS over `inner`'s connections with `context`'s certificate.
    ///
    /// A server with [`tls`](crate::runtime::ShardConfig::tls) set wraps
    /// its shards' listeners itself (and counts handshakes in the shard's
    /// stats); this is for composing listeners by hand.
    pub fn new(inner: L, context: Arc<TlsContext>) -> Self {
        Self::counted(inner, context, None)
    }

    /// The same, counting handshakes in a shard's stats.
    pub(crate) fn counted(
        inner: L,
        context: Arc<TlsContext>,
        stats: Option<Arc<ShardStats>>,
    ) -> Self {
        TlsListener {
            inner,
            context,
            stats: Rc::new(HandshakeStats { stats }),
        }
    }
}

impl<L: Listener> Listener for TlsListener<L> {
    type Conn = TlsConn<L::Conn>;

    async fn accept(&mut self) -> io::Result<Option<Accepted<TlsConn<L::Conn>>>> {
        let Some(accepted) = self.inner.accept().await? else {
            return Ok(None);
        };
        let now = Instant::now();
        let deadline = now
            .checked_add(self.context.handshake_timeout())
            .unwrap_or(now + FAR_FUTURE);
        let conn = TlsConn::new(
            accepted.conn,
            self.context.current(),
            deadline,
            self.stats.clone(),
        );
        Ok(Some(Accepted {
            conn,
            peer: accepted.peer,
        }))
    }

    async fn establish(conn: &mut Self::Conn, peer: &mut PeerAddr) -> io::Result<()> {
        // Before the handshake: what the inner listener reads (a PROXY
        // protocol header) comes before the first TLS byte.
        match conn.get_mut() {
            Some(inner) => L::establish(inner, peer).await,
            None => Ok(()),
        }
    }

    fn stop_accepting(&mut self) {
        self.inner.stop_accepting();
    }
}
