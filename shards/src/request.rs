//! [`Request`]: one request as the app sees it, borrowed from the
//! connection's read buffer (nothing copied, nothing allocated).

use ::http::Method;

use crate::http::{slice, HeaderSpan, RequestParts, Version};
use crate::listener::PeerAddr;

/// One request, borrowed from the connection's buffer.
#[derive(Debug)]
pub struct Request<'a> {
    pub(crate) head: &'a [u8],
    pub(crate) method: Method,
    pub(crate) target: &'a str,
    pub(crate) version: Version,
    pub(crate) headers: &'a [HeaderSpan],
    pub(crate) body: &'a [u8],
    pub(crate) peer: &'a PeerAddr,
}

impl<'a> Request<'a> {
    /// The request the reader decoded, as the app sees it.
    pub(crate) fn from_parts(parts: &RequestParts<'a>, peer: &'a PeerAddr) -> Self {
        Request {
            head: parts.head_bytes,
            method: method_of(slice(parts.head_bytes, parts.head.method)),
            target: validated_str(slice(parts.head_bytes, parts.head.target)),
            version: parts.head.version,
            headers: parts.spans,
            body: parts.body,
            peer,
        }
    }

    /// Build a request by hand (tests, adapters).
    pub fn new(
        method: Method,
        target: &'a str,
        version: ::http::Version,
        body: &'a [u8],
        peer: &'a PeerAddr,
    ) -> Self {
        Request {
            head: &[],
            method,
            target,
            version: if version == ::http::Version::HTTP_10 {
                Version::Http10
            } else {
                Version::Http11
            },
            headers: &[],
            body,
            peer,
        }
    }

    /// The method (`GET`, `POST`, ...), as sent.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The request target as sent: path and query.
    pub fn target(&self) -> &'a str {
        self.target
    }

    /// The target up to `?`.
    ///
    /// Without the scheme and authority of an absolute-form target
    /// (`GET http://host/path`, which RFC 9112 §3.2.2 says a server must accept).
    pub fn path(&self) -> &'a str {
        let path = match self.query_start() {
            Some(at) => &self.target[..at],
            None => self.target,
        };
        if path.starts_with('/') {
            return path;
        }
        strip_scheme_and_authority(path)
    }

    /// The text after `?`, if any.
    pub fn query(&self) -> Option<&'a str> {
        self.query_start().map(|at| &self.target[at + 1..])
    }

    /// A plain loop: targets are short, and a general substring search costs more to set up.
    fn query_start(&self) -> Option<usize> {
        self.target.bytes().position(|b| b == b'?')
    }

    /// The HTTP version.
    pub fn version(&self) -> ::http::Version {
        match self.version {
            Version::Http10 => ::http::Version::HTTP_10,
            Version::Http11 => ::http::Version::HTTP_11,
        }
    }

    /// Header fields in the order sent.
    pub fn headers(&self) -> impl Iterator<Item = (&'a str, &'a [u8])> + '_ {
        let head = self.head;
        self.headers.iter().map(move |span| {
            let name = std::str::from_utf8(slice(head, span.name)).unwrap_or_default();
            (name, slice(head, span.value))
        })
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        self.headers()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The body, de-chunked if it was sent chunked.
    pub fn body(&self) -> &'a [u8] {
        self.body
    }

    /// Who sent it, as the listener reported.
    pub fn peer(&self) -> &'a PeerAddr {
        self.peer
    }
}

/// The method as the `http` crate's type: the standard ones are matched
/// without allocating.
fn method_of(token: &[u8]) -> Method {
    // httparse accepted the token, and `http` accepts the same characters.
    Method::from_bytes(token).unwrap_or_default()
}

/// The target as text. httparse has already validated exactly
/// these bytes (it hands them out as `&str`), so checking UTF-8 again on
/// every request would be wasted work.
fn validated_str(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: the bytes are the method and target httparse returned as `&str`.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// `http://host:port/path` → `/path`; `http://host` → `/`; anything else unchanged.
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
            |target| Request::new(Method::GET, target, ::http::Version::HTTP_11, b"", &peer).path();
        assert_eq!(path("/a/b?x=1"), "/a/b");
        assert_eq!(path("http://example.com/plaintext?x"), "/plaintext");
        assert_eq!(path("HTTP://example.com:8080"), "/");
        assert_eq!(path("*"), "*");
        let query = Request::new(
            Method::GET,
            "/a?x=1&y",
            ::http::Version::HTTP_11,
            b"",
            &peer,
        )
        .query();
        assert_eq!(query, Some("x=1&y"));
    }
}
