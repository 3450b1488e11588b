//! Decoding a request head: httparse for the syntax, then the RFC 9112
//! rules that decide how the body is framed and whether the message is
//! ambiguous (and so refused, because ambiguity is how requests get smuggled).

use std::mem::MaybeUninit;

use memchr::memchr;

use super::HttpError;
use crate::limits::{Limits, MAX_HEADERS_CAP};

/// HTTP version of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Version {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
    /// HTTP/2: a request that came on an HTTP/2 stream (this HTTP/1 codec
    /// never decodes one; the HTTP/2 server describes its requests with it).
    Http2,
}

/// How the body that follows a head is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body.
    None,
    /// Exactly this many bytes (`Content-Length`).
    Length(usize),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Where one header field's name and value lie, as offsets into the head.
///
/// Offsets rather than slices so the connection can keep them in a reused
/// buffer across requests without tying it to one read buffer's lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HeaderSpan {
    /// Offset and length of the field name.
    pub name: (u32, u32),
    /// Offset and length of the field value (trimmed).
    pub value: (u32, u32),
}

/// A decoded request head; every text field is an offset into the bytes it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    /// Bytes the head took, including the empty line that ends it.
    pub len: usize,
    /// Offset and length of the method.
    pub method: (u32, u32),
    /// The request target as sent (path and query).
    pub target: (u32, u32),
    /// How much of the target comes before its `?` (all of it without one):
    /// found once here, so a remembered head never looks for it again.
    pub path_len: u32,
    /// The protocol version.
    pub version: Version,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before it sends the body: an
    /// HTTP/1.1 request with `Expect: 100-continue` (RFC 9110 §10.1.1: an
    /// HTTP/1.0 request's `Expect` is ignored). Decided here, once.
    pub expect_continue: bool,
}

/// Slice `buf` by an `(offset, length)` pair produced by this module.
pub fn slice(buf: &[u8], (start, len): (u32, u32)) -> &[u8] {
    &buf[start as usize..start as usize + len as usize]
}

/// Decode one request head from the start of `buf`.
///
/// `Ok(None)`: the head is not complete yet (and nothing seen so far breaks a
/// limit). Header field positions go into `spans` (cleared first).
pub fn decode_head(
    buf: &[u8],
    limits: &Limits,
    spans: &mut Vec<HeaderSpan>,
) -> Result<Option<Head>, HttpError> {
    let mut storage = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS_CAP];
    let max_headers = limits.max_headers.clamp(1, MAX_HEADERS_CAP);
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut storage[..max_headers]) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            check_partial_limits(buf, limits)?;
            return Ok(None);
        }
        Err(httparse::Error::TooManyHeaders) => return Err(HttpError::HeaderFieldsTooLarge),
        Err(e) => return Err(HttpError::BadRequest(describe(e))),
    };
    if len > limits.max_head_bytes {
        return Err(HttpError::HeaderFieldsTooLarge);
    }
    let head = &buf[..len];
    let method = req.method.unwrap_or_default().as_bytes();
    let target = req.path.unwrap_or_default().as_bytes();
    let method_span = span_of(buf, method);
    let target_span = span_of(buf, target);
    // The request line is `method SP target SP HTTP/1.x` (httparse allows single
    // spaces only), so it ends 9 bytes after the target.
    let line_end = (target_span.0 + target_span.1) as usize + 9;
    if line_end > limits.max_request_line {
        return Err(HttpError::UriTooLong);
    }
    if !leading_lines_are_crlf(&head[..method_span.0 as usize])
        || !crlf_at(head, line_end)
        || !crlf_at(head, len - 2)
    {
        return Err(BARE_LF);
    }

    let version = match req.version {
        Some(1) => Version::Http11,
        _ => Version::Http10,
    };
    let mut fields = FieldScan::default();
    spans.clear();
    for header in req.headers.iter() {
        fields.scan(header.name.as_bytes(), header.value)?;
        let name = span_of(buf, header.name.as_bytes());
        let value = value_span(buf, name, header.value);
        if !line_ends_with_crlf(head, (value.0 + value.1) as usize) {
            return Err(BARE_LF);
        }
        spans.push(HeaderSpan { name, value });
    }
    let framing = fields.framing(version, limits)?;
    if version == Version::Http11 && fields.hosts != 1 {
        return Err(HttpError::BadRequest(
            "HTTP/1.1 request needs exactly one Host header",
        ));
    }
    let keep_alive = match version {
        Version::Http11 | Version::Http2 => !fields.close,
        Version::Http10 => fields.keep_alive && !fields.close,
    };
    Ok(Some(Head {
        len,
        method: method_span,
        target: target_span,
        path_len: path_len(target) as u32,
        version,
        framing,
        keep_alive,
        expect_continue: fields.expect_continue && version == Version::Http11,
    }))
}

/// The length of `target` before its `?`, if it has one.
pub fn path_len(target: &[u8]) -> usize {
    memchr(b'?', target).unwrap_or(target.len())
}

