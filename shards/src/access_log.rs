//! The access log, seen from one shard: a line per answer, formatted into a
//! shard-local buffer that goes to the writer thread when it fills (or once
//! a second), without ever waiting for it.
//!
//! The shard never touches the disk. It hands a full buffer (64 KiB) to the
//! writer over a bounded channel with `try_send`; when the channel is full
//! (the writer is behind: a slow disk, a stuck pipe) the buffer's lines are
//! dropped and counted in [`ShardStats::access_log_dropped`] instead, and
//! the buffer is reused. The writer sends emptied buffers back over a
//! second channel, so in the steady state logging allocates nothing.
//!
//! Formats ([`AccessLogFormat`]): Apache's `common` and `combined`, as
//! their parsers expect them, and `json`, one object per line with the
//! duration and the shard as well.

use std::cell::{Cell, RefCell};
use std::fmt;
use std::io::Write;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use flume::TrySendError;
use http::StatusCode;
use serde::Deserialize;

use crate::http::{slice, Version};
use crate::listener::PeerAddr;
use crate::request::Request;
use crate::stats::ShardStats;

/// A shard hands its buffer to the writer once it holds this many bytes.
pub const HAND_OFF_AT: usize = 64 * 1024;

/// A new buffer's capacity: the lines of one hand-off and room for the
/// line that crosses [`HAND_OFF_AT`], so appending it rarely grows the buffer.
pub const BUFFER_CAPACITY: usize = HAND_OFF_AT + 8 * 1024;

/// How each access-log line is written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AccessLogFormat {
    /// Apache's Common Log Format:
    /// `127.0.0.1 - - [23/Nov/2026:10:00:00 +0000] "GET / HTTP/1.1" 200 13`.
    Common,
    /// `common` then the `Referer` and `User-Agent` request fields, quoted
    /// (Apache's and nginx's default).
    #[default]
    Combined,
    /// One JSON object per line: time, shard, peer, method, target, version,
    /// status, bytes, duration_us, referer, user_agent.
    Json,
}

impl AccessLogFormat {
    /// Every format's name, as the config file and the flags spell it.
    pub const NAMES: [&'static str; 3] = ["common", "combined", "json"];

    /// The name, as the config file and the flags spell it.
    pub fn name(self) -> &'static str {
        match self {
            AccessLogFormat::Common => "common",
            AccessLogFormat::Combined => "combined",
            AccessLogFormat::Json => "json",
        }
    }
}

impl FromStr for AccessLogFormat {
    type Err = String;

    fn from_str(name: &str) -> Result<Self, String> {
        match name {
            "common" => Ok(AccessLogFormat::Common),
            "combined" => Ok(AccessLogFormat::Combined),
            "json" => Ok(AccessLogFormat::Json),
            _ => Err(format!(
                "unknown access-log format {name:?} (expected common, combined or json)"
            )),
        }
    }
}

impl fmt::Display for AccessLogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where a shard sends its access-log lines: the writer's channel of full
/// buffers, and the channel on which it returns them emptied.
#[derive(Clone, Debug)]
pub struct AccessLogSink {
    /// How lines are written.
    pub format: AccessLogFormat,
    /// Full buffers to the writer (bounded: a full channel drops lines).
    pub lines: flume::Sender<Vec<u8>>,
    /// Emptied buffers back from the writer, for reuse.
    pub spare: flume::Receiver<Vec<u8>>,
}

/// One shard's access log: its buffer and its end of the writer's channels.
pub(crate) struct AccessLog {
    format: AccessLogFormat,
    shard: usize,
    lines: flume::Sender<Vec<u8>>,
    spare: flume::Receiver<Vec<u8>>,
    stats: Arc<ShardStats>,
    buffer: RefCell<Vec<u8>>,
    /// Lines in `buffer`: what is counted as dropped if it cannot be handed off.
    buffered_lines: Cell<u64>,
    /// The current second, formatted; refreshed with the `Date` cache.
    time: Cell<Timestamps>,
    /// A drop has been logged (once per shard: the count says the rest).
    warned: Cell<bool>,
}

impl AccessLog {
    /// The access log of shard `shard`, writing to `sink`.
    pub(crate) fn new(sink: AccessLogSink, shard: usize, stats: Arc<ShardStats>) -> Self {
        AccessLog {
            format: sink.format,
            shard,
            buffer: RefCell::new(Vec::with_capacity(BUFFER_CAPACITY)),
            lines: sink.lines,
            spare: sink.spare,
            stats,
            buffered_lines: Cell::new(0),
            time: Cell::new(Timestamps::at(SystemTime::now())),
            warned: Cell::new(false),
        }
    }

