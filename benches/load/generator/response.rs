//! Parsing one HTTP/1.1 response from a generator connection's buffer:
//! status line, header fields (`Content-Length` required), body.

pub enum Parsed {
    Incomplete,
    Bad,
    Response {
        len: usize,
        status: u16,
        body: (usize, usize),
        /// `Connection: close`: the server will close after this response.
        close: bool,
    },
}

/// Parse one response at the start of `b`: status line, header fields
/// (`Content-Length` required), and a body of exactly that length.
pub fn parse_response(b: &[u8]) -> Parsed {
    let mut at = 0;
    let mut status = 0u16;
    let mut length: Option<usize> = None;
    let mut close = false;
    loop {
        let Some(nl) = b[at..].iter().position(|&c| c == b'\n') else {
            return if b.len() > 16 * 1024 {
                Parsed::Bad
            } else {
                Parsed::Incomplete
            };
        };
        let Some(line) = b[at..at + nl].strip_suffix(b"\r") else {
            return Parsed::Bad;
        };
        let first = at == 0;
        at += nl + 1;
        if first {
            let Some(code) = status_code(line) else {
                return Parsed::Bad;
            };
            status = code;
            continue;
        }
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return Parsed::Bad;
        };
        let (name, value) = (&line[..colon], &line[colon + 1..]);
        if name.eq_ignore_ascii_case(b"content-length") {
            match content_length(value) {
                Some(n) if length.is_none_or(|seen| seen == n) => length = Some(n),
                _ => return Parsed::Bad,
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= value
                .split(|&c| c == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    let Some(length) = length else {
        return Parsed::Bad;
    };
    if b.len() < at + length {
        return Parsed::Incomplete;
    }
    Parsed::Response {
        len: at + length,
        status,
        body: (at, at + length),
        close,
    }
}

/// The status code of a well-formed status line: "HTTP/1.x NNN", then a
/// space and a reason phrase (which may be empty).
fn status_code(line: &[u8]) -> Option<u16> {
    let well_formed = line.len() >= 12
        && line.starts_with(b"HTTP/1.")
        && line[8] == b' '
        && line[9..12].iter().all(u8::is_ascii_digit)
        && (line.len() == 12 || line[12] == b' ');
    well_formed.then(|| {
        line[9..12]
            .iter()
            .fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'))
    })
}

/// A `Content-Length` value: up to 12 digits, optional white space around.
fn content_length(value: &[u8]) -> Option<usize> {
    let value = value.trim_ascii();
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) || value.len() > 12 {
        return None;
    }
    Some(
        value
            .iter()
            .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0')),
    )
}
