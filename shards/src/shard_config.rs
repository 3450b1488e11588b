//! What a shard takes from the server configuration.

use std::sync::Arc;
use std::time::Duration;

use crate::access_log::AccessLogSink;
use crate::buffers::DEFAULT_POOLED;
use crate::http2::Http2Settings;
use crate::limits::Limits;
use crate::listeners::{ProxyProtocolSettings, TlsContext};

/// What a shard takes from the server configuration.
#[derive(Clone, Debug)]
pub struct ShardConfig {
    /// The limits every connection of the shard enforces.
    pub limits: Limits,
    /// How long a drain may take before open connections are cut.
    pub drain_timeout: Duration,
    /// Buffer sets the shard keeps for reuse by its connections.
    pub pooled_buffers: usize,
    /// Serve TLS with this certificate over whatever the listener accepts.
    pub tls: Option<Arc<TlsContext>>,
    /// Where the access log goes; `None`: no access log.
    pub access_log: Option<AccessLogSink>,
    /// Read a PROXY protocol header at the start of every connection,
    /// under TLS if there is TLS; `None`: no header expected.
    pub proxy_protocol: Option<ProxyProtocolSettings>,
    /// HTTP/2: on or off, and what a connection may do.
    pub http2: Http2Settings,
}

impl Default for ShardConfig {
    fn default() -> Self {
        ShardConfig {
            limits: Limits::default(),
            drain_timeout: Duration::from_secs(10),
            pooled_buffers: DEFAULT_POOLED,
            tls: None,
            access_log: None,
            proxy_protocol: None,
            http2: Http2Settings::default(),
        }
    }
}
