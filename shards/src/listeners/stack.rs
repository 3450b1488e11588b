//! The listener stack a shard serves: the listener it is given, under the
//! PROXY protocol if configured, under TLS if configured. The one place
//! that names the decorators, so the shard's loop knows only [`Listener`].

use std::sync::Arc;

use super::{ProxyProtocol, ProxyProtocolSettings, TlsContext};
use crate::listener::Listener;
use crate::stats::ShardStats;

/// What serves the stacked listener: generic over its type, so each stack
/// (plain, PROXY, TLS, PROXY under TLS) compiles its own copy of the
/// server loop, with nothing dynamic per accept, read or write.
pub(crate) trait ServeListener {
    /// Serve `listener` until the shard stops.
    async fn serve<L: Listener>(self, listener: L);
}

/// The decorators a shard's configuration asks for.
pub(crate) struct ListenerStack {
    /// Read a PROXY protocol header first (before the first TLS byte).
    pub proxy_protocol: Option<ProxyProtocolSettings>,
    /// Serve TLS with this certificate, counting handshakes in these stats.
    pub tls: Option<(Arc<TlsContext>, Arc<ShardStats>)>,
}

impl ListenerStack {
    /// Build the stack over `listener` and hand it to `server`.
    pub(crate) async fn serve<L: Listener>(self, listener: L, server: impl ServeListener) {
        let ListenerStack {
            proxy_protocol,
            tls,
        } = self;
        match proxy_protocol {
            None => serve_tls(listener, tls, server).await,
            Some(settings) => serve_tls(ProxyProtocol::new(listener, settings), tls, server).await,
        }
    }
}

/// `server` over `listener`, through TLS if `tls` is set.
#[cfg(feature = "tls")]
async fn serve_tls<L: Listener>(
    listener: L,
    tls: Option<(Arc<TlsContext>, Arc<ShardStats>)>,
    server: impl ServeListener,
) {
    match tls {
        None => server.serve(listener).await,
        Some((context, stats)) => {
            let listener = super::TlsListener::counted(listener, context, Some(stats));
            server.serve(listener).await
        }
    }
}

/// Built without TLS: `tls` is always `None` (its [`TlsContext`] has no value).
#[cfg(not(feature = "tls"))]
async fn serve_tls<L: Listener>(
    listener: L,
    tls: Option<(Arc<TlsContext>, Arc<ShardStats>)>,
    server: impl ServeListener,
) {
    if let Some((context, _)) = tls {
        match *context {}
    }
    server.serve(listener).await
}
