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

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, Uri};

use crate::body::Body;
use crate::http::{slice, HeaderSpan};
use crate::request::Request;
use crate::response::{HeaderText, Response};

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
    /// A response that takes the connection over ([`Response::on_upgrade`])
    /// has no `http::Response` form: its handler would be lost.
    #[error("a response that upgrades the connection cannot be converted")]
    Upgrade,
}

impl Request<'_> {
    /// The request as an owned `http::Request`, with the buffered body as
    /// `Bytes`.
    ///
    /// Method, URI (the target as sent: origin-form `/path?query`,
    /// absolute-form `http://host/path` or `*`), version, every header
    /// field (a repeated name keeps all its values, in the order sent; a
    /// `HeaderMap` holds each name's values together) and the body. The head and the body are copied once, into one buffer the
    /// URI, the header values and the body share. The body is empty when
    /// the app reads it as a stream ([`Request::body_stream`]); the peer
    /// address and the router's path parameters are not part of an
    /// `http::Request`.
    ///
    /// Fails only for what the reader never lets through: a method or
    /// target the `http` crate refuses, as [`Request::new`] may be given.
    ///
    /// ```
    /// use shardd_shards::{PeerAddr, Request};
    ///
    /// let peer = PeerAddr::Unknown;
    /// let request = Request::new("POST", "/users?page=2", http::Version::HTTP_11, b"{}", &peer);
    /// let converted = request.to_http()?;
    /// assert_eq!(converted.method(), http::Method::POST);
    /// assert_eq!(converted.uri().query(), Some("page=2"));
    /// assert_eq!(converted.body().as_ref(), b"{}");
    /// # Ok::<(), shardd_shards::HttpConversionError>(())
    /// ```
    pub fn to_http(&self) -> Result<http::Request<Bytes>, HttpConversionError> {
        let mut buf = BytesMut::with_capacity(self.copied_len() + self.body().len());
        let (parts, body) = request_to_http(self, &mut buf, HeaderMap::new(), true)?;
        Ok(http::Request::from_parts(parts, body))
    }

    /// The request's head as `http::request::Parts`: [`to_http`](Self::to_http)
    /// without the body (which is not copied).
    pub fn to_http_parts(&self) -> Result<http::request::Parts, HttpConversionError> {
        let mut buf = BytesMut::with_capacity(self.copied_len());
        request_to_http(self, &mut buf, HeaderMap::new(), false).map(|(parts, _)| parts)
    }

    /// Bytes [`request_to_http`] copies besides the body.
    fn copied_len(&self) -> usize {
        let parts = self.parts();
        match offset_in(parts.head_bytes, parts.target) {
            Some(_) => parts.head_bytes.len(),
            None => parts.head_bytes.len() + parts.target.len(),
        }
    }
}

impl<'a> TryFrom<&Request<'a>> for http::Request<Bytes> {
    type Error = HttpConversionError;

    /// [`Request::to_http`].
    fn try_from(request: &Request<'a>) -> Result<Self, HttpConversionError> {
        request.to_http()
    }
}

