//! The one HTTP/1.x response parser, and checks on what a response says.

use std::io::{self, ErrorKind};
use std::time::{SystemTime, UNIX_EPOCH};

/// One parsed HTTP/1.x response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// e.g. `HTTP/1.1`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// In the order received; names as sent, values without surrounding whitespace.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The value of header `name` (case-insensitive), if sent; panics if it was sent more than once.
    pub fn header(&self, name: &str) -> Option<&str> {
        let values = header_values(&self.headers, name);
        assert!(
            values.len() <= 1,
            "header {name} sent more than once: {:?}",
            self.headers
        );
        values.first().copied()
    }

    /// The body as text; panics if it is not UTF-8.
    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }

    /// Whether the response says `Connection: close`.
    pub fn closes(&self) -> bool {
        self.header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// Parses the response at the start of `buf`, the answer to a `method`
/// request; `closed` says the server has closed, so no byte follows `buf`.
/// Returns the response and how many bytes of `buf` it took, `Ok(None)` if
/// it is not complete yet, or an `InvalidData` error if it is malformed.
///
/// Where the body ends (RFC 9112 §6.3), by the first rule that applies:
/// 1. a response to `HEAD`, and every 1xx, 204 and 304 response, has no
///    body, whatever its headers say;
/// 2. `Transfer-Encoding: chunked` (and no `Content-Length`) is decoded
///    strictly (hex sizes, CRLF after every line, no trailers); any other
///    coding, or both fields, is an error;
/// 3. `Content-Length` (sent once, digits only) is the body's length; a
///    repeated or malformed one is an error;
/// 4. otherwise the body is everything up to the close: the response is
///    not complete until `closed`.
pub fn parse_response(
    buf: &[u8],
    method: &str,
    closed: bool,
) -> io::Result<Option<(HttpResponse, usize)>> {
    let bad = |why: &str| {
        io::Error::new(
            ErrorKind::InvalidData,
            format!("{why}: {:?}", String::from_utf8_lossy(buf)),
        )
    };
    let Some(head_end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = std::str::from_utf8(&buf[..head_end]).map_err(|_| bad("non-UTF-8 head"))?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default().to_owned();
    if !version.starts_with("HTTP/1.") {
        return Err(bad("not an HTTP/1.x status line"));
    }
    let status: u16 = parts
        .next()
        .filter(|code| code.len() == 3 && code.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| bad("bad status code"))?;
    let reason = parts.next().unwrap_or_default().to_owned();
    let mut headers = Vec::new();
    for line in lines {
        let (name, value) = line.split_once(':').ok_or_else(|| bad("bad header line"))?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace()) {
            return Err(bad("bad header name"));
        }
        let value = value.trim_matches([' ', '\t']);
        headers.push((name.to_owned(), value.to_owned()));
    }
    let body_start = head_end + 4;
    let bodyless = method == "HEAD" || status < 200 || status == 204 || status == 304;
    let lengths = header_values(&headers, "Content-Length");
    let body_end = if bodyless {
        body_start
    } else if let Some(&coding) = header_values(&headers, "Transfer-Encoding").first() {
        if coding != "chunked" || !lengths.is_empty() {
            return Err(bad("Transfer-Encoding other than chunked alone"));
        }
        let Some((body, end)) = dechunk(&buf[body_start..]).map_err(&bad)? else {
            return Ok(None);
        };
        let response = HttpResponse {
            version,
            status,
            reason,
            headers,
            body,
        };
        return Ok(Some((response, body_start + end)));
    } else if let Some(&length) = lengths.first() {
        if lengths.len() > 1 {
            return Err(bad("Content-Length sent more than once"));
        }
        if length.is_empty() || !length.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("bad Content-Length"));
        }
        let length: usize = length.parse().map_err(|_| bad("bad Content-Length"))?;
        if buf.len() < body_start + length {
            return Ok(None);
        }
        body_start + length
    } else if closed {
        buf.len()
    } else {
        return Ok(None);
    };
    let response = HttpResponse {
        version,
        status,
        reason,
        headers,
        body: buf[body_start..body_end].to_vec(),
    };
    Ok(Some((response, body_end)))
}

/// Decodes a chunked body at the start of `buf`: the body and the bytes it
/// took, `None` if it is not complete yet.
fn dechunk(buf: &[u8]) -> Result<Option<(Vec<u8>, usize)>, &'static str> {
    let mut body = Vec::new();
    let mut at = 0;
    loop {
        let Some(line_end) = buf[at..].windows(2).position(|w| w == b"\r\n") else {
            return Ok(None);
        };
        let size_text =
            std::str::from_utf8(&buf[at..at + line_end]).map_err(|_| "bad chunk size")?;
        let size = usize::from_str_radix(size_text, 16).map_err(|_| "bad chunk size")?;
        at += line_end + 2;
        if buf.len() < at + size + 2 {
            return Ok(None);
        }
        if &buf[at + size..at + size + 2] != b"\r\n" {
            return Err("chunk not followed by CRLF");
        }
        body.extend_from_slice(&buf[at..at + size]);
        at += size + 2;
        if size == 0 {
            return Ok(Some((body, at)));
        }
    }
}

/// Returns the values of every `name` field in `headers` (case-insensitive), in order.
fn header_values<'h>(headers: &'h [(String, String)], name: &str) -> Vec<&'h str> {
    headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
        .collect()
}

/// Asserts `value` is an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) with
/// the right weekday, within a few seconds of now.
pub fn assert_valid_date(value: &str) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    fn fail(value: &str) -> ! {
        panic!("Date {value:?} is not an IMF-fixdate")
    }
    let b = value.as_bytes();
    if b.len() != 29 || &value[3..5] != ", " || &value[25..] != " GMT" {
        fail(value);
    }
    let num = |range: std::ops::Range<usize>| -> i64 {
        let text = &value[range];
        if !text.bytes().all(|c| c.is_ascii_digit()) {
            fail(value);
        }
        text.parse().unwrap()
    };
    let (day, year) = (num(5..7), num(12..16));
    let (hour, minute, second) = (num(17..19), num(20..22), num(23..25));
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        fail(value);
    }
    let month = MONTHS
        .iter()
        .position(|m| *m == &value[8..11])
        .unwrap_or_else(|| fail(value)) as i64
        + 1;
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        fail(value);
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    assert_eq!(
        &value[..3],
        DAYS[days.rem_euclid(7) as usize],
        "Date {value:?} has the wrong weekday"
    );
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (secs - now).abs() <= 5,
        "Date {value:?} is {} s away from now",
        secs - now
    );
}
