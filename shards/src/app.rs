//! The application API: an async handler over a borrowed [`Request`] that
//! returns an owned [`Response`].
//!
//! A server builds one app per shard through a factory
//! (`Fn(&ShardContext) -> impl App`), so an app may hold `!Send` shard-local
//! state. Requests borrow the connection's read buffer: nothing is copied or
//! allocated to hand one to the app.

use std::borrow::Cow;
use std::future::Future;

use smallvec::SmallVec;

use crate::http::{slice, HeaderSpan, Version};
use crate::listener::PeerAddr;

/// An HTTP application served on every shard.
pub trait App: 'static {
    /// Answer one request. The future runs on the shard's thread and need not be `Send`.
    fn call(&self, request: &Request<'_>) -> impl Future<Output = Response>;
}

/// Wrap a synchronous function as an [`App`].
///
/// ```
/// use shardd_shards::{app_fn, Response};
/// let app = app_fn(|req| match req.path() {
///     "/" => Response::text("hi"),
///     _ => Response::not_found(),
/// });
/// # let _ = app;
/// ```
pub fn app_fn<F>(handler: F) -> FnApp<F>
where
    F: Fn(&Request<'_>) -> Response + 'static,
{
    FnApp(handler)
}

/// An [`App`] made from a synchronous function; see [`app_fn`].
pub struct FnApp<F>(F);

impl<F> App for FnApp<F>
where
    F: Fn(&Request<'_>) -> Response + 'static,
{
    fn call(&self, request: &Request<'_>) -> impl Future<Output = Response> {
        std::future::ready((self.0)(request))
    }
}

/// One request, borrowed from the connection's buffer.
#[derive(Debug)]
pub struct Request<'a> {
    pub(crate) head: &'a [u8],
    pub(crate) method: &'a str,
    pub(crate) target: &'a str,
    pub(crate) version: Version,
    pub(crate) headers: &'a [HeaderSpan],
    pub(crate) body: &'a [u8],
    pub(crate) peer: &'a PeerAddr,
}

impl<'a> Request<'a> {
    /// Build a request by hand (tests, adapters).
    pub fn new(
        method: &'a str,
        target: &'a str,
        version: Version,
        body: &'a [u8],
        peer: &'a PeerAddr,
    ) -> Self {
        Request {
            head: &[],
            method,
            target,
            version,
            headers: &[],
            body,
            peer,
        }
    }

    pub fn method(&self) -> &'a str {
        self.method
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

    pub fn version(&self) -> Version {
        self.version
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
        let path = |target| Request::new("GET", target, Version::Http11, b"", &peer).path();
        assert_eq!(path("/a/b?x=1"), "/a/b");
        assert_eq!(path("http://example.com/plaintext?x"), "/plaintext");
        assert_eq!(path("HTTP://example.com:8080"), "/");
        assert_eq!(path("*"), "*");
        let query = Request::new("GET", "/a?x=1&y", Version::Http11, b"", &peer).query();
        assert_eq!(query, Some("x=1&y"));
    }
}

/// A response body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Body {
    #[default]
    Empty,
    Static(&'static [u8]),
    Owned(Vec<u8>),
}

impl Body {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Empty => &[],
            Body::Static(bytes) => bytes,
            Body::Owned(bytes) => bytes,
        }
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body::Static(text.as_bytes())
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Body::Static(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::Owned(text.into_bytes())
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::Owned(bytes)
    }
}

/// A header name or value: usually a `&'static str`, so building a response allocates nothing.
pub type HeaderText = Cow<'static, str>;

/// A response: status, header fields and body. The server adds `Date`,
/// `Server`, `Content-Length` and, when it closes, `Connection: close`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Response {
    status: u16,
    headers: SmallVec<[(HeaderText, HeaderText); 3]>,
    body: Body,
}

impl Response {
    pub fn new(status: u16) -> Self {
        Response {
            status,
            headers: SmallVec::new(),
            body: Body::Empty,
        }
    }

    /// `200 OK`, `text/plain`.
    pub fn text(body: impl Into<Body>) -> Self {
        Response::new(200)
            .with_header("Content-Type", "text/plain")
            .with_body(body)
    }

    /// `200 OK`, `application/json`, with an already serialized body.
    pub fn json(body: impl Into<Body>) -> Self {
        Response::new(200)
            .with_header("Content-Type", "application/json")
            .with_body(body)
    }

    /// `404 Not Found` with a short text body.
    pub fn not_found() -> Self {
        Response::new(404)
            .with_header("Content-Type", "text/plain")
            .with_body("not found\n")
    }

    pub fn with_header(
        mut self,
        name: impl Into<HeaderText>,
        value: impl Into<HeaderText>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    pub fn status(&self) -> u16 {
        self.status
    }

    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_ref(), value.as_ref()))
    }

    /// Header fields as stored, to tell static text from owned text.
    pub fn header_fields(&self) -> impl Iterator<Item = (&HeaderText, &HeaderText)> {
        self.headers.iter().map(|(name, value)| (name, value))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    pub fn body(&self) -> &Body {
        &self.body
    }
}