/// What the header fields say about framing and the connection, gathered in one pass.
#[derive(Default)]
struct FieldScan {
    content_length: Option<usize>,
    transfer_encoding: bool,
    chunked: bool,
    close: bool,
    keep_alive: bool,
    hosts: u32,
    expect_continue: bool,
}

impl FieldScan {
    fn scan(&mut self, name: &[u8], value: &[u8]) -> Result<(), HttpError> {
        // Match on length first: most fields are none of these and cost one compare.
        match name.len() {
            4 if eq_lowercase(name, b"host") => self.hosts += 1,
            6 if eq_lowercase(name, b"expect") => {
                self.expect_continue |= eq_lowercase(trim(value), b"100-continue");
            }
            10 if eq_lowercase(name, b"connection") => self.scan_connection(value),
            14 if eq_lowercase(name, b"content-length") => {
                let length = parse_content_length(value)?;
                if self.content_length.is_some_and(|seen| seen != length) {
                    return Err(HttpError::BadRequest("conflicting Content-Length headers"));
                }
                self.content_length = Some(length);
            }
            17 if eq_lowercase(name, b"transfer-encoding") => {
                if self.transfer_encoding {
                    return Err(HttpError::BadRequest("repeated Transfer-Encoding header"));
                }
                self.transfer_encoding = true;
                let coding = trim(value);
                if eq_lowercase(coding, b"chunked") {
                    self.chunked = true;
                } else if coding.is_empty() {
                    return Err(HttpError::BadRequest("empty Transfer-Encoding"));
                } else {
                    return Err(HttpError::NotImplemented(
                        "transfer coding not supported (only chunked)",
                    ));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// `Connection` options; the usual single value is checked before splitting a list.
    fn scan_connection(&mut self, value: &[u8]) {
        if eq_lowercase(value, b"keep-alive") {
            self.keep_alive = true;
            return;
        }
        for token in value.split(|&b| b == b',').map(trim) {
            self.close |= eq_lowercase(token, b"close");
            self.keep_alive |= eq_lowercase(token, b"keep-alive");
        }
    }

    fn framing(&self, version: Version, limits: &Limits) -> Result<Framing, HttpError> {
        if self.transfer_encoding {
            if self.content_length.is_some() {
                return Err(HttpError::BadRequest(
                    "both Content-Length and Transfer-Encoding",
                ));
            }
            if version == Version::Http10 {
                return Err(HttpError::BadRequest(
                    "Transfer-Encoding in an HTTP/1.0 request",
                ));
            }
            return Ok(Framing::Chunked);
        }
        // A length over `max_body_bytes` is the reader's to refuse: an app
        // may take such a body as a stream.
        let _ = limits;
        match self.content_length {
            Some(0) | None => Ok(Framing::None),
            Some(length) => Ok(Framing::Length(length)),
        }
    }
}

/// `Content-Length = 1*DIGIT`, nothing else: no sign, no hex, no list.
fn parse_content_length(value: &[u8]) -> Result<usize, HttpError> {
    const INVALID: HttpError = HttpError::BadRequest("invalid Content-Length");
    let digits = trim(value);
    if digits.is_empty() || digits.len() > 18 || !digits.iter().all(u8::is_ascii_digit) {
        return Err(INVALID);
    }
    Ok(digits
        .iter()
        .fold(0usize, |n, d| n * 10 + usize::from(d - b'0')))
}

fn check_partial_limits(buf: &[u8], limits: &Limits) -> Result<(), HttpError> {
    let line_limit = limits.max_request_line + 2;
    if buf.len() >= line_limit && memchr(b'\n', &buf[..line_limit]).is_none() {
        return Err(HttpError::UriTooLong);
    }
    if buf.len() > limits.max_head_bytes {
        return Err(HttpError::HeaderFieldsTooLarge);
    }
    Ok(())
}

const BARE_LF: HttpError = HttpError::BadRequest("bare LF line ending");

/// Whether the line whose content ends at `end` (after optional trailing
/// whitespace, which httparse trims from values) is terminated by CRLF.
fn line_ends_with_crlf(head: &[u8], mut end: usize) -> bool {
    if crlf_at(head, end) {
        return true;
    }
    while matches!(head.get(end), Some(b' ' | b'\t')) {
        end += 1;
    }
    crlf_at(head, end)
}

/// Case-insensitive equality with a lowercase name made of letters, digits
/// and `-`. OR-ing 0x20 lowercases a letter; the only other byte it could map
/// onto one of those is CR onto `-`, and httparse never lets CR into a field.
/// Branch-free over the bytes, so it costs a few instructions per byte.
pub(crate) fn eq_lowercase(text: &[u8], lower: &[u8]) -> bool {
    text.len() == lower.len()
        && text
            .iter()
            .zip(lower)
            .fold(0u8, |diff, (a, b)| diff | ((a | 0x20) ^ b))
            == 0
}

fn crlf_at(head: &[u8], at: usize) -> bool {
    head.get(at..at + 2) == Some(b"\r\n")
}

/// Empty lines before the request line (ignored, RFC 9112 §2.2) must be CRLF too.
fn leading_lines_are_crlf(prefix: &[u8]) -> bool {
    prefix.chunks(2).all(|line| line == b"\r\n")
}

/// A header value's position; an empty value sits right after the colon's whitespace.
fn value_span(buf: &[u8], name: (u32, u32), value: &[u8]) -> (u32, u32) {
    if value.is_empty() {
        let after_colon = (name.0 + name.1 + 1) as usize;
        let offset = (value.as_ptr() as usize).wrapping_sub(buf.as_ptr() as usize);
        let offset = if offset <= buf.len() {
            offset.max(after_colon)
        } else {
            after_colon
        };
        return (offset as u32, 0);
    }
    span_of(buf, value)
}

fn trim(bytes: &[u8]) -> &[u8] {
    let is_ows = |b: &u8| *b == b' ' || *b == b'\t';
    let start = bytes.iter().position(|b| !is_ows(b)).unwrap_or(bytes.len());
    let end = bytes
        .iter()
        .rposition(|b| !is_ows(b))
        .map_or(start, |i| i + 1);
    &bytes[start..end]
}

fn span_of(buf: &[u8], part: &[u8]) -> (u32, u32) {
    if part.is_empty() {
        return (0, 0);
    }
    let start = part.as_ptr() as usize - buf.as_ptr() as usize;
    (start as u32, part.len() as u32)
}

fn describe(error: httparse::Error) -> &'static str {
    match error {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status",
        httparse::Error::Token => "invalid request line",
        httparse::Error::TooManyHeaders => "too many headers",
        httparse::Error::Version => "unsupported HTTP version",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(raw: &[u8]) -> Result<Option<Head>, HttpError> {
        decode_head(raw, &Limits::default(), &mut Vec::new())
    }

    fn bad(raw: &[u8]) -> u16 {
        decode(raw)
            .expect_err("should be refused")
            .status()
            .as_u16()
    }

    #[test]
    fn techempower_request_decodes() {
        let raw = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\nAccept: text/plain\r\nConnection: keep-alive\r\n\r\n";
        let mut spans = Vec::new();
        let head = decode_head(raw, &Limits::default(), &mut spans)
            .unwrap()
            .unwrap();
        assert_eq!(head.len, raw.len());
        assert_eq!(slice(raw, head.method), b"GET");
        assert_eq!(slice(raw, head.target), b"/plaintext");
        assert_eq!(head.version, Version::Http11);
        assert_eq!(head.framing, Framing::None);
        assert!(head.keep_alive);
        assert_eq!(spans.len(), 3);
        assert_eq!(slice(raw, spans[1].name), b"Accept");
        assert_eq!(slice(raw, spans[1].value), b"text/plain");
    }

    #[test]
    fn partial_head_asks_for_more() {
        assert_eq!(decode(b"GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        assert_eq!(decode(b""), Ok(None));
    }

    #[test]
    fn keep_alive_rules() {
        let close = decode(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n");
        assert!(!close.unwrap().unwrap().keep_alive);
        let old = decode(b"GET / HTTP/1.0\r\n\r\n").unwrap().unwrap();
        assert!(!old.keep_alive);
        let old_ka = decode(b"GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(old_ka.unwrap().unwrap().keep_alive);
    }

    #[test]
    fn framing_by_length_and_chunked() {
        let length = decode(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(length.unwrap().unwrap().framing, Framing::Length(5));
        let chunked = decode(b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
        assert_eq!(chunked.unwrap().unwrap().framing, Framing::Chunked);
        let twice =
            decode(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n");
        assert_eq!(twice.unwrap().unwrap().framing, Framing::Length(5));
    }

    #[test]
    fn smuggling_shapes_are_refused() {
        let cases: &[&[u8]] = &[
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Folded: a\r\n b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Nul: a\0b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nX-Ctl: a\x01b\r\n\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
            b"GET / HTTP/1.1\nHost: a\n\n",
            b"GET / HTTP/1.1\r\nHost: a\nX: b\r\n\r\n",
            b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
            b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03",
        ];
        for raw in cases {
            assert_eq!(bad(raw), 400, "{}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn unknown_transfer_coding_is_not_implemented() {
        let raw = b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
        assert_eq!(bad(raw), 501);
    }

    #[test]
    fn limits_map_to_their_status() {
        let limits = Limits {
            max_request_line: 32,
            max_head_bytes: 128,
            max_headers: 4,
            max_body_bytes: 10,
            ..Limits::default()
        };
        let check = |raw: &[u8]| {
            decode_head(raw, &limits, &mut Vec::new())
                .unwrap_err()
                .status()
        };
        let long_line = format!("GET /{} HTTP/1.1\r\nHost: a\r\n\r\n", "a".repeat(40));
        assert_eq!(check(long_line.as_bytes()), 414);
        assert_eq!(check(format!("GET /{}", "a".repeat(40)).as_bytes()), 414);
        let many = b"GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n";
        assert_eq!(check(many), 431);
        let big = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "b".repeat(200)
        );
        assert_eq!(check(big.as_bytes()), 431);
        assert_eq!(
            check(format!("GET / HTTP/1.1\r\nX: {}", "b".repeat(200)).as_bytes()),
            431
        );
    }
}