/// `request` as `http` parts, and the body if `with_body` (else empty).
///
/// The head as received (request line and fields) is copied into `buf` in
/// one piece, then the body; the URI, each header value and the body are
/// slices of what is split off `buf`. `headers` is the (empty) map to
/// fill: the tower adapter passes one it kept, so that filling it does not
/// allocate.
pub(crate) fn request_to_http(
    request: &Request<'_>,
    buf: &mut BytesMut,
    mut headers: HeaderMap,
    with_body: bool,
) -> Result<(http::request::Parts, Bytes), HttpConversionError> {
    let parts = request.parts();
    let method = Method::from_bytes(parts.method.as_bytes())
        .map_err(|_| HttpConversionError::Method(parts.method.to_owned()))?;
    let head = parts.head_bytes;
    let base = buf.len();
    buf.extend_from_slice(head);
    // The reader's target is a slice of the head; one built by hand is copied too.
    let target_at = match offset_in(head, parts.target) {
        Some(at) => base + at,
        None => {
            let at = buf.len();
            buf.extend_from_slice(parts.target.as_bytes());
            at
        }
    };
    let body_at = buf.len();
    if with_body {
        buf.extend_from_slice(parts.body);
    }
    let bytes = buf.split().freeze();

    let uri = Uri::from_maybe_shared(bytes.slice(target_at..target_at + parts.target.len()))
        .map_err(|source| HttpConversionError::Uri {
            target: parts.target.to_owned(),
            source,
        })?;
    headers.reserve(parts.spans.len());
    for &HeaderSpan { name, value } in parts.spans {
        let name = header_name(slice(head, name)).ok_or_else(|| {
            HttpConversionError::HeaderName(String::from_utf8_lossy(slice(head, name)).into())
        })?;
        let (start, len) = (base + value.0 as usize, value.1 as usize);
        let value = bytes.slice(start..start + len);
        debug_assert!(HeaderValue::from_maybe_shared(value.clone()).is_ok());
        // SAFETY (an invariant of `HeaderValue`, not memory safety: `http`
        // checks bytes again wherever it relies on them, e.g. in `to_str`):
        // spans come from heads the reader (httparse) decoded, and it
        // refuses every byte `HeaderValue` refuses in a value, the control
        // bytes but HTAB, and DEL; hyper trusts httparse's values the same
        // way. Debug builds check again.
        let value = unsafe { HeaderValue::from_maybe_shared_unchecked(value) };
        headers
            .try_append(name, value)
            .map_err(|_| HttpConversionError::TooManyHeaders)?;
    }
    let body = if with_body {
        bytes.slice(body_at..)
    } else {
        Bytes::new()
    };

    let (mut converted, ()) = http::Request::new(()).into_parts();
    converted.method = method;
    converted.uri = uri;
    converted.version = request.version();
    // The default map allocates nothing ("This function will not
    // allocate", `HeaderMap::new`), so forgetting it leaks nothing and
    // saves dropping it (~60 instructions a request).
    std::mem::forget(std::mem::replace(&mut converted.headers, headers));
    Ok((converted, body))
}

/// Where `part` starts in `whole`, if it is a slice of it.
fn offset_in(whole: &[u8], part: &str) -> Option<usize> {
    let at = (part.as_ptr() as usize).checked_sub(whole.as_ptr() as usize)?;
    (at + part.len() <= whole.len()).then_some(at)
}

/// The field name: a common one as most clients and apps spell it is
/// matched as bytes (a few instructions); any other is parsed by the
/// `http` crate (`None` if it refuses it).
pub(crate) fn header_name(name: &[u8]) -> Option<HeaderName> {
    let known = match name {
        b"Host" | b"host" => header::HOST,
        b"Accept" | b"accept" => header::ACCEPT,
        b"Connection" | b"connection" => header::CONNECTION,
        b"User-Agent" | b"user-agent" => header::USER_AGENT,
        b"Accept-Encoding" | b"accept-encoding" => header::ACCEPT_ENCODING,
        b"Accept-Language" | b"accept-language" => header::ACCEPT_LANGUAGE,
        b"Content-Type" | b"content-type" => header::CONTENT_TYPE,
        b"Content-Length" | b"content-length" => header::CONTENT_LENGTH,
        b"Cookie" | b"cookie" => header::COOKIE,
        b"Referer" | b"referer" => header::REFERER,
        b"Origin" | b"origin" => header::ORIGIN,
        b"Authorization" | b"authorization" => header::AUTHORIZATION,
        b"Cache-Control" | b"cache-control" => header::CACHE_CONTROL,
        b"If-None-Match" | b"if-none-match" => header::IF_NONE_MATCH,
        b"Transfer-Encoding" | b"transfer-encoding" => header::TRANSFER_ENCODING,
        b"Server" | b"server" => header::SERVER,
        b"Date" | b"date" => header::DATE,
        b"Location" | b"location" => header::LOCATION,
        b"Set-Cookie" | b"set-cookie" => header::SET_COOKIE,
        b"Vary" | b"vary" => header::VARY,
        b"ETag" | b"etag" => header::ETAG,
        other => return HeaderName::from_bytes(other).ok(),
    };
    Some(known)
}

