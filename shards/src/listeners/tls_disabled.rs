//! What stands for the TLS certificate when shardd is built without the
//! `tls` feature.

/// Built without the `tls` feature, there is no certificate: this type has
/// no value, so an `Option<Arc<TlsContext>>` is always `None` and what
/// carries one compiles unchanged. Enable the feature to serve TLS.
#[derive(Debug)]
pub enum TlsContext {}
