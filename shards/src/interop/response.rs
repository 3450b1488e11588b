//! shardd's [`Response`] to and from `http::Response`.

use bytes::Bytes;
use http::header::{self, HeaderMap, HeaderValue};

use super::fields::{header_name, lists_close, name_text, value_text};
use super::HttpConversionError;
use crate::body::Body;
use crate::response::{HeaderText, Response};

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