impl Response {
    /// The response as an `http::Response` with the same status, header
    /// fields and body (a repeated name keeps all its values, in the order
    /// added; a `HeaderMap` holds each name's values together).
    ///
    /// [`close_connection`](Self::close_connection) becomes a
    /// `Connection: close` field (unless one is there already), as
    /// [`from_http`](Self::from_http) reads it back. Fails for a header
    /// name or value the `http` crate refuses (owned text with a CR or LF,
    /// say: shardd would answer such a response with a 500) and for a
    /// response that takes the connection over ([`on_upgrade`](Self::on_upgrade)).
    ///
    /// ```
    /// use shardd_shards::Response;
    ///
    /// let response = Response::text("hello").with_header("X-Id", "7").close_connection();
    /// let converted = response.into_http()?;
    /// assert_eq!(converted.status(), http::StatusCode::OK);
    /// assert_eq!(converted.headers()["x-id"], "7");
    /// assert_eq!(converted.headers()["connection"], "close");
    /// assert_eq!(converted.body().as_bytes(), Some(&b"hello"[..]));
    /// # Ok::<(), shardd_shards::HttpConversionError>(())
    /// ```
    pub fn into_http(mut self) -> Result<http::Response<Body>, HttpConversionError> {
        if self.upgrades() {
            return Err(HttpConversionError::Upgrade);
        }
        let body = self.take_body();
        let close = self.closes_connection();
        let (status, fields) = self.into_head();
        let mut headers = HeaderMap::with_capacity(fields.len() + usize::from(close));
        let mut has_close = false;
        for (name, value) in fields {
            let name_bytes = name.as_bytes();
            let Some(field) = header_name(name_bytes) else {
                return Err(HttpConversionError::HeaderName(name.into_owned()));
            };
            let value = match value {
                HeaderText::Borrowed(text) => {
                    HeaderValue::from_maybe_shared(Bytes::from_static(text.as_bytes()))
                }
                HeaderText::Owned(text) => HeaderValue::from_maybe_shared(Bytes::from(text)),
            }
            .map_err(|_| HttpConversionError::HeaderValue {
                name: name.into_owned(),
            })?;
            has_close |= field == header::CONNECTION && lists_close(&value);
            headers
                .try_append(field, value)
                .map_err(|_| HttpConversionError::TooManyHeaders)?;
        }
        if close && !has_close {
            headers
                .try_append(header::CONNECTION, HeaderValue::from_static("close"))
                .map_err(|_| HttpConversionError::TooManyHeaders)?;
        }
        let mut converted = http::Response::new(body);
        *converted.status_mut() = status;
        *converted.headers_mut() = headers;
        Ok(converted)
    }

