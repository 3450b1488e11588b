//! TLS on the main thread's side: loading the certificate at start, and
//! reloading it (SIGHUP in the binary) while the server runs.

use std::sync::Arc;

use shardd_shards::listeners::TlsContext;

use crate::config::Config;
use crate::error::Error;

/// Load `config.tls`'s certificate and key, so a bad file stops the server
/// before any thread starts.
#[cfg(feature = "tls")]
pub(crate) fn load(config: &Config) -> Result<Option<Arc<TlsContext>>, Error> {
    let Some(tls) = &config.tls else {
        return Ok(None);
    };
    let context = TlsContext::load(&tls.cert, &tls.key, tls.handshake_timeout())?
        .offering_http2(config.http2.enabled)?;
    Ok(Some(Arc::new(context)))
}

/// Built without the `tls` feature there is no certificate to load:
/// `Config::validate` has refused a config with `[tls]`.
#[cfg(not(feature = "tls"))]
pub(crate) fn load(config: &Config) -> Result<Option<Arc<TlsContext>>, Error> {
    match config.tls {
        None => Ok(None),
        Some(_) => Err(Error::InvalidSetting(
            "[tls] is set but shardd was built without the tls feature",
        )),
    }
}

/// Reloads a running server's TLS certificate and key from their files;
/// cheap to clone and to send to another thread (a signal handler, say).
#[derive(Clone, Debug)]
pub struct TlsReloader(pub(crate) Arc<TlsContext>);

impl TlsReloader {
    /// Read the certificate and key files again. New handshakes use them;
    /// open connections keep theirs. On error (the message names the file)
    /// the certificate in force is kept.
    pub fn reload(&self) -> Result<(), Error> {
        reload(&self.0)
    }
}

#[cfg(feature = "tls")]
fn reload(context: &TlsContext) -> Result<(), Error> {
    context.reload().map_err(Error::from)
}

/// Without the feature there is no certificate, so no reloader either.
#[cfg(not(feature = "tls"))]
fn reload(context: &TlsContext) -> Result<(), Error> {
    match *context {}
}
