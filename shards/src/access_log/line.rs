//! One access-log line in each format, and the escaping that keeps a line
//! one line whatever the client sent.

use std::io::Write;
use std::net::IpAddr;
use std::time::Duration;

use http::StatusCode;

use super::time::Timestamps;
use crate::http::{slice, Version};
use crate::listener::PeerAddr;
use crate::request::Request;

/// What one line says.
pub(super) struct Line<'a> {
    pub(super) peer: &'a PeerAddr,
    /// `None` for a request refused before it was decoded.
    pub(super) request: Option<&'a Request<'a>>,
    pub(super) status: StatusCode,
    pub(super) body_bytes: Option<usize>,
    pub(super) took: Option<Duration>,
}

impl Line<'_> {
    /// `host - - [time] "METHOD target VERSION" status bytes`
    pub(super) fn common(&self, time: &Timestamps, out: &mut Vec<u8>) {
        match self.peer {
            PeerAddr::Tcp(addr) => push_ip(out, addr.ip()),
            _ => out.push(b'-'),
        }
        out.extend_from_slice(b" - - [");
        out.extend_from_slice(&time.clf);
        out.extend_from_slice(b"] \"");
        match self.request {
            Some(request) => {
                let parts = request.parts();
                push_clf_escaped(out, parts.method.as_bytes());
                out.push(b' ');
                push_clf_escaped(out, parts.target.as_bytes());
                out.push(b' ');
                out.extend_from_slice(version_text(parts.version).as_bytes());
            }
            None => out.push(b'-'),
        }
        out.extend_from_slice(b"\" ");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.push(b' ');
        match self.body_bytes {
            // Apache's %b: "-" for no body.
            Some(0) | None => out.push(b'-'),
            Some(bytes) => out.extend_from_slice(itoa::Buffer::new().format(bytes).as_bytes()),
        }
    }

    /// ` "referer" "user-agent"` (`"-"` for one not sent).
    pub(super) fn referer_and_agent(&self, out: &mut Vec<u8>) {
        let (referer, agent) = self.request.map_or((None, None), referer_and_agent);
        for value in [referer, agent] {
            out.extend_from_slice(b" \"");
            match value {
                Some(value) => push_clf_escaped(out, value),
                None => out.push(b'-'),
            }
            out.push(b'"');
        }
    }

    /// One JSON object; `null` for what is not known.
    pub(super) fn json(&self, time: &Timestamps, shard: usize, out: &mut Vec<u8>) {
        let mut number = itoa::Buffer::new();
        out.extend_from_slice(b"{\"time\":\"");
        out.extend_from_slice(&time.iso);
        out.extend_from_slice(b"\",\"shard\":");
        out.extend_from_slice(number.format(shard).as_bytes());
        out.extend_from_slice(b",\"peer\":");
        match self.peer {
            // A socket address needs no escaping.
            PeerAddr::Tcp(addr) => {
                out.push(b'"');
                if addr.is_ipv6() {
                    out.push(b'[');
                    push_ip(out, addr.ip());
                    out.push(b']');
                } else {
                    push_ip(out, addr.ip());
                }
                out.push(b':');
                out.extend_from_slice(number.format(addr.port()).as_bytes());
                out.push(b'"');
            }
            _ => out.extend_from_slice(b"null"),
        }
        let parts = self.request.map(Request::parts);
        out.extend_from_slice(b",\"method\":");
        push_json_string(out, parts.map(|parts| parts.method.as_bytes()));
        out.extend_from_slice(b",\"target\":");
        push_json_string(out, parts.map(|parts| parts.target.as_bytes()));
        out.extend_from_slice(b",\"version\":");
        push_json_string(
            out,
            parts.map(|parts| version_text(parts.version).as_bytes()),
        );
        out.extend_from_slice(b",\"status\":");
        out.extend_from_slice(self.status.as_str().as_bytes());
        out.extend_from_slice(b",\"bytes\":");
        match self.body_bytes {
            Some(bytes) => out.extend_from_slice(number.format(bytes).as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"duration_us\":");
        match self.took {
            Some(took) => out.extend_from_slice(number.format(took.as_micros()).as_bytes()),
            None => out.extend_from_slice(b"null"),
        }
        let (referer, agent) = self.request.map_or((None, None), referer_and_agent);
        out.extend_from_slice(b",\"referer\":");
        push_json_string(out, referer);
        out.extend_from_slice(b",\"user_agent\":");
        push_json_string(out, agent);
        out.push(b'}');
    }
}

