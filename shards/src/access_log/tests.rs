//! Unit tests of the access log: each format's line, escaping, and what a
//! full writer queue does.

use std::time::UNIX_EPOCH;

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
    let raw = b"GET /a?b=1 HTTP/1.1\r\nHost: x\r\nReferer: http://r/\r\nUser-Agent: curl/8\r\n\r\n";
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
