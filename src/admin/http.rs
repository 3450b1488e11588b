//! One admin connection: read one request head, write one response with
//! `Content-Length` and `Connection: close`, close.
//!
//! Blocking I/O under short timeouts; a request body, if any, is not read
//! (no admin endpoint takes one) but drained before the close so the client
//! reads its response instead of a reset.

use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

/// Longest a client may take to send its request head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a response write may wait for the client to read.
const WRITE_TIMEOUT: Duration = Duration::from_secs(2);
/// After the response: how long to read and discard what the client still sends.
const LINGER: Duration = Duration::from_millis(200);
/// Largest request head read.
const MAX_HEAD: usize = 8 * 1024;
/// Most header fields in one request.
const MAX_HEADERS: usize = 32;

/// What a route needs of a request.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Request {
    /// `GET`, `HEAD`, ...
    pub method: String,
    /// The target's path, without the query.
    pub path: String,
}

/// One response; the body is sent whole.
#[derive(Debug)]
pub(super) struct Reply {
    pub status: u16,
    pub content_type: &'static str,
    /// Header lines besides the ones every reply has (each `Name: value`).
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// A reply with `body` as `content_type`.
    pub(super) fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Reply {
        Reply {
            status,
            content_type,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// A plain-text reply.
    pub(super) fn text(status: u16, body: impl Into<Vec<u8>>) -> Reply {
        Reply::new(status, "text/plain; charset=utf-8", body)
    }

    /// The same reply with one more header.
    pub(super) fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Reply {
        self.headers.push((name, value.into()));
        self
    }
}

/// Answer the one request on `stream` with `answer`, then close.
pub(super) fn serve(mut stream: TcpStream, answer: impl FnOnce(&Request) -> Reply) {
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let (reply, head_only) = match read_request(&mut stream) {
        Ok(Some(request)) => (answer(&request), request.method == "HEAD"),
        Ok(None) => return, // closed or timed out before a whole head: nothing to answer
        Err(reply) => (reply, false),
    };
    if stream.write_all(&encode(&reply, head_only)).is_err() {
        return;
    }
    linger(&mut stream);
}

/// Read one request head; `Ok(None)` if the client went away or was too
/// slow, `Err` with the reply for a request that is not one.
fn read_request(stream: &mut TcpStream) -> Result<Option<Request>, Reply> {
    let deadline = Instant::now() + HEAD_TIMEOUT;
    let mut buf = vec![0u8; MAX_HEAD];
    let mut filled = 0;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return Ok(None);
        }
        match stream.read(&mut buf[filled..]) {
            Ok(0) => return Ok(None),
            Ok(n) => filled += n,
            Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(None),
        }
        match parse(&buf[..filled]) {
            Ok(Some(request)) => return Ok(Some(request)),
            Ok(None) if filled < buf.len() => {}
            Ok(None) => return Err(Reply::text(431, "request head too large\n")),
            Err(reply) => return Err(reply),
        }
    }
}

/// Parse a request head: `Ok(None)` while incomplete.
fn parse(bytes: &[u8]) -> Result<Option<Request>, Reply> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(bytes) {
        Ok(httparse::Status::Complete(_)) => {
            let target = request.path.unwrap_or("/");
            let path = target.split(['?', '#']).next().unwrap_or(target);
            Ok(Some(Request {
                method: request.method.unwrap_or("GET").to_owned(),
                path: path.to_owned(),
            }))
        }
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(Reply::text(431, "too many header fields\n")),
        Err(_) => Err(Reply::text(400, "bad request\n")),
    }
}

/// The bytes of `reply`: status line, headers, and (unless `head_only`) the body.
fn encode(reply: &Reply, head_only: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + reply.body.len());
    let _ = write!(
        out,
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\n\
         Cache-Control: no-store\r\nConnection: close\r\n",
        reply.status,
        reason(reply.status),
        reply.content_type,
        reply.body.len()
    );
    for (name, value) in &reply.headers {
        let _ = write!(out, "{name}: {value}\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&reply.body);
    }
    out
}

fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        302 => "Found",
        400 => "Bad Request",
        404 => "Not Found",
        405 => "Method Not Allowed",
        431 => "Request Header Fields Too Large",
        503 => "Service Unavailable",
        _ => "",
    }
}

/// Close our side, then read and discard what the client still sends for a
/// moment, so the close is a FIN the client reads after the response, not a reset.
fn linger(stream: &mut TcpStream) {
    if stream.shutdown(Shutdown::Write).is_err() {
        return;
    }
    let _ = stream.set_read_timeout(Some(LINGER));
    let deadline = Instant::now() + LINGER;
    let mut sink = [0u8; 4096];
    while Instant::now() < deadline {
        match stream.read(&mut sink) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_method_and_path_without_query() {
        let request = parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            request,
            Request {
                method: "GET".into(),
                path: "/metrics".into()
            }
        );
        assert!(parse(b"GET /metrics HTTP/1.1\r\nHost:").unwrap().is_none());
        assert_eq!(
            parse(b"\x01\x02 / HTTP/1.1\r\n\r\n").unwrap_err().status,
            400
        );
    }

    #[test]
    fn encodes_length_and_close_and_drops_the_body_for_head() {
        let reply = Reply::text(200, "ok\n").with_header("Allow", "GET, HEAD");
        let text = String::from_utf8(encode(&reply, false)).unwrap();
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
        assert!(text.contains("Content-Length: 3\r\n"), "{text}");
        assert!(text.contains("Connection: close\r\n"), "{text}");
        assert!(text.contains("Allow: GET, HEAD\r\n"), "{text}");
        assert!(text.ends_with("\r\n\r\nok\n"), "{text}");
        let head = String::from_utf8(encode(&reply, true)).unwrap();
        assert!(head.ends_with("\r\n\r\n"), "{head}");
        assert!(head.contains("Content-Length: 3\r\n"), "{head}");
    }
}
