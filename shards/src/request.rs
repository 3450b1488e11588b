//! [`Request`]: one request as the app sees it, borrowed from the
//! connection's read buffer (nothing copied, nothing allocated).

use std::sync::Arc;

use ::http::Method;

use crate::http::{path_len, slice, HeaderSpan, RequestParts, Version};
use crate::listener::PeerAddr;
use crate::request_body::{Pipe, RequestBody};

/// One request, borrowed from the connection's buffer.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    parts: RequestParts<'a>,
    peer: &'a PeerAddr,
    /// The body as it arrives, when the app asked for it as a stream.
    upload: Option<&'a Arc<Pipe>>,
    /// Path parameters the router matched, as sent (not percent-decoded).
    params: &'a [(&'a str, &'a str)],
}

impl<'a> Request<'a> {
    /// The request the reader decoded, as the app sees it (for code that
    /// drives [`RequestReader`](crate::http::RequestReader) itself: the
    /// connection loop, benchmarks, adapters).
    #[inline]
    pub fn from_parts(parts: RequestParts<'a>, peer: &'a PeerAddr) -> Self {
        Request {
            parts,
            peer,
            upload: None,
            params: &[],
        }
    }

    /// A request whose body streams through `upload`.
    pub(crate) fn with_upload(
        parts: RequestParts<'a>,
        peer: &'a PeerAddr,
        upload: &'a Arc<Pipe>,
    ) -> Self {
        Request {
            parts,
            peer,
            upload: Some(upload),
            params: &[],
        }
    }

    /// The same request with the path parameters a route matched.
    #[cfg(feature = "router")]
    #[inline]
    pub(crate) fn with_params(self, params: &'a [(&'a str, &'a str)]) -> Self {
        Request { params, ..self }
    }

    /// Build a request by hand (tests, adapters).
    pub fn new(
        method: &'a str,
        target: &'a str,
        version: ::http::Version,
        body: &'a [u8],
        peer: &'a PeerAddr,
    ) -> Self {
        let keep_alive = version != ::http::Version::HTTP_10;
        Request {
            parts: RequestParts {
                method,
                target,
                path_len: path_len(target.as_bytes()),
                version: if keep_alive {
                    Version::Http11
                } else {
                    Version::Http10
                },
                keep_alive,
                head_bytes: &[],
                spans: &[],
                body,
            },
            peer,
            upload: None,
            params: &[],
        }
    }