    /// A response from an `http::Response` whose body is anything shardd's
    /// [`Body`] is made from: `Body` itself, `String`, `Vec<u8>`, `Bytes`,
    /// `&'static str`, `&'static [u8]`. (With feature `tower`, map any
    /// `http_body::Body` with `Body::from_http_body` first.)
    ///
    /// Status, header fields in the map's order (a repeated name keeps all
    /// its values) and body.
    /// Framing is the server's job, so `Transfer-Encoding` is dropped, and
    /// `Content-Length` too unless the body is empty (a `HEAD` or `304`
    /// answer may state the length of the body it does not carry); a
    /// `Connection` field that lists `close` becomes
    /// [`close_connection`](Self::close_connection), and `Connection`
    /// fields are not copied (the server writes its own). Fails for a
    /// header value that is not UTF-8 (the `http` crate allows obsolete
    /// Latin-1 bytes; shardd's header text is `str`).
    ///
    /// ```
    /// use shardd_shards::Response;
    ///
    /// let answer = http::Response::builder()
    ///     .status(201)
    ///     .header("content-type", "application/json")
    ///     .body(String::from(r#"{"id":7}"#))
    ///     .unwrap();
    /// let response = Response::from_http(answer)?;
    /// assert_eq!(response.status(), http::StatusCode::CREATED);
    /// assert_eq!(response.header("Content-Type"), Some("application/json"));
    /// assert_eq!(response.body().as_bytes(), Some(&br#"{"id":7}"#[..]));
    /// # Ok::<(), shardd_shards::HttpConversionError>(())
    /// ```
    pub fn from_http<B: Into<Body>>(
        response: http::Response<B>,
    ) -> Result<Response, HttpConversionError> {
        let (parts, body) = response.into_parts();
        response_from_http(&parts, body.into())
    }
}

impl TryFrom<Response> for http::Response<Body> {
    type Error = HttpConversionError;

    /// [`Response::into_http`].
    fn try_from(response: Response) -> Result<Self, HttpConversionError> {
        response.into_http()
    }
}

impl<B: Into<Body>> TryFrom<http::Response<B>> for Response {
    type Error = HttpConversionError;

    /// [`Response::from_http`].
    fn try_from(response: http::Response<B>) -> Result<Self, HttpConversionError> {
        Response::from_http(response)
    }
}

/// A shardd response of `parts` and `body` (see [`Response::from_http`]);
/// `parts.headers` is only read, so a caller may keep the map.
pub(crate) fn response_from_http(
    parts: &http::response::Parts,
    body: Body,
) -> Result<Response, HttpConversionError> {
    let bodyless = body.as_bytes().is_some_and(<[u8]>::is_empty);
    let mut converted = Response::new(parts.status);
    for (name, value) in &parts.headers {
        if *name == header::CONTENT_LENGTH && !bodyless || *name == header::TRANSFER_ENCODING {
            continue;
        }
        if *name == header::CONNECTION {
            if lists_close(value) {
                converted.set_close();
            }
            continue;
        }
        let Some(value) = value_text(value) else {
            return Err(HttpConversionError::NotUtf8 {
                name: name.as_str().to_owned(),
            });
        };
        converted.push_header(name_text(name), value);
    }
    converted.set_body(body);
    Ok(converted)
}

