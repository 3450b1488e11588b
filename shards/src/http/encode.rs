//! Encoding a response into the connection's output buffer.

use super::date::DATE_LEN;
use super::head::eq_lowercase;
use super::HttpError;
use std::borrow::Cow;

use http::StatusCode;

use crate::response::{HeaderText, Response};

/// What the connection decided about this response beyond the app's say.
#[derive(Clone, Copy, Debug)]
pub struct EncodeOptions<'a> {
    /// Current `Date` value.
    pub date: &'a [u8; DATE_LEN],
    /// The request was `HEAD`: send the headers, not the body.
    pub head_only: bool,
    /// The server closes after this response: send `Connection: close`.
    pub close: bool,
    /// An HTTP/1.0 client asked for keep-alive: confirm it.
    pub keep_alive_1_0: bool,
}

/// Append `response` to `out` as HTTP/1.1 bytes.
///
/// A response whose status or header fields cannot be sent safely (a CR or
/// LF in a value would split the response) is replaced by a 500 and `false`
/// is returned, so an app bug cannot corrupt the stream. Header text given
/// as `&'static str` is part of the program and is trusted; owned text,
/// which may come from a request, is checked.
pub fn encode_response(
    response: &Response,
    options: &EncodeOptions<'_>,
    out: &mut Vec<u8>,
) -> bool {
    let mut own_server = false;
    let mut own_date = false;
    let mut own_length: Option<&str> = None;
    for (name, value) in response.header_fields() {
        if !sendable_name(name) || !sendable_value(value) {
            encode_response(&invalid_response(), options, out);
            return false;
        }
        match name.len() {
            4 => own_date |= eq_lowercase(name.as_bytes(), b"date"),
            6 => own_server |= eq_lowercase(name.as_bytes(), b"server"),
            14 if eq_lowercase(name.as_bytes(), b"content-length") => own_length = Some(value),
            _ => {}
        }
    }
    let status = response.status();
    // Interim (1xx) responses are the server's business: an app that
    // returned one would leave the client waiting for a final response.
    if !(200..=599).contains(&status.as_u16()) {
        encode_response(&invalid_response(), options, out);
        return false;
    }
    let body = response.body().as_bytes();
    out.reserve(160 + body.len());
    if status == StatusCode::OK && !own_server {
        // The common case in one copy.
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\nServer: shardd\r\n");
    } else {
        write_status_line(status, out);
        if !own_server {
            out.extend_from_slice(b"Server: shardd\r\n");
        }
    }
    if !own_date {
        out.extend_from_slice(b"Date: ");
        out.extend_from_slice(options.date);
        out.extend_from_slice(b"\r\n");
    }
    for (name, value) in response.headers() {
        match name.len() {
            // Framing and connection management are the server's job.
            10 if eq_lowercase(name.as_bytes(), b"connection") => continue,
            14 if eq_lowercase(name.as_bytes(), b"content-length") => continue,
            17 if eq_lowercase(name.as_bytes(), b"transfer-encoding") => continue,
            _ => {}
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let bodyless = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    // A HEAD or 304 answer without a body may state the length the body
    // would have (RFC 9110 §8.6); otherwise the length is the body's.
    let stated = own_length.filter(|length| {
        body.is_empty()
            && (options.head_only || status == StatusCode::NOT_MODIFIED)
            && !length.is_empty()
            && length.bytes().all(|b| b.is_ascii_digit())
    });
    if let Some(length) = stated {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(length.as_bytes());
        out.extend_from_slice(b"\r\n");
    } else if !bodyless {
        out.extend_from_slice(b"Content-Length: ");
        out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    if options.close {
        out.extend_from_slice(b"Connection: close\r\n");
    } else if options.keep_alive_1_0 {
        out.extend_from_slice(b"Connection: keep-alive\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !options.head_only && !bodyless {
        out.extend_from_slice(body);
    }
    true
}

fn invalid_response() -> Response {
    Response::new(StatusCode::INTERNAL_SERVER_ERROR)
        .with_header("Content-Type", "text/plain")
        .with_body("invalid response from application\n")
}

/// Static text is trusted; an owned name must be a token.
fn sendable_name(name: &HeaderText) -> bool {
    match name {
        Cow::Borrowed(_) => true,
        Cow::Owned(name) => {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        }
    }
}

/// Static text is trusted; an owned value must hold no control bytes but HTAB.
fn sendable_value(value: &HeaderText) -> bool {
    match value {
        Cow::Borrowed(_) => true,
        Cow::Owned(value) => value
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
    }
}

/// Append the response for a refused request; the connection closes after it.
pub fn encode_error(error: HttpError, date: &[u8; DATE_LEN], out: &mut Vec<u8>) {
    let response = Response::new(error.status())
        .with_header("Content-Type", "text/plain")
        .with_body(format!("{}\n", error.detail()));
    let options = EncodeOptions {
        date,
        head_only: false,
        close: true,
        keep_alive_1_0: false,
    };
    encode_response(&response, &options, out);
}

fn write_status_line(status: StatusCode, out: &mut Vec<u8>) {
    if status == StatusCode::OK {
        out.extend_from_slice(b"HTTP/1.1 200 OK\r\n");
        return;
    }
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const DATE: &[u8; DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

    fn encode(response: &Response, head_only: bool, close: bool) -> String {
        let mut out = Vec::new();
        let options = EncodeOptions {
            date: DATE,
            head_only,
            close,
            keep_alive_1_0: false,
        };
        encode_response(response, &options, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn plaintext_response_bytes() {
        let text = encode(&Response::text("Hello, World!"), false, false);
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nServer: shardd\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
             Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
        );
    }

    #[test]
    fn head_keeps_length_drops_body() {
        let text = encode(&Response::text("Hello"), true, true);
        assert!(text.contains("Content-Length: 5\r\n"));
        assert!(text.ends_with("Connection: close\r\n\r\n"));
    }

    #[test]
    fn header_injection_becomes_500() {
        let from_request = String::from("a\r\nSet-Cookie: b");
        let evil = Response::text("x").with_header("X-Evil", from_request);
        let text = encode(&evil, false, false);
        assert!(
            text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
            "{text}"
        );
        assert!(!text.contains("Set-Cookie"));
        let bad_name = Response::text("x").with_header(String::from("X: y"), "z");
        assert!(encode(&bad_name, false, false).starts_with("HTTP/1.1 500 "));
    }

    #[test]
    fn app_cannot_override_framing() {
        let sneaky = Response::text("abc").with_header("Content-Length", "99");
        let text = encode(&sneaky, false, false);
        assert!(text.contains("Content-Length: 3\r\n") && !text.contains("Content-Length: 99"));
    }

    #[test]
    fn interim_status_from_an_app_becomes_500() {
        let text = encode(&Response::new(StatusCode::CONTINUE), false, false);
        assert!(text.starts_with("HTTP/1.1 500 "), "{text}");
    }

    #[test]
    fn head_may_state_the_length_it_did_not_build() {
        let head = Response::new(StatusCode::OK).with_header("Content-Length", "1234");
        let text = encode(&head, true, false);
        assert!(text.contains("\r\nContent-Length: 1234\r\n"), "{text}");
        // For GET the body decides, whatever the app claims.
        let text = encode(&head, false, false);
        assert!(text.contains("\r\nContent-Length: 0\r\n"), "{text}");
    }

    #[test]
    fn no_content_has_no_length() {
        let text = encode(&Response::new(StatusCode::NO_CONTENT), false, false);
        assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"));
        assert!(!text.contains("Content-Length"));
    }
}
