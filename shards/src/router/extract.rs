//! Typed extraction from a request — path parameters, the query string, a
//! JSON body — and [`Rejection`], what the client gets when it fails.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use http::StatusCode;
use serde::de::DeserializeOwned;

use super::into_response::IntoResponse;
use crate::request::Request;
use crate::response::Response;

/// Why a request could not be extracted: a status and a short text that
/// says what was wrong, sent as a `text/plain` body.
///
/// Return it (or `?` it) from a handler whose error type is `Rejection`
/// or converts from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rejection {
    status: StatusCode,
    message: Cow<'static, str>,
}

impl Rejection {
    /// A rejection with this status and message (one line, no newline).
    pub fn new(status: StatusCode, message: impl Into<Cow<'static, str>>) -> Self {
        Rejection {
            status,
            message: message.into(),
        }
    }

    /// The status the client gets.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// What was wrong.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn bad_request(message: String) -> Self {
        Rejection::new(StatusCode::BAD_REQUEST, message)
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Rejection {}

impl IntoResponse for Rejection {
    fn into_response(self) -> Response {
        Response::new(self.status)
            .with_header("Content-Type", "text/plain")
            .with_body(format!("{}\n", self.message))
    }
}

impl<'a> Request<'a> {
    /// The path parameter `name`, percent-decoded and parsed.
    ///
    /// `400` when it does not parse as a `T` (or is not UTF-8 once
    /// decoded); `500` when the route has no parameter `name`, a mistake in
    /// the app rather than the request.
    pub fn param<T>(&self, name: &str) -> Result<T, Rejection>
    where
        T: FromStr,
        T::Err: fmt::Display,
    {
        let Some(&(_, raw)) = self.params().iter().find(|(key, _)| *key == name) else {
            return Err(Rejection::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("the route has no path parameter `{name}`"),
            ));
        };
        let text: Cow<'a, str> = percent_encoding::percent_decode_str(raw)
            .decode_utf8()
            .map_err(|_| Rejection::bad_request(format!("path parameter `{name}` is not UTF-8")))?;
        text.parse().map_err(|error| {
            Rejection::bad_request(format!("invalid path parameter `{name}`: {error}"))
        })
    }

    /// The query string deserialized as a `T` (`application/x-www-form-urlencoded`,
    /// with serde); no query reads as an empty one.
    ///
    /// `400` naming the problem when it does not fit `T`.
    pub fn query_as<T: DeserializeOwned>(&self) -> Result<T, Rejection> {
        serde_urlencoded::from_str(self.query().unwrap_or_default())
            .map_err(|error| Rejection::bad_request(format!("invalid query string: {error}")))
    }

    /// The body deserialized from JSON as a `T`.
    ///
    /// `415` unless `Content-Type` is `application/json` (or another
    /// `application/*+json`, parameters allowed); `400` naming the problem
    /// when the body is not JSON or does not fit `T`. A route's size limit
    /// (`.body_limit(bytes)`) is checked before the handler runs.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, Rejection> {
        let content_type = self.header("Content-Type").unwrap_or_default();
        if !is_json(content_type) {
            let got = String::from_utf8_lossy(content_type);
            let message = if got.is_empty() {
                "expected Content-Type: application/json, got none".to_string()
            } else {
                format!("expected Content-Type: application/json, got {got}")
            };
            return Err(Rejection::new(StatusCode::UNSUPPORTED_MEDIA_TYPE, message));
        }
        serde_json::from_slice(self.body())
            .map_err(|error| Rejection::bad_request(format!("invalid JSON body: {error}")))
    }
}

/// `application/json` or `application/<anything>+json`, any case, with or without parameters.
fn is_json(content_type: &[u8]) -> bool {
    let essence = content_type
        .split(|&b| b == b';')
        .next()
        .unwrap_or_default()
        .trim_ascii();
    let Some(slash) = essence.iter().position(|&b| b == b'/') else {
        return false;
    };
    let (kind, subtype) = (&essence[..slash], &essence[slash + 1..]);
    kind.eq_ignore_ascii_case(b"application")
        && (subtype.eq_ignore_ascii_case(b"json")
            || (subtype.len() > 5 && subtype[subtype.len() - 5..].eq_ignore_ascii_case(b"+json")))
}

#[cfg(test)]
mod tests {
    use super::is_json;

    #[test]
    fn json_content_types() {
        for yes in [
            "application/json",
            "Application/JSON; charset=utf-8",
            " application/json ;x=y",
            "application/problem+json",
        ] {
            assert!(is_json(yes.as_bytes()), "{yes}");
        }
        for no in [
            "",
            "text/plain",
            "application/jsonx",
            "application/+json",
            "json",
            "text/json",
        ] {
            assert!(!is_json(no.as_bytes()), "{no}");
        }
    }
}
