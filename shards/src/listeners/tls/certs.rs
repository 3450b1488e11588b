//! `TlsContext`: the certificate and key every shard's TLS listener uses,
//! loaded from PEM files and swapped in place on reload.

use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;

/// The ALPN protocols shardd speaks, preferred first.
const ALPN_H2: &[u8] = b"h2";
const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The TLS state all shards share: the rustls configuration in force, the
/// files it was loaded from, and the handshake timeout.
///
/// [`reload`](Self::reload) reads the files again and swaps the
/// configuration: handshakes that start afterwards use the new certificate,
/// connections already open (or mid-handshake) keep the one they started
/// with, and a bad new file leaves the old certificate in force.
#[derive(Debug)]
pub struct TlsContext {
    cert: PathBuf,
    key: PathBuf,
    handshake_timeout: Duration,
    /// Whether ALPN offers `h2` (HTTP/2) before `http/1.1`.
    http2: bool,
    config: RwLock<Arc<ServerConfig>>,
}

impl TlsContext {
    /// Load a certificate chain (`cert`, PEM: the server's certificate first,
    /// then any intermediates) and its private key (`key`, PEM: PKCS#8,
    /// PKCS#1 or SEC1). Fails, naming the file, if either cannot be read or
    /// parsed, or if the key does not belong to the certificate.
    pub fn load(
        cert: impl Into<PathBuf>,
        key: impl Into<PathBuf>,
        handshake_timeout: Duration,
    ) -> Result<Self, TlsError> {
        let (cert, key) = (cert.into(), key.into());
        let config = server_config(&cert, &key, false)?;
        Ok(TlsContext {
            cert,
            key,
            handshake_timeout,
            http2: false,
            config: RwLock::new(Arc::new(config)),
        })
    }

    /// Offer HTTP/2 (`h2`) by ALPN, before `http/1.1`, or not. A client
    /// that offers no ALPN gets HTTP/1.1; one that picks `h2` must open
    /// with the HTTP/2 preface, and the shard serves it as HTTP/2 (which
    /// the shard's `Http2Settings` must have on).
    pub fn offering_http2(mut self, http2: bool) -> Result<Self, TlsError> {
        self.http2 = http2;
        self.reload()?;
        Ok(self)
    }

    /// Read the certificate and key files again and use them for every new
    /// handshake. On error the configuration in force is kept.
    pub fn reload(&self) -> Result<(), TlsError> {
        let config = Arc::new(server_config(&self.cert, &self.key, self.http2)?);
        *self.config.write().unwrap_or_else(|e| e.into_inner()) = config;
        Ok(())
    }

    /// The certificate chain file.
    pub fn cert_path(&self) -> &Path {
        &self.cert
    }

    /// The private key file.
    pub fn key_path(&self) -> &Path {
        &self.key
    }

    /// How long a client has, from accept, to complete its TLS handshake.
    pub fn handshake_timeout(&self) -> Duration {
        self.handshake_timeout
    }

    /// The configuration for a handshake starting now.
    pub(crate) fn current(&self) -> Arc<ServerConfig> {
        self.config
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}

/// Why a certificate or key could not be used; the message names the file.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The certificate file is missing, unreadable or holds no usable certificate.
    #[error("TLS certificate file {}: {reason}", .path.display())]
    Cert {
        /// The certificate file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key file is missing, unreadable or holds no usable private key.
    #[error("TLS key file {}: {reason}", .path.display())]
    Key {
        /// The key file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The key is not the private key of the certificate.
    #[error(
        "TLS key file {} does not match the certificate in {}",
        .key.display(),
        .cert.display()
    )]
    Mismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
}

/// Read both files and build the rustls configuration: TLS 1.3 and 1.2,
/// aws-lc-rs crypto, ALPN `http/1.1`, no client certificates.
fn server_config(cert_path: &Path, key_path: &Path, http2: bool) -> Result<ServerConfig, TlsError> {
    let cert_error = |reason: String| TlsError::Cert {
        path: cert_path.to_owned(),
        reason,
    };
    let key_error = |reason: String| TlsError::Key {
        path: key_path.to_owned(),
        reason,
    };
    let cert_pem = std::fs::read(cert_path).map_err(|e| cert_error(format!("cannot read: {e}")))?;
    let chain = CertificateDer::pem_slice_iter(&cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| cert_error(pem_reason(e)))?;
    if chain.is_empty() {
        return Err(cert_error("holds no PEM certificate".into()));
    }
    let key_pem = std::fs::read(key_path).map_err(|e| key_error(format!("cannot read: {e}")))?;
    let key = PrivateKeyDer::from_pem_slice(&key_pem).map_err(|e| match e {
        pem::Error::NoItemsFound => key_error("holds no PEM private key".into()),
        e => key_error(pem_reason(e)),
    })?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
        .map_err(|e| cert_error(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|error| match error {
            rustls::Error::InconsistentKeys(_) => TlsError::Mismatch {
                cert: cert_path.to_owned(),
                key: key_path.to_owned(),
            },
            rustls::Error::General(message) => key_error(format!("unusable key: {message}")),
            error => cert_error(format!("unusable certificate: {error}")),
        })?;
    config.alpn_protocols = if http2 {
        vec![ALPN_H2.to_vec(), ALPN_HTTP11.to_vec()]
    } else {
        vec![ALPN_HTTP11.to_vec()]
    };
    Ok(config)
}

fn pem_reason(error: pem::Error) -> String {
    format!("not valid PEM: {error}")
}
