//! Why a request was refused, and the status that says so.

use std::fmt;

use http::StatusCode;

/// A request the codec will not pass to the app. Each maps to one status
/// code; the connection is closed after the response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HttpError {
    /// Malformed syntax or an ambiguous message (smuggling attempt) → 400.
    BadRequest(&'static str),
    /// Request line longer than `max_request_line` → 414.
    UriTooLong,
    /// Head larger than `max_head_bytes` or more than `max_headers` fields → 431.
    HeaderFieldsTooLarge,
    /// Body larger than `max_body_bytes` → 413.
    PayloadTooLarge,
    /// A transfer coding other than `chunked` → 501.
    NotImplemented(&'static str),
    /// The head or body did not arrive in time → 408.
    RequestTimeout,
}

impl HttpError {
    /// The status code of the response that says so.
    pub fn status(&self) -> StatusCode {
        match self {
            HttpError::BadRequest(_) => StatusCode::BAD_REQUEST,
            HttpError::UriTooLong => StatusCode::URI_TOO_LONG,
            HttpError::HeaderFieldsTooLarge => StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
            HttpError::PayloadTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            HttpError::NotImplemented(_) => StatusCode::NOT_IMPLEMENTED,
            HttpError::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
        }
    }

    /// Short human-readable reason, sent as the response body.
    pub fn detail(&self) -> &'static str {
        match self {
            HttpError::BadRequest(why) | HttpError::NotImplemented(why) => why,
            HttpError::UriTooLong => "request line too long",
            HttpError::HeaderFieldsTooLarge => "request header fields too large",
            HttpError::PayloadTooLarge => "request body too large",
            HttpError::RequestTimeout => "request not received in time",
        }
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.status().as_u16(), self.detail())
    }
}

impl std::error::Error for HttpError {}
