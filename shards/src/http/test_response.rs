//! A response built the way an app builds one, for the codec's own tests:
//! they describe what to encode without the app API, which the codec does
//! not depend on.

use std::borrow::Cow;

use http::StatusCode;

use crate::message::{BodyContent, HeaderText, ResponseParts};

/// Status, fields and body of a response to encode.
#[derive(Debug)]
pub(super) struct TestResponse {
    status: StatusCode,
    fields: Vec<(HeaderText, HeaderText)>,
    body: TestBody,
    upgrade: bool,
}

/// A body as an app may give it.
#[derive(Debug)]
pub(super) enum TestBody {
    /// Program text: the same address is the same bytes.
    Static(&'static [u8]),
    /// Bytes the response owns.
    Owned(Vec<u8>),
    /// Chunks of a length not known up front.
    Stream,
}

impl From<&'static str> for TestBody {
    fn from(text: &'static str) -> Self {
        TestBody::Static(text.as_bytes())
    }
}

impl From<String> for TestBody {
    fn from(text: String) -> Self {
        TestBody::Owned(text.into_bytes())
    }
}

impl From<Vec<u8>> for TestBody {
    fn from(bytes: Vec<u8>) -> Self {
        TestBody::Owned(bytes)
    }
}

impl TestResponse {
    /// This status, no fields, no body.
    pub(super) fn new(status: StatusCode) -> Self {
        TestResponse {
            status,
            fields: Vec::new(),
            body: TestBody::Static(b""),
            upgrade: false,
        }
    }

    /// `200 OK`, `text/plain`.
    pub(super) fn text(body: impl Into<TestBody>) -> Self {
        TestResponse::new(StatusCode::OK)
            .with_header("Content-Type", "text/plain")
            .with_body(body)
    }

    /// `200 OK`, `application/json`.
    pub(super) fn json(body: impl Into<TestBody>) -> Self {
        TestResponse::new(StatusCode::OK)
            .with_header("Content-Type", "application/json")
            .with_body(body)
    }

    /// Add a header field.
    pub(super) fn with_header(
        mut self,
        name: impl Into<Cow<'static, str>>,
        value: impl Into<Cow<'static, str>>,
    ) -> Self {
        self.fields.push((name.into(), value.into()));
        self
    }

    /// Set the body.
    pub(super) fn with_body(mut self, body: impl Into<TestBody>) -> Self {
        self.body = body.into();
        self
    }

    /// Take the connection over after the head.
    pub(super) fn upgrading(mut self) -> Self {
        self.upgrade = true;
        self
    }

    /// What the encoder is given.
    pub(super) fn parts(&self) -> ResponseParts<'_> {
        ResponseParts {
            status: self.status,
            fields: &self.fields,
            body: match &self.body {
                TestBody::Static(bytes) => BodyContent::Static(bytes),
                TestBody::Owned(bytes) => BodyContent::Bytes(bytes),
                TestBody::Stream => BodyContent::Stream,
            },
            upgrade: self.upgrade,
        }
    }
}
