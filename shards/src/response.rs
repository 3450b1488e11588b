//! [`Response`]: what an app answers, built without allocating when its
//! header text and body are static.

use std::borrow::Cow;

use http::StatusCode;
use smallvec::SmallVec;

/// A response body.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Body {
    #[default]
    /// No body.
    Empty,
    /// Bytes that live as long as the program.
    Static(&'static [u8]),
    /// Bytes the response owns.
    Owned(Vec<u8>),
}

impl Body {
    /// The body's bytes.
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
    status: StatusCode,
    headers: SmallVec<[(HeaderText, HeaderText); 3]>,
    body: Body,
}

impl Response {
    /// A response with this status, no header fields and no body.
    pub fn new(status: StatusCode) -> Self {
        Response {
            status,
            headers: SmallVec::new(),
            body: Body::Empty,
        }
    }

    /// `200 OK`, `text/plain`.
    pub fn text(body: impl Into<Body>) -> Self {
        Response::new(StatusCode::OK)
            .with_header("Content-Type", "text/plain")
            .with_body(body)
    }

    /// `200 OK`, `application/json`, with an already serialized body.
    pub fn json(body: impl Into<Body>) -> Self {
        Response::new(StatusCode::OK)
            .with_header("Content-Type", "application/json")
            .with_body(body)
    }

    /// `404 Not Found` with a short text body.
    pub fn not_found() -> Self {
        Response::new(StatusCode::NOT_FOUND)
            .with_header("Content-Type", "text/plain")
            .with_body("not found\n")
    }

    /// Add a header field (`&'static str` text costs no allocation; owned text is checked before it is sent).
    pub fn with_header(
        mut self,
        name: impl Into<HeaderText>,
        value: impl Into<HeaderText>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the body.
    pub fn with_body(mut self, body: impl Into<Body>) -> Self {
        self.body = body.into();
        self
    }

    /// The status code.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// Header fields in the order added.
    pub fn headers(&self) -> impl Iterator<Item = (&str, &str)> {
        self.headers
            .iter()
            .map(|(name, value)| (name.as_ref(), value.as_ref()))
    }

    /// Header fields as stored, to tell static text from owned text.
    pub fn header_fields(&self) -> impl Iterator<Item = (&HeaderText, &HeaderText)> {
        self.headers.iter().map(|(name, value)| (name, value))
    }

    /// The first header with this name (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers()
            .find(|(field, _)| field.eq_ignore_ascii_case(name))
            .map(|(_, value)| value)
    }

    /// The body.
    pub fn body(&self) -> &Body {
        &self.body
    }
}
