//! [`Response`]: what an app answers, built without allocating when its
//! header text and body are static.

use std::borrow::Cow;
use std::fmt;
use std::future::Future;

use http::StatusCode;
use smallvec::SmallVec;

use crate::body::Body;
pub use crate::message::HeaderText;
use crate::message::{BodyContent, ResponseView};
use crate::upgrade::{OnUpgrade, Upgraded};

/// A response: status, header fields and body. The server adds `Date`,
/// `Server`, `Content-Length` (or chunked coding for a stream) and, when it
/// closes, `Connection: close`.
pub struct Response {
    status: StatusCode,
    headers: SmallVec<[(HeaderText, HeaderText); 2]>,
    body: Body,
    /// Close the connection after this response.
    close: bool,
    /// For a `101`: what takes the connection over.
    on_upgrade: Option<OnUpgrade>,
}

impl fmt::Debug for Response {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &self.body)
            .field("close", &self.close)
            .field("upgrade", &self.on_upgrade.is_some())
            .finish()
    }
}

impl Response {
    /// A response with this status, no header fields and no body.
    #[inline]
    pub fn new(status: StatusCode) -> Self {
        Response {
            status,
            headers: SmallVec::new(),
            body: Body::Empty,
            close: false,
            on_upgrade: None,
        }
    }

    /// `200 OK`, `text/plain`.
    #[inline]
    pub fn text(body: impl Into<Body>) -> Self {
        Response::with_type("text/plain", body.into())
    }

    /// `200 OK`, `application/json`, with an already serialized body.
    #[inline]
    pub fn json(body: impl Into<Body>) -> Self {
        Response::with_type("application/json", body.into())
    }

    /// `200 OK` with this `Content-Type`, built in one piece: each step of
    /// a builder chain moves the response, and a move of a `Response` is a
    /// `memcpy` call.
    #[inline(always)]
    fn with_type(content_type: &'static str, body: Body) -> Self {
        let mut headers = SmallVec::new();
        headers.push((Cow::Borrowed("Content-Type"), Cow::Borrowed(content_type)));
        Response {
            status: StatusCode::OK,
            headers,
            body,
            close: false,
            on_upgrade: None,
        }
    }

    /// `404 Not Found` with a short text body.
    #[inline]
    pub fn not_found() -> Self {
        Response::new(StatusCode::NOT_FOUND)
            .with_header("Content-Type", "text/plain")
            .with_body("not found\n")
    }

    /// Add a header field (`&'static str` text costs no allocation; owned text is checked before it is sent).
    #[inline]
    pub fn with_header(
        mut self,
        name: impl Into<HeaderText>,
        value: impl Into<HeaderText>,
    ) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Set the body.
    #[inline]
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

    /// Take the body out, leaving it empty (the connection does this to
    /// send a large or streamed body without copying it).
    pub(crate) fn take_body(&mut self) -> Body {
        std::mem::take(&mut self.body)
    }

    /// Close the connection once this response is sent (with `Connection: close`).
    pub fn close_connection(mut self) -> Self {
        self.close = true;
        self
    }

    /// Whether the connection closes after this response.
    pub fn closes_connection(&self) -> bool {
        self.close
    }

    /// Take the connection over once this `101 Switching Protocols` is
    /// sent: `handler` gets the raw stream (see [`Upgraded`]) and runs as
    /// the connection's task. The status must be `101` and the request must
    /// have asked to upgrade, or the client gets a 500 instead. The
    /// response's `Connection` and `Upgrade` fields are sent as given.
    pub fn on_upgrade<F, Fut>(mut self, handler: F) -> Self
    where
        F: FnOnce(Upgraded) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.on_upgrade = Some(Box::new(move |io| Box::pin(handler(io))));
        self
    }

    /// Whether this response takes the connection over.
    pub fn upgrades(&self) -> bool {
        self.on_upgrade.is_some()
    }

    /// The upgrade handler, if any.
    pub(crate) fn take_upgrade(&mut self) -> Option<OnUpgrade> {
        self.on_upgrade.take()
    }

    /// Add a header field in place (conversions build a response without
    /// moving it through the by-value builder once per field).
    #[inline]
    pub(crate) fn push_header(&mut self, name: HeaderText, value: HeaderText) {
        self.headers.push((name, value));
    }

    /// The header fields, to change in place (decorators).
    #[inline]
    pub(crate) fn headers_mut(&mut self) -> &mut SmallVec<[(HeaderText, HeaderText); 2]> {
        &mut self.headers
    }

    /// Set the body in place.
    #[inline]
    pub(crate) fn set_body(&mut self, body: Body) {
        self.body = body;
    }

    /// Close the connection once this response is sent, in place.
    #[inline]
    pub(crate) fn set_close(&mut self) {
        self.close = true;
    }

    /// The status and the header fields, taking them out.
    pub(crate) fn into_head(self) -> (StatusCode, SmallVec<[(HeaderText, HeaderText); 2]>) {
        let Response {
            status, headers, ..
        } = self;
        (status, headers)
    }
}

/// What a codec reads of a response, in place: asking copies nothing.
impl ResponseView for Response {
    #[inline(always)]
    fn status(&self) -> StatusCode {
        self.status
    }

    #[inline(always)]
    fn fields(&self) -> &[(HeaderText, HeaderText)] {
        &self.headers
    }

    #[inline(always)]
    fn body_content(&self) -> BodyContent<'_> {
        self.body.content()
    }

    #[inline(always)]
    fn upgrades(&self) -> bool {
        self.on_upgrade.is_some()
    }
}