/// An address as `Display` writes it; IPv4 without the formatting machinery.
fn push_ip(out: &mut Vec<u8>, ip: IpAddr) {
    match ip {
        IpAddr::V4(ip) => {
            // Into a stack buffer, then one copy.
            let mut text = [0u8; 15];
            let mut len = 0;
            for (at, octet) in ip.octets().into_iter().enumerate() {
                if at > 0 {
                    text[len] = b'.';
                    len += 1;
                }
                if octet >= 100 {
                    text[len] = b'0' + octet / 100;
                    len += 1;
                }
                if octet >= 10 {
                    text[len] = b'0' + octet / 10 % 10;
                    len += 1;
                }
                text[len] = b'0' + octet % 10;
                len += 1;
            }
            out.extend_from_slice(&text[..len]);
        }
        IpAddr::V6(ip) => {
            let _ = write!(out, "{ip}");
        }
    }
}

fn version_text(version: Version) -> &'static str {
    match version {
        Version::Http10 => "HTTP/1.0",
        Version::Http11 => "HTTP/1.1",
        Version::Http2 => "HTTP/2.0",
    }
}

/// The first `Referer` and `User-Agent` fields, in one pass over the head
/// (names compared as bytes: no UTF-8 check of every name).
fn referer_and_agent<'a>(request: &Request<'a>) -> (Option<&'a [u8]>, Option<&'a [u8]>) {
    let parts = request.parts();
    let head = parts.head_bytes;
    let (mut referer, mut agent) = (None, None);
    for span in parts.spans {
        let name = slice(head, span.name);
        match name.len() {
            7 if referer.is_none() && name.eq_ignore_ascii_case(b"referer") => {
                referer = Some(slice(head, span.value));
            }
            10 if agent.is_none() && name.eq_ignore_ascii_case(b"user-agent") => {
                agent = Some(slice(head, span.value));
            }
            _ => {}
        }
    }
    (referer, agent)
}

/// Bytes that go into a quoted field as they are: printable ASCII but `"` and `\`.
const PLAIN: [bool; 256] = {
    let mut plain = [false; 256];
    let mut b = 0x20;
    while b < 0x7f {
        plain[b] = b != b'"' as usize && b != b'\\' as usize;
        b += 1;
    }
    plain
};

fn is_plain(b: u8) -> bool {
    PLAIN[usize::from(b)]
}

/// Inside a quoted field of the Apache formats: `"` and `\` escaped with a
/// backslash, bytes outside printable ASCII as `\xHH` (as Apache does), so
/// a line is always one line and a field always ends at its quote.
fn push_clf_escaped(out: &mut Vec<u8>, bytes: &[u8]) {
    if bytes.iter().all(|&b| is_plain(b)) {
        out.extend_from_slice(bytes);
        return;
    }
    for &b in bytes {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            _ if is_plain(b) => out.push(b),
            _ => out.extend_from_slice(&[
                b'\\',
                b'x',
                HEX[usize::from(b >> 4)],
                HEX[usize::from(b & 15)],
            ]),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// A JSON string (or `null`). Text that is not UTF-8 has its bytes above
/// 0x7f escaped one by one (`\u00HH`), so every line is valid JSON.
fn push_json_string(out: &mut Vec<u8>, text: Option<&[u8]>) {
    let Some(bytes) = text else {
        out.extend_from_slice(b"null");
        return;
    };
    out.push(b'"');
    if bytes.iter().all(|&b| is_plain(b)) {
        out.extend_from_slice(bytes);
    } else {
        let utf8 = std::str::from_utf8(bytes).is_ok();
        for &b in bytes {
            match b {
                b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
                _ if is_plain(b) || (utf8 && b >= 0x80) => out.push(b),
                _ => out.extend_from_slice(&[
                    b'\\',
                    b'u',
                    b'0',
                    b'0',
                    HEX[usize::from(b >> 4)],
                    HEX[usize::from(b & 15)],
                ]),
            }
        }
    }
    out.push(b'"');
}