/// Whether a `Connection` value lists `close`.
pub(crate) fn lists_close(value: &HeaderValue) -> bool {
    value
        .as_bytes()
        .split(|&b| b == b',')
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// Header names apps commonly send, so that theirs cost no allocation.
static KNOWN_NAMES: [HeaderName; 28] = [
    header::CONTENT_TYPE,
    header::SERVER,
    header::DATE,
    header::CACHE_CONTROL,
    header::CONTENT_ENCODING,
    header::VARY,
    header::LOCATION,
    header::SET_COOKIE,
    header::ETAG,
    header::LAST_MODIFIED,
    header::ALLOW,
    header::EXPIRES,
    header::CONTENT_DISPOSITION,
    header::CONTENT_LANGUAGE,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::AGE,
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
    header::STRICT_TRANSPORT_SECURITY,
    header::X_CONTENT_TYPE_OPTIONS,
    header::X_FRAME_OPTIONS,
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_ALLOW_METHODS,
    header::ACCESS_CONTROL_ALLOW_HEADERS,
    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::ACCESS_CONTROL_MAX_AGE,
];

/// Header values apps commonly send (axum's and tower-http's defaults).
static KNOWN_VALUES: [&str; 12] = [
    "text/plain; charset=utf-8",
    "application/json",
    "text/html; charset=utf-8",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "gzip",
    "br",
    "zstd",
    "deflate",
    "accept-encoding",
    "no-cache",
];

/// The name as header text: static for a common name, else owned.
fn name_text(name: &HeaderName) -> HeaderText {
    match KNOWN_NAMES.iter().find(|known| *known == name) {
        Some(known) => HeaderText::Borrowed(known.as_str()),
        None => HeaderText::Owned(name.as_str().to_owned()),
    }
}

/// The value as header text, `None` if it is not UTF-8.
fn value_text(value: &HeaderValue) -> Option<HeaderText> {
    let bytes = value.as_bytes();
    if let Some(known) = KNOWN_VALUES.iter().find(|known| known.as_bytes() == bytes) {
        return Some(HeaderText::Borrowed(known));
    }
    std::str::from_utf8(bytes)
        .ok()
        .map(|text| HeaderText::Owned(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_in_any_case() {
        assert_eq!(header_name(b"Host"), Some(header::HOST));
        assert_eq!(header_name(b"cOnNeCtIoN"), Some(header::CONNECTION));
        assert_eq!(header_name(b"Accept-Charset"), Some(header::ACCEPT_CHARSET));
        assert_eq!(
            header_name(b"X-Request-Id"),
            Some(HeaderName::from_static("x-request-id"))
        );
        assert_eq!(header_name(b"bad name"), None);
    }

    #[test]
    fn common_names_and_values_are_static() {
        assert!(matches!(
            name_text(&header::CONTENT_TYPE),
            HeaderText::Borrowed("content-type")
        ));
        assert!(matches!(
            name_text(&HeaderName::from_static("x-custom")),
            HeaderText::Owned(ref name) if name == "x-custom"
        ));
        assert!(matches!(
            value_text(&HeaderValue::from_static("application/json")),
            Some(HeaderText::Borrowed("application/json"))
        ));
        let utf8 = HeaderValue::from_bytes("café".as_bytes()).unwrap();
        assert_eq!(value_text(&utf8).as_deref(), Some("café"));
        let latin1 = HeaderValue::from_bytes(b"caf\xe9").unwrap();
        assert_eq!(value_text(&latin1), None);
    }

    #[test]
    fn connection_close_is_found_in_a_list() {
        assert!(lists_close(&HeaderValue::from_static("keep-alive, Close")));
        assert!(!lists_close(&HeaderValue::from_static("keep-alive")));
    }

    #[test]
    fn a_target_outside_the_head_is_copied_too() {
        let peer = crate::PeerAddr::Unknown;
        let request = Request::new("GET", "/x?y", http::Version::HTTP_10, b"", &peer);
        assert_eq!(request.copied_len(), 4);
        let parts = request.to_http_parts().unwrap();
        assert_eq!(parts.uri, "/x?y");
        assert_eq!(parts.version, http::Version::HTTP_10);
    }

    // Also runs under Miri (scripts/miri): values are handed to `http`
    // without its byte check.
    #[test]
    fn decoded_header_values_arrive_in_the_http_request() {
        use crate::http::{Decoded, ReadBuffers, RequestReader};
        let (mut reader, mut buffers) = (RequestReader::default(), ReadBuffers::default());
        reader.feed(
            &mut buffers,
            b"POST /u HTTP/1.1\r\nHost: a\r\nX-Tab: x\ty\r\nContent-Length: 2\r\n\r\nhi",
        );
        let Decoded::Request(parts) = reader.decode(&mut buffers, &crate::Limits::default()) else {
            panic!("the head did not decode");
        };
        let peer = crate::PeerAddr::Unknown;
        let request = Request::from_parts(parts, &peer).to_http().unwrap();
        assert_eq!(request.headers()["host"], "a");
        assert_eq!(request.headers()["x-tab"], "x\ty");
        assert_eq!(request.headers()["content-length"], "2");
        assert_eq!(request.body().as_ref(), b"hi");
    }
}