    /// What the reader decoded.
    pub(crate) fn parts(&self) -> &RequestParts<'a> {
        &self.parts
    }

    /// The method (`GET`, `POST`, ...). Standard methods are matched without allocating; an
    /// extension method longer than 15 bytes allocates.
    #[inline]
    pub fn method(&self) -> Method {
        // httparse accepted the token, and `http` accepts the same characters.
        Method::from_bytes(self.parts.method.as_bytes()).unwrap_or_default()
    }

    /// The method token as sent (`"GET"`): cheaper to compare than
    /// [`method`](Self::method), which builds an `http::Method`.
    #[inline]
    pub fn method_str(&self) -> &'a str {
        self.parts.method
    }

    /// Whether the method is `HEAD` (answered without a body).
    #[inline]
    pub fn is_head(&self) -> bool {
        self.parts.method == "HEAD"
    }

    /// The request target as sent: path and query.
    #[inline]
    pub fn target(&self) -> &'a str {
        self.parts.target
    }

    /// The target up to `?`.
    ///
    /// Without the scheme and authority of an absolute-form target
    /// (`GET http://host/path`, which RFC 9112 §3.2.2 says a server must accept).
    #[inline]
    pub fn path(&self) -> &'a str {
        let path = self
            .parts
            .target
            .get(..self.parts.path_len)
            .unwrap_or_default();
        if path.starts_with('/') {
            return path;
        }
        strip_scheme_and_authority(path)
    }

    /// The text after `?`, if any.
    #[inline]
    pub fn query(&self) -> Option<&'a str> {
        self.parts.target.get(self.parts.path_len + 1..)
    }

    /// The HTTP version.
    pub fn version(&self) -> ::http::Version {
        match self.parts.version {
            Version::Http10 => ::http::Version::HTTP_10,
            Version::Http11 => ::http::Version::HTTP_11,
            Version::Http2 => ::http::Version::HTTP_2,
        }
    }

    /// Header fields in the order sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        let head = self.parts.head_bytes;
        self.parts.spans.iter().map(move |span| {
            let name = slice(head, span.name);
            debug_assert!(std::str::from_utf8(name).is_ok());
            // SAFETY: spans only come from heads httparse decoded, and it
            // accepts nothing but token characters (ASCII) in a field name;
            // checking UTF-8 again on every call cost ~90 instructions a field.
            let name = unsafe { std::str::from_utf8_unchecked(name) };
            (name, slice(head, span.value))
        })
    }

    /// Each header field's name and where it lies in the head.
    pub(crate) fn header_spans(&self) -> impl Iterator<Item = (&'a str, &'a HeaderSpan)> + '_ {
        self.headers()
            .zip(self.parts.spans)
            .map(|((name, _), span)| (name, span))
    }

    /// The same request with another body and only the header fields in
    /// `spans` (which point into the same head): what an app sees once a
    /// decorator has decoded the body.
    pub(crate) fn with_decoded_body<'b>(
        &self,
        body: &'b [u8],
        spans: &'b [HeaderSpan],
    ) -> Request<'b>
    where
        'a: 'b,
    {
        Request {
            parts: RequestParts {
                body,
                spans,
                ..self.parts
            },
            ..*self
        }
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The body as it arrives, if the app asked for it as a stream
    /// ([`App::streams_body`](crate::App::streams_body)); [`body`](Self::body)
    /// is then empty.
    pub fn body_stream(&self) -> Option<RequestBody> {
        self.upload.map(|pipe| RequestBody { pipe: pipe.clone() })
    }

    /// The body, de-chunked if it was sent chunked (empty when it streams).
    pub fn body(&self) -> &'a [u8] {
        self.parts.body
    }

    /// Who sent it, as the listener reported.
    pub fn peer(&self) -> &'a PeerAddr {
        self.peer
    }

    /// The path parameters the [`Router`](crate::router::Router) matched
    /// (`("id", "42")` for `/users/{id}` and `/users/42`), in the order of
    /// the pattern and as sent, not percent-decoded; empty outside a router.
    /// [`Request::param`] decodes and parses one.
    pub fn params(&self) -> &'a [(&'a str, &'a str)] {
        self.params
    }
}

/// `http://host:port/path` → `/path`; `http://host` → `/`; anything else unchanged.
#[cold]
#[inline(never)]
fn strip_scheme_and_authority(target: &str) -> &str {
    let Some(scheme_end) = target.find("://") else {
        return target;
    };
    let scheme = &target[..scheme_end];
    if !scheme.eq_ignore_ascii_case("http") && !scheme.eq_ignore_ascii_case("https") {
        return target;
    }
    let after = &target[scheme_end + 3..];
    after.find('/').map_or("/", |slash| &after[slash..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_and_query_of_every_target_form() {
        let peer = PeerAddr::Unknown;
        let path =
            |target| Request::new("GET", target, ::http::Version::HTTP_11, b"", &peer).path();
        assert_eq!(path("/a/b?x=1"), "/a/b");
        assert_eq!(path("http://example.com/plaintext?x"), "/plaintext");
        assert_eq!(path("HTTP://example.com:8080"), "/");
        assert_eq!(path("*"), "*");
        let query = Request::new("GET", "/a?x=1&y", ::http::Version::HTTP_11, b"", &peer).query();
        assert_eq!(query, Some("x=1&y"));
    }

    // Also runs under Miri (scripts/miri): `headers` skips the UTF-8 check.
    #[test]
    fn headers_come_in_the_order_sent_and_are_found_in_any_case() {
        use crate::http::{Decoded, ReadBuffers, RequestReader};
        let (mut reader, mut buffers) = (RequestReader::default(), ReadBuffers::default());
        reader.feed(
            &mut buffers,
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Trace: 1, 2\r\naccept: */*\r\n\r\n",
        );
        let Decoded::Request(parts) = reader.decode(&mut buffers, &crate::Limits::default()) else {
            panic!("the head did not decode");
        };
        let peer = PeerAddr::Unknown;
        let request = Request::from_parts(parts, &peer);
        let headers: Vec<_> = request.headers().collect();
        assert_eq!(
            headers,
            [
                ("Host", &b"a"[..]),
                ("X-Trace", b"1, 2"),
                ("accept", b"*/*")
            ]
        );
        assert_eq!(request.header("x-trace"), Some(&b"1, 2"[..]));
    }
}
