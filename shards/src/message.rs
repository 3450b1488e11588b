//! A response as a wire codec sees it, whatever the protocol.
//!
//! A codec encodes any [`ResponseView`]: the app's
//! [`Response`](crate::Response) is one (it lends its parts in place, so
//! the hot path copies nothing), and [`ResponseParts`] is one described by
//! value (the server's own responses, tests). The codec knows this module
//! and nothing of the app API. That keeps the dependency one way
//! (app → codec), so the HTTP/1 codec in [`http`](crate::http) and any
//! other codec beside it encode the same description.
//!
//! ```
//! use shardd_shards::http::{encode_response, DateCache, EncodeOptions};
//! use shardd_shards::message::{BodyContent, ResponseView};
//! use shardd_shards::Response;
//!
//! let response = Response::text("Hello");
//! // What any codec reads of it, whatever the protocol.
//! assert_eq!(response.status(), http::StatusCode::OK);
//! assert_eq!(response.body_content(), BodyContent::Static(b"Hello"));
//!
//! // The HTTP/1 codec encodes it and says what it sent.
//! let date = DateCache::new().get();
//! let options = EncodeOptions {
//!     date: &date,
//!     head_only: false,
//!     close: false,
//!     keep_alive_1_0: false,
//!     http11: true,
//! };
//! let mut out = Vec::new();
//! let sent = encode_response(&response, &options, &mut out);
//! assert_eq!(sent.status, http::StatusCode::OK);
//! assert!(!sent.replaced);
//! assert!(out.starts_with(b"HTTP/1.1 200 OK\r\n"));
//! assert!(out.ends_with(b"\r\n\r\nHello"));
//! ```
//!
//! Nothing here is framing: which fields a protocol adds, how a body of
//! unknown length is delimited and what a connection does after the
//! response are the codec's and the connection's business.

use std::borrow::Cow;

use http::StatusCode;

/// A header name or value: usually a `&'static str`, so building a response allocates nothing.
pub type HeaderText = Cow<'static, str>;

/// A response as a codec reads it: status, header fields in order, what is
/// known of the body up front, and whether it upgrades.
///
/// Header text given as `&'static str` is part of the program and trusted;
/// owned text may come from a request, and a codec checks it before
/// sending it.
///
/// A trait rather than a struct a response converts into: a codec asks
/// only what it needs (a remembered encoding is recognised without looking
/// at the body of a response whose fields differ), and nothing is copied
/// to ask it.
pub trait ResponseView {
    /// The status code, as the app chose it.
    fn status(&self) -> StatusCode;
    /// Header fields in the order added, framing fields included (a codec
    /// decides which of them it honours).
    fn fields(&self) -> &[(HeaderText, HeaderText)];
    /// The body, or what is known of it before it is sent.
    fn body_content(&self) -> BodyContent<'_>;
    /// The connection is taken over once the head is sent (a `101` with an
    /// upgrade handler).
    fn upgrades(&self) -> bool;
}

/// A response described by value, borrowing its fields and body.
#[derive(Clone, Copy, Debug)]
pub struct ResponseParts<'a> {
    /// The status code, as the app chose it.
    pub status: StatusCode,
    /// Header fields in the order added, framing fields included (a
    /// codec decides which of them it honours).
    pub fields: &'a [(HeaderText, HeaderText)],
    /// The body, or what is known of it before it is sent.
    pub body: BodyContent<'a>,
    /// The connection is taken over once the head is sent (a `101`
    /// with an upgrade handler).
    pub upgrade: bool,
}

impl ResponseView for ResponseParts<'_> {
    #[inline(always)]
    fn status(&self) -> StatusCode {
        self.status
    }

    #[inline(always)]
    fn fields(&self) -> &[(HeaderText, HeaderText)] {
        self.fields
    }

    #[inline(always)]
    fn body_content(&self) -> BodyContent<'_> {
        self.body
    }

    #[inline(always)]
    fn upgrades(&self) -> bool {
        self.upgrade
    }
}

/// What a codec knows of a response body before sending it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyContent<'a> {
    /// Bytes that live as long as the program (no body is `Static(b"")`):
    /// the same address is the same bytes, which lets an encoder remember
    /// its output without reading the body again.
    Static(&'static [u8]),
    /// Bytes known up front, borrowed from the response.
    Bytes(&'a [u8]),
    /// Chunks produced while the response is sent: the length is not known
    /// up front.
    Stream,
    /// Bytes of a length known up front that are not in memory (a file's):
    /// the connection sends them after the head, from where they are.
    Sized(u64),
}

impl<'a> BodyContent<'a> {
    /// The bytes, unless the body is a stream.
    #[inline(always)]
    pub fn bytes(self) -> Option<&'a [u8]> {
        match self {
            BodyContent::Static(bytes) => Some(bytes),
            BodyContent::Bytes(bytes) => Some(bytes),
            BodyContent::Stream | BodyContent::Sized(_) => None,
        }
    }
}
