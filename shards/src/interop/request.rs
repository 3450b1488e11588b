//! shardd's borrowed [`Request`] as an owned `http::Request`.

use bytes::{Bytes, BytesMut};
use http::header::{HeaderMap, HeaderValue};
use http::{Method, Uri};

use super::fields::header_name;
use super::HttpConversionError;
use crate::http::{slice, HeaderSpan};
use crate::request::Request;

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
    pub(super) fn copied_len(&self) -> usize {
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
