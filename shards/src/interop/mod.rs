//! Conversions between shardd's [`Request`] and [`Response`] and the
//! `http` crate's `Request` and `Response`, for code written against the
//! `http` types (middleware, clients, test helpers, other frameworks).
//!
//! - [`Request::to_http`] / [`Request::to_http_parts`]: the borrowed request
//!   as an owned `http::Request<Bytes>` / `http::request::Parts`;
//! - [`Response::into_http`] (`TryFrom<Response> for http::Response<Body>`)
//!   and [`Response::from_http`] (`TryFrom<http::Response<B>> for
//!   Response`, for any body that is `Into<Body>`);
//! - with feature `tower`, `Body` is an `http_body::Body` and
//!   [`Body::from_http_body`] takes any other one.
//!
//! None of them needs a feature. The tower adapter ([`crate::tower`]) is
//! built on the same functions.
//!
//! This file holds the error type; [`request`] and [`response`] convert
//! one way each, [`fields`] maps header names and values between the two.

mod fields;
mod request;
mod response;
#[cfg(test)]
mod tests;

// The tower adapter converts with its own buffers and header maps.
#[cfg(feature = "tower")]
pub(crate) use request::request_to_http;
#[cfg(feature = "tower")]
pub(crate) use response::response_from_http;

/// Why a conversion between shardd's and the `http` crate's types failed.
///
/// Each side accepts something the other refuses: shardd keeps header text
/// as `str` (UTF-8), the `http` crate allows obsolete non-UTF-8 bytes in a
/// value but no control bytes, and shardd's `Request::new` takes any method
/// and target text.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HttpConversionError {
    /// The method is not a token the `http` crate accepts.
    #[error("invalid method {0:?}")]
    Method(String),
    /// The request target is not a URI the `http` crate accepts.
    #[error("the request target {target:?} is not a valid URI: {source}")]
    Uri {
        /// The target as sent.
        target: String,
        /// What the `http` crate found wrong.
        source: http::uri::InvalidUri,
    },
    /// A header field name the `http` crate refuses.
    #[error("invalid header name {0:?}")]
    HeaderName(String),
    /// A header value the `http` crate refuses (a control byte, e.g. CR or LF).
    #[error("the value of header field {name:?} is not a valid header value")]
    HeaderValue {
        /// The field's name.
        name: String,
    },
    /// A header value that is not UTF-8, which shardd's header text must be.
    #[error("the value of header field {name:?} is not UTF-8")]
    NotUtf8 {
        /// The field's name.
        name: String,
    },
    /// More header fields than an `http::HeaderMap` holds.
    #[error("too many header fields")]
    TooManyHeaders,
    /// A response that takes the connection over ([`Response::on_upgrade`](crate::Response::on_upgrade))
    /// has no `http::Response` form: its handler would be lost.
    #[error("a response that upgrades the connection cannot be converted")]
    Upgrade,
}