    /// Log an answered request: `status` as sent, `body_bytes` the length
    /// of the body (`None`: a stream, not known when the head is encoded),
    /// `took` from the start of the request's batch to its encoded answer.
    pub(crate) fn record(
        &self,
        request: &Request<'_>,
        status: StatusCode,
        body_bytes: Option<usize>,
        took: Duration,
    ) {
        self.write_line(Line {
            peer: request.peer(),
            request: Some(request),
            status,
            body_bytes,
            took: Some(took),
        });
    }

    /// Log a request refused before it reached the app (a 4xx or 5xx from
    /// the codec, a 408): no method or target to show.
    pub(crate) fn record_refusal(&self, peer: &PeerAddr, status: StatusCode, body_bytes: usize) {
        self.write_line(Line {
            peer,
            request: None,
            status,
            body_bytes: Some(body_bytes),
            took: None,
        });
    }

    /// Once a second: a new time for the lines to come, and the lines so far to the writer.
    pub(crate) fn tick(&self) {
        self.time.set(Timestamps::at(SystemTime::now()));
        self.flush();
    }

    /// Hand what is buffered to the writer now.
    pub(crate) fn flush(&self) {
        let mut buffer = self.buffer.borrow_mut();
        if !buffer.is_empty() {
            self.hand_off(&mut buffer);
        }
    }

    fn write_line(&self, line: Line<'_>) {
        let mut buffer = self.buffer.borrow_mut();
        let time = self.time.get();
        match self.format {
            AccessLogFormat::Common => line.common(&time, &mut buffer),
            AccessLogFormat::Combined => {
                line.common(&time, &mut buffer);
                line.referer_and_agent(&mut buffer);
            }
            AccessLogFormat::Json => line.json(&time, self.shard, &mut buffer),
        }
        buffer.push(b'\n');
        self.buffered_lines.set(self.buffered_lines.get() + 1);
        if buffer.len() >= HAND_OFF_AT {
            self.hand_off(&mut buffer);
        }
    }

    /// Send `buffer` to the writer and take a spare one, or, if the writer
    /// is behind (or gone), count its lines as dropped and reuse it.
    fn hand_off(&self, buffer: &mut Vec<u8>) {
        let lines = self.buffered_lines.replace(0);
        let full = std::mem::take(buffer);
        match self.lines.try_send(full) {
            Ok(()) => {
                *buffer = self
                    .spare
                    .try_recv()
                    .unwrap_or_else(|_| Vec::with_capacity(BUFFER_CAPACITY));
            }
            Err(TrySendError::Full(mut full) | TrySendError::Disconnected(mut full)) => {
                full.clear();
                *buffer = full;
                self.stats.access_log_dropped.fetch_add(lines, Relaxed);
                if !self.warned.replace(true) {
                    log::warn!(
                        "shard {}: the access-log writer is behind; dropping lines \
                         (counted in the shard stats as access_log_dropped)",
                        self.shard
                    );
                }
            }
        }
    }
}

impl Drop for AccessLog {
    /// The shard is ending (drained, or its thread died): its last lines go too.
    fn drop(&mut self) {
        self.flush();
    }
}

/// The current second in the two shapes the formats use.
#[derive(Clone, Copy, Debug)]
struct Timestamps {
    /// `23/Nov/2026:10:00:00 +0000`
    clf: [u8; 26],
    /// `2026-11-23T10:00:00Z`
    iso: [u8; 20],
}

const MONTHS: [&str; 12] = [
    "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
];

impl Timestamps {
    /// `now` in UTC (into stack buffers: no allocation).
    fn at(now: SystemTime) -> Self {
        let secs = now.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs();
        let (year, month, day) = civil_from_days(secs / 86_400);
        let (hour, minute, second) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
        let mut stamps = Timestamps {
            clf: [b' '; 26],
            iso: [b' '; 20],
        };
        let month_name = MONTHS[(month - 1) as usize];
        let _ = write!(
            &mut stamps.clf[..],
            "{day:02}/{month_name}/{year:04}:{hour:02}:{minute:02}:{second:02} +0000"
        );
        let _ = write!(
            &mut stamps.iso[..],
            "{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z"
        );
        stamps
    }
}

