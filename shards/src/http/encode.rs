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
    /// The client speaks HTTP/1.1, so a stream can go out with chunked coding.
    pub http11: bool,
}

/// Bodies up to this size are copied into the output buffer behind their
/// head (one write for a whole pipelined batch); larger ones are written
/// from where they are, beside the buffer, with one vectored write.
pub const COPY_LIMIT: usize = 8 * 1024;

/// How the body of an encoded response goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyPlan {
    /// Entirely in the output already, or there is none to send.
    Written,
    /// Not copied: the response's bytes go out as they are, after the head.
    Separate,
    /// A stream, sent with chunked coding.
    Chunked,
    /// A stream, sent until the connection closes (HTTP/1.0 has no chunks).
    UntilClose,
    /// `101`: the connection is taken over once the head is sent.
    Upgrade,
}

/// Append `response` to `out` as HTTP/1.1 bytes: the head, and the body
/// when it is small; the returned plan says what, if anything, follows.
///
/// A response whose status or header fields cannot be sent safely (a CR or
/// LF in a value would split the response) is replaced by a 500, so an app
/// bug cannot corrupt the stream. Header text given as `&'static str` is
/// part of the program and is trusted; owned text, which may come from a
/// request, is checked.
pub fn encode_response(
    response: &Response,
    options: &EncodeOptions<'_>,
    out: &mut Vec<u8>,
) -> BodyPlan {
    let mut own_server = false;
    let mut own_date = false;
    let mut own_length: Option<&str> = None;
    let mut fields_len = 0;
    for (name, value) in response.header_fields() {
        fields_len += name.len() + value.len() + 4;
        if !sendable_name(name) || !sendable_value(value) {
            return encode_response(&invalid_response(), options, out);
        }
        match name.len() {
            4 => own_date |= eq_lowercase(name.as_bytes(), b"date"),
            6 => own_server |= eq_lowercase(name.as_bytes(), b"server"),
            14 if eq_lowercase(name.as_bytes(), b"content-length") => own_length = Some(value),
            _ => {}
        }
    }
    let status = response.status();
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS && response.upgrades();
    // Other interim (1xx) responses are the server's business: an app that
    // returned one would leave the client waiting for a final response.
    if !upgrade && !(200..=599).contains(&status.as_u16()) {
        return encode_response(&invalid_response(), options, out);
    }
    let body = response.body();
    let bytes = body.as_bytes().unwrap_or_default();
    let copied = bytes.len() <= COPY_LIMIT;
    // Room for everything at once; `put` then copies without a call.
    out.reserve(HEAD_ROOM + fields_len + if copied { bytes.len() } else { 0 });
    if status == StatusCode::OK && !own_server {
        // The common case in one copy.
        put(out, b"HTTP/1.1 200 OK\r\nServer: shardd\r\n");
    } else {
        write_status_line(status, out);
        if !own_server {
            put(out, b"Server: shardd\r\n");
        }
    }
    if !own_date {
        put(out, b"Date: ");
        put(out, options.date);
        put(out, b"\r\n");
    }
    for (name, value) in response.headers() {
        match name.len() {
            // Framing and connection management are the server's job
            // (but for the `Connection: upgrade` of a 101).
            10 if !upgrade && eq_lowercase(name.as_bytes(), b"connection") => continue,
            14 if eq_lowercase(name.as_bytes(), b"content-length") => continue,
            17 if eq_lowercase(name.as_bytes(), b"transfer-encoding") => continue,
            _ => {}
        }
        put(out, name.as_bytes());
        put(out, b": ");
        put(out, value.as_bytes());
        put(out, b"\r\n");
    }
    if upgrade {
        put(out, b"\r\n");
        return BodyPlan::Upgrade;
    }
    let bodyless = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let stream = body.is_stream() && !options.head_only && !bodyless;
    // A HEAD or 304 answer without a body may state the length the body
    // would have (RFC 9110 §8.6); otherwise the length is the body's.
    let stated = own_length.filter(|length| {
        bytes.is_empty()
            && (options.head_only || status == StatusCode::NOT_MODIFIED)
            && !length.is_empty()
            && length.bytes().all(|b| b.is_ascii_digit())
    });
    if let Some(length) = stated {
        put(out, b"Content-Length: ");
        put(out, length.as_bytes());
        put(out, b"\r\n");
    } else if stream && options.http11 {
        put(out, b"Transfer-Encoding: chunked\r\n");
    } else if !bodyless && !stream {
        put(out, b"Content-Length: ");
        put(out, itoa::Buffer::new().format(bytes.len()).as_bytes());
        put(out, b"\r\n");
    }
    if options.close {
        put(out, b"Connection: close\r\n");
    } else if options.keep_alive_1_0 {
        put(out, b"Connection: keep-alive\r\n");
    }
    put(out, b"\r\n");
    if options.head_only || bodyless {
        BodyPlan::Written
    } else if stream && options.http11 {
        BodyPlan::Chunked
    } else if stream {
        BodyPlan::UntilClose
    } else if copied {
        put(out, bytes);
        BodyPlan::Written
    } else {
        BodyPlan::Separate
    }
}

/// Bytes of a head besides the app's fields: status line, `Server`,
/// `Date`, framing and `Connection` fields, the blank line.
const HEAD_ROOM: usize = 256;

/// Append `bytes`; the capacity check is a branch, not a call, because
/// `encode_response` reserves room for the whole response first.
#[inline(always)]
fn put(out: &mut Vec<u8>, bytes: &[u8]) {
    if out.capacity() - out.len() < bytes.len() {
        out.reserve(bytes.len());
    }
    // SAFETY: there is room for `bytes` after `len` (checked above), the
    // regions cannot overlap (`bytes` is not in `out`'s spare capacity),
    // and the new length covers exactly the bytes written.
    unsafe {
        std::ptr::copy_nonoverlapping(bytes.as_ptr(), out.as_mut_ptr().add(out.len()), bytes.len());
        out.set_len(out.len() + bytes.len());
    }
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
        http11: true,
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
            http11: true,
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