/// Days since 1970-01-01 → (year, month 1–12, day 1–31), proleptic
/// Gregorian (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

/// What one line says.
struct Line<'a> {
    peer: &'a PeerAddr,
    /// `None` for a request refused before it was decoded.
    request: Option<&'a Request<'a>>,
    status: StatusCode,
    body_bytes: Option<usize>,
    took: Option<Duration>,
}

impl Line<'_> {
    /// `host - - [time] "METHOD target VERSION" status bytes`
    fn common(&self, time: &Timestamps, out: &mut Vec<u8>) {
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
    fn referer_and_agent(&self, out: &mut Vec<u8>) {
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
    fn json(&self, time: &Timestamps, shard: usize, out: &mut Vec<u8>) {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Decoded, ReadBuffers, RequestReader};
    use crate::limits::Limits;

    /// 1994-11-06 08:49:37 UTC, the example of RFC 9110.
    const EXAMPLE_SECS: u64 = 784_111_777;

    fn sink(format: AccessLogFormat, capacity: usize) -> (AccessLogSink, flume::Receiver<Vec<u8>>) {
        let (lines, written) = flume::bounded(capacity);
        let (_, spare) = flume::bounded(capacity);
        (
            AccessLogSink {
                format,
                lines,
                spare,
            },
            written,
        )
    }

    /// Log `raw` (one request) answered `status` with `bytes`, at the example time; the line.
    fn line_for(
        format: AccessLogFormat,
        raw: &[u8],
        peer: PeerAddr,
        status: u16,
        bytes: Option<usize>,
    ) -> String {
        let (sink, written) = sink(format, 4);
        let log = AccessLog::new(sink, 3, Arc::default());
        log.time.set(Timestamps::at(
            UNIX_EPOCH + Duration::from_secs(EXAMPLE_SECS),
        ));
        let mut input = ReadBuffers::default();
        let mut reader = RequestReader::default();
        reader.feed(&mut input, raw);
        let Decoded::Request(parts) = reader.decode(&mut input, &Limits::default()) else {
            panic!("not a request: {raw:?}");
        };
        let request = Request::from_parts(parts, &peer);
        log.record(
            &request,
            StatusCode::from_u16(status).unwrap(),
            bytes,
            Duration::from_micros(1234),
        );
        drop(log);
        String::from_utf8(written.try_recv().expect("flushed on drop")).unwrap()
    }

    fn peer() -> PeerAddr {
        PeerAddr::Tcp("192.0.2.7:51000".parse().unwrap())
    }

    #[test]
    fn timestamps_agree_with_httpdate() {
        let stamps = Timestamps::at(UNIX_EPOCH + Duration::from_secs(EXAMPLE_SECS));
        assert_eq!(&stamps.clf, b"06/Nov/1994:08:49:37 +0000");
        assert_eq!(&stamps.iso, b"1994-11-06T08:49:37Z");
        // Every day of four years around a leap day, against httpdate.
        for day in 0..(4 * 366) {
            let secs = 1_583_020_800 - 2 * 366 * 86_400 + day * 86_400 + 45_296;
            let time = UNIX_EPOCH + Duration::from_secs(secs);
            let http = httpdate::fmt_http_date(time); // "Sun, 06 Nov 1994 08:49:37 GMT"
            let stamps = Timestamps::at(time);
            let clf = std::str::from_utf8(&stamps.clf).unwrap();
            let expected = format!(
                "{}/{}/{}:{} +0000",
                &http[5..7],
                &http[8..11],
                &http[12..16],
                &http[17..25]
            );
            assert_eq!(clf, expected, "{http}");
        }
    }

    #[test]
    fn common_and_combined_lines() {
        let raw =
            b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nReferer: http://r/\r\nUser-Agent: curl/8\r\n\r\n";
        assert_eq!(
            line_for(AccessLogFormat::Common, raw, peer(), 200, Some(13)),
            "192.0.2.7 - - [06/Nov/1994:08:49:37 +0000] \"GET /a?b=1 HTTP/1.1\" 200 13\n"
        );
        assert_eq!(
            line_for(AccessLogFormat::Combined, raw, peer(), 404, Some(0)),
            "192.0.2.7 - - [06/Nov/1994:08:49:37 +0000] \"GET /a?b=1 HTTP/1.1\" 404 - \
             \"http://r/\" \"curl/8\"\n"
        );
        let bare = b"GET / HTTP/1.0\r\n\r\n";
        assert_eq!(
            line_for(
                AccessLogFormat::Combined,
                bare,
                PeerAddr::Unknown,
                200,
                None
            ),
            "- - - [06/Nov/1994:08:49:37 +0000] \"GET / HTTP/1.0\" 200 - \"-\" \"-\"\n"
        );
    }

    #[test]
    fn quotes_backslashes_and_odd_bytes_are_escaped() {
        let raw = b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: a\"b\\c\xffd\r\n\r\n";
        let line = line_for(AccessLogFormat::Combined, raw, peer(), 200, Some(1));
        assert!(line.ends_with(" \"-\" \"a\\\"b\\\\c\\xffd\"\n"), "{line}");
        let json = line_for(AccessLogFormat::Json, raw, peer(), 200, Some(1));
        assert!(json.contains(r#""user_agent":"a\"b\\c\u00ffd""#), "{json}");
        let utf8 = "GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: café\r\n\r\n";
        let json = line_for(AccessLogFormat::Json, utf8.as_bytes(), peer(), 200, Some(1));
        assert!(json.contains(r#""user_agent":"café""#), "{json}");
    }

    #[test]
    fn json_line_has_every_field() {
        let raw = b"POST /x HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nUser-Agent: t\r\n\r\nhi";
        assert_eq!(
            line_for(AccessLogFormat::Json, raw, peer(), 201, Some(5)),
            "{\"time\":\"1994-11-06T08:49:37Z\",\"shard\":3,\"peer\":\"192.0.2.7:51000\",\
             \"method\":\"POST\",\"target\":\"/x\",\"version\":\"HTTP/1.1\",\"status\":201,\
             \"bytes\":5,\"duration_us\":1234,\"referer\":null,\"user_agent\":\"t\"}\n"
        );
    }

    #[test]
    fn peers_are_shown_as_display_shows_them() {
        let raw = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        for addr in [
            "10.0.0.255:1",
            "100.99.10.9:80",
            "[::1]:8080",
            "[2001:db8::7]:65535",
        ] {
            let addr: std::net::SocketAddr = addr.parse().unwrap();
            let json = line_for(
                AccessLogFormat::Json,
                raw,
                PeerAddr::Tcp(addr),
                200,
                Some(1),
            );
            assert!(json.contains(&format!("\"peer\":\"{addr}\"")), "{json}");
            let common = line_for(
                AccessLogFormat::Common,
                raw,
                PeerAddr::Tcp(addr),
                200,
                Some(1),
            );
            assert!(
                common.starts_with(&format!("{} - - [", addr.ip())),
                "{common}"
            );
        }
    }

    #[test]
    fn refusals_have_no_request() {
        let (sink, written) = sink(AccessLogFormat::Json, 4);
        let log = AccessLog::new(sink, 0, Arc::default());
        log.record_refusal(&PeerAddr::Unknown, StatusCode::BAD_REQUEST, 12);
        log.flush();
        let line = String::from_utf8(written.try_recv().unwrap()).unwrap();
        assert!(
            line.ends_with(
                "\"peer\":null,\"method\":null,\"target\":null,\"version\":null,\"status\":400,\
                 \"bytes\":12,\"duration_us\":null,\"referer\":null,\"user_agent\":null}\n"
            ),
            "{line}"
        );
    }

    #[test]
    fn a_full_writer_queue_drops_and_counts_and_reuses_the_buffer() {
        let (sink, written) = sink(AccessLogFormat::Common, 1);
        let stats = Arc::new(ShardStats::default());
        let log = AccessLog::new(sink, 0, stats.clone());
        let peer = PeerAddr::Unknown;
        let request = Request::new("GET", "/", ::http::Version::HTTP_11, b"", &peer);
        let mut logged = 0u64;
        // The first full buffer takes the queue's one slot; the next is dropped.
        while stats.snapshot().access_log_dropped == 0 {
            log.record(&request, StatusCode::OK, Some(2), Duration::ZERO);
            logged += 1;
            assert!(logged < 10_000, "nothing dropped");
        }
        let queued = written.try_recv().unwrap();
        let queued = queued.iter().filter(|&&b| b == b'\n').count() as u64;
        assert_eq!(stats.snapshot().access_log_dropped, logged - queued);
        assert_eq!(log.buffered_lines.get(), 0);
        let buffer = log.buffer.borrow();
        assert!(
            buffer.is_empty() && buffer.capacity() >= HAND_OFF_AT,
            "the buffer is reused"
        );
    }
}
