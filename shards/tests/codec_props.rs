//! Property tests of the sans-IO codec, driven the way the connection loop
//! drives it: bytes arrive in arbitrary pieces, complete requests are taken
//! off the front of the buffer in order.
//!
//! Case counts are modest so CI stays fast; raise them with
//! `PROPTEST_CASES=10000 cargo test -p shardd-shards --test codec_props`.

use proptest::prelude::*;
use shardd_shards::http::{
    decode_chunked, decode_head, slice, ChunkedDecoder, ChunkedStatus, Framing, HeaderSpan,
    HttpError, Version,
};
use shardd_shards::Limits;

/// What the app would see of one request.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Seen {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    keep_alive: bool,
    version: Version,
}

/// One generated request and how it is framed on the wire.
#[derive(Clone, Debug)]
enum Framed {
    NoBody,
    Length,
    /// The body split into these chunk sizes, each with an optional
    /// extension and upper-case hex, plus optional trailer fields.
    Chunked {
        sizes: Vec<usize>,
        extensions: bool,
        upper: bool,
        trailers: Vec<(String, String)>,
    },
}

#[derive(Clone, Debug)]
struct Req {
    method: &'static str,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    framed: Framed,
    close: bool,
}

impl Req {
    fn encode(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: example.test\r\n",
            self.method, self.target
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        match &self.framed {
            Framed::NoBody => out.extend_from_slice(b"\r\n"),
            Framed::Length => {
                out.extend_from_slice(
                    format!("Content-Length: {}\r\n\r\n", self.body.len()).as_bytes(),
                );
                out.extend_from_slice(&self.body);
            }
            Framed::Chunked {
                sizes,
                extensions,
                upper,
                trailers,
            } => {
                out.extend_from_slice(b"Transfer-Encoding: chunked\r\n\r\n");
                let mut at = 0;
                for &size in sizes {
                    let hex = if *upper {
                        format!("{size:X}")
                    } else {
                        format!("{size:x}")
                    };
                    out.extend_from_slice(hex.as_bytes());
                    if *extensions {
                        out.extend_from_slice(b";ext=\"v\"");
                    }
                    out.extend_from_slice(b"\r\n");
                    out.extend_from_slice(&self.body[at..at + size]);
                    out.extend_from_slice(b"\r\n");
                    at += size;
                }
                out.extend_from_slice(b"0\r\n");
                for (name, value) in trailers {
                    out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
                }
                out.extend_from_slice(b"\r\n");
            }
        }
        out
    }

    fn seen(&self) -> Seen {
        let mut headers = vec![("Host".to_owned(), "example.test".to_owned())];
        headers.extend(self.headers.iter().cloned());
        if self.close {
            headers.push(("Connection".into(), "close".into()));
        }
        match &self.framed {
            Framed::NoBody => {}
            Framed::Length => {
                headers.push(("Content-Length".into(), self.body.len().to_string()));
            }
            Framed::Chunked { .. } => {
                headers.push(("Transfer-Encoding".into(), "chunked".into()));
            }
        }
        Seen {
            method: self.method.to_owned(),
            target: self.target.clone(),
            headers,
            body: self.body.clone(),
            keep_alive: !self.close,
            version: Version::Http11,
        }
    }
}

/// The connection loop's use of the codec, without the socket.
struct Driver {
    limits: Limits,
    read: Vec<u8>,
    start: usize,
    spans: Vec<HeaderSpan>,
    body: Vec<u8>,
    /// After a `Connection: close` request nothing more is parsed.
    closed: bool,
}

impl Driver {
    fn new(limits: Limits) -> Self {
        Driver {
            limits,
            read: Vec::new(),
            start: 0,
            spans: Vec::new(),
            body: Vec::new(),
            closed: false,
        }
    }

    /// Append `bytes` and return every request now complete, in order.
    fn feed(&mut self, bytes: &[u8]) -> Result<Vec<Seen>, HttpError> {
        self.read.extend_from_slice(bytes);
        let mut out = Vec::new();
        while !self.closed && self.start < self.read.len() {
            let avail = &self.read[self.start..];
            let Some(head) = decode_head(avail, &self.limits, &mut self.spans)? else {
                break;
            };
            assert!(head.len <= avail.len());
            let rest = &avail[head.len..];
            let (body, consumed) = match head.framing {
                Framing::None => (Vec::new(), head.len),
                Framing::Length(n) if rest.len() >= n => (rest[..n].to_vec(), head.len + n),
                Framing::Length(_) => break,
                Framing::Chunked => match decode_chunked(
                    rest,
                    self.limits.max_body_bytes,
                    self.limits.max_head_bytes,
                    &mut self.body,
                )? {
                    ChunkedStatus::Complete { consumed } => {
                        assert!(consumed <= rest.len());
                        (self.body.clone(), head.len + consumed)
                    }
                    ChunkedStatus::Partial => break,
                },
            };
            let text = |span| String::from_utf8_lossy(slice(avail, span)).into_owned();
            out.push(Seen {
                method: text(head.method),
                target: text(head.target),
                headers: self
                    .spans
                    .iter()
                    .map(|s| (text(s.name), text(s.value)))
                    .collect(),
                body,
                keep_alive: head.keep_alive,
                version: head.version,
            });
            self.start += consumed;
            if !head.keep_alive {
                self.closed = true;
            }
        }
        // Compact like the connection does, so offsets restart at 0.
        if self.start == self.read.len() {
            self.read.clear();
            self.start = 0;
        }
        Ok(out)
    }

    fn leftover(&self) -> usize {
        self.read.len() - self.start
    }
}

fn header_field() -> impl Strategy<Value = (String, String)> {
    (
        "X-[A-Za-z0-9-]{1,10}",
        // Visible ASCII with inner spaces, no leading or trailing whitespace.
        "[!-~]([ -~]{0,20}[!-~])?",
    )
}

fn target() -> impl Strategy<Value = String> {
    (
        "/[a-zA-Z0-9/._~-]{0,24}",
        proptest::option::of("[a-z0-9=&%]{0,16}"),
    )
        .prop_map(|(path, query)| match query {
            Some(q) => format!("{path}?{q}"),
            None => path,
        })
}

/// Split `len` bytes into chunk sizes (each at least 1).
fn chunk_sizes(len: usize, cuts: Vec<usize>) -> Vec<usize> {
    if len == 0 {
        return Vec::new();
    }
    let mut points: Vec<usize> = cuts
        .into_iter()
        .map(|c| 1 + c % len)
        .filter(|&c| c < len)
        .collect();
    points.push(0);
    points.push(len);
    points.sort_unstable();
    points.dedup();
    points.windows(2).map(|w| w[1] - w[0]).collect()
}

fn request() -> impl Strategy<Value = Req> {
    let headers = prop::collection::vec(header_field(), 0..5);
    let body = prop::collection::vec(any::<u8>(), 0..200);
    (
        0..3u8,
        prop::sample::select(vec![
            "GET", "HEAD", "DELETE", "OPTIONS", "POST", "PUT", "PATCH",
        ]),
        target(),
        headers,
        body,
        prop::collection::vec(any::<usize>(), 0..6),
        any::<bool>(),
        any::<bool>(),
        prop::collection::vec(header_field(), 0..3),
    )
        .prop_map(
            |(kind, method, target, headers, body, cuts, extensions, upper, trailers)| {
                let (body, framed) = match kind {
                    0 => (Vec::new(), Framed::NoBody),
                    1 => (body, Framed::Length),
                    _ => {
                        let sizes = chunk_sizes(body.len(), cuts);
                        (
                            body,
                            Framed::Chunked {
                                sizes,
                                extensions,
                                upper,
                                trailers,
                            },
                        )
                    }
                };
                Req {
                    method,
                    target,
                    headers,
                    body,
                    framed,
                    close: false,
                }
            },
        )
}

/// Cut `len` bytes at these points (sorted, deduplicated) into pieces.
fn pieces(stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    points.dedup();
    points
        .windows(2)
        .map(|w| stream[w[0]..w[1]].to_vec())
        .collect()
}

fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default);
    ProptestConfig {
        cases,
        failure_persistence: None,
        ..ProptestConfig::default()
    }
}

proptest! {
    #![proptest_config(cases(128))]

    /// Any split of a pipelined stream parses to the same requests, in order.
    #[test]
    fn any_split_of_a_pipeline_parses_the_same(
        reqs in prop::collection::vec(request(), 1..8),
        close_last in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        let mut reqs = reqs;
        if close_last {
            reqs.last_mut().unwrap().close = true;
        }
        let stream: Vec<u8> = reqs.iter().flat_map(Req::encode).collect();
        let expected: Vec<Seen> = reqs.iter().map(Req::seen).collect();

        // All at once.
        let mut whole = Driver::new(Limits::default());
        let got = whole.feed(&stream).unwrap();
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(whole.leftover(), 0);

        // In arbitrary pieces.
        let mut split = Driver::new(Limits::default());
        let mut got = Vec::new();
        for piece in pieces(&stream, &cuts) {
            got.extend(split.feed(&piece).unwrap());
        }
        prop_assert_eq!(&got, &expected);
        prop_assert_eq!(split.leftover(), 0);
    }

    /// Byte at a time: the worst split, every prefix is "need more", never an error.
    #[test]
    fn byte_at_a_time_parses_the_same(reqs in prop::collection::vec(request(), 1..4)) {
        let stream: Vec<u8> = reqs.iter().flat_map(Req::encode).collect();
        let expected: Vec<Seen> = reqs.iter().map(Req::seen).collect();
        let mut driver = Driver::new(Limits::default());
        let mut got = Vec::new();
        for byte in &stream {
            got.extend(driver.feed(std::slice::from_ref(byte)).unwrap());
        }
        prop_assert_eq!(got, expected);
        prop_assert_eq!(driver.leftover(), 0);
    }

    /// What follows a complete request does not change how it is read.
    #[test]
    fn trailing_bytes_do_not_change_a_request(
        req in request(),
        junk in prop::collection::vec(any::<u8>(), 0..64),
    ) {
        let raw = req.encode();
        let limits = Limits::default();
        let mut spans = Vec::new();
        let alone = decode_head(&raw, &limits, &mut spans).unwrap().unwrap();
        let mut followed = raw.clone();
        followed.extend_from_slice(&junk);
        let mut spans2 = Vec::new();
        let with_junk = decode_head(&followed, &limits, &mut spans2).unwrap().unwrap();
        prop_assert_eq!(alone, with_junk);
        prop_assert_eq!(spans, spans2);
    }

    /// Arbitrary bytes never panic the head decoder, whatever the limits,
    /// and whatever it returns points inside the input.
    #[test]
    fn arbitrary_bytes_never_panic_decode_head(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        max_request_line in 16usize..300,
        extra_head in 0usize..600,
        max_headers in 1usize..=128,
        max_body in 0usize..5000,
    ) {
        let limits = Limits {
            max_request_line,
            max_head_bytes: max_request_line + extra_head,
            max_headers,
            max_body_bytes: max_body,
            ..Limits::default()
        };
        let mut spans = Vec::new();
        if let Ok(Some(head)) = decode_head(&bytes, &limits, &mut spans) {
            prop_assert!(head.len <= bytes.len());
            prop_assert!(head.len <= limits.max_head_bytes);
            let _ = slice(&bytes, head.method);
            let _ = slice(&bytes, head.target);
            for span in &spans {
                let _ = slice(&bytes[..head.len], span.name);
                let _ = slice(&bytes[..head.len], span.value);
            }
            if let Framing::Length(n) = head.framing {
                prop_assert!(n <= max_body);
            }
        }
    }

    /// Arbitrary bytes (and HTTP-looking ones) never panic the chunked decoder.
    #[test]
    fn arbitrary_bytes_never_panic_decode_chunked(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        chunky in prop::collection::vec(
            prop::sample::select(vec![
                &b"0"[..], b"1", b"a", b"F", b"ffffffffffffffffff", b"\r\n", b"\n", b"\r",
                b";", b"x=y", b" ", b"\t", b"hello", b":", b"X-T: 1", b"\0",
            ]),
            0..40,
        ),
        max_body in 0usize..300,
        max_trailers in 0usize..300,
    ) {
        let mut out = Vec::new();
        for input in [bytes, chunky.concat()] {
            match decode_chunked(&input, max_body, max_trailers, &mut out) {
                Ok(ChunkedStatus::Complete { consumed }) => {
                    prop_assert!(consumed <= input.len());
                    prop_assert!(out.len() <= max_body);
                }
                Ok(ChunkedStatus::Partial) => prop_assert!(out.len() <= max_body),
                Err(_) => {}
            }
        }
    }

    /// Mutating one byte of a valid pipeline never panics the driver.
    #[test]
    fn corrupted_pipelines_never_panic(
        reqs in prop::collection::vec(request(), 1..4),
        flips in prop::collection::vec((any::<usize>(), any::<u8>()), 1..4),
        cuts in prop::collection::vec(any::<usize>(), 0..10),
    ) {
        let mut stream: Vec<u8> = reqs.iter().flat_map(Req::encode).collect();
        for (at, byte) in flips {
            let len = stream.len();
            stream[at % len] = byte;
        }
        let mut driver = Driver::new(Limits::default());
        for piece in pieces(&stream, &cuts) {
            if driver.feed(&piece).is_err() {
                break;
            }
        }
    }
}

#[test]
fn chunk_sizes_cover_the_body() {
    assert_eq!(chunk_sizes(0, vec![3]), Vec::<usize>::new());
    assert_eq!(chunk_sizes(5, vec![]), vec![5]);
    assert_eq!(chunk_sizes(5, vec![1, 2]).iter().sum::<usize>(), 5);
}

/// A chunk line's length limit must not depend on where the reads split it.
#[test]
fn long_chunk_line_is_judged_the_same_whole_or_split() {
    let mut raw = b"5;".to_vec();
    raw.extend(std::iter::repeat_n(b'e', 1100));
    raw.extend_from_slice(b"\r\nhello\r\n0\r\n\r\n");
    let mut out = Vec::new();
    let whole = decode_chunked(&raw, 1 << 20, 16 * 1024, &mut out).is_ok();
    // The connection loop calls again with what has arrived so far.
    let first_read = decode_chunked(&raw[..1030], 1 << 20, 16 * 1024, &mut out).is_ok();
    assert_eq!(
        whole,
        first_read,
        "whole: {:?}, first 1030 bytes: {:?}",
        decode_chunked(&raw, 1 << 20, 16 * 1024, &mut out),
        decode_chunked(&raw[..1030], 1 << 20, 16 * 1024, &mut out)
    );
}

/// A chunked body encoded with the given chunk sizes, extensions and a trailer.
fn chunked_encoding(body: &[u8], sizes: &[usize]) -> Vec<u8> {
    let mut raw = Vec::new();
    let mut at = 0;
    for (i, &size) in sizes.iter().enumerate() {
        raw.extend_from_slice(format!("{size:x}").as_bytes());
        if i % 2 == 1 {
            raw.extend_from_slice(b";ext=v");
        }
        raw.extend_from_slice(b"\r\n");
        raw.extend_from_slice(&body[at..at + size]);
        raw.extend_from_slice(b"\r\n");
        at += size;
    }
    raw.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
    raw
}

proptest! {
    #![proptest_config(cases(128))]

    /// The connection loop decodes chunked bodies incrementally and drops the
    /// framing it has consumed after every read. Whatever the read split,
    /// that must give the same body and end at the same byte as decoding the
    /// whole encoding at once.
    #[test]
    fn incremental_chunked_decode_matches_whole_decode(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(0usize..700, 0..12),
        reads in proptest::collection::vec(1usize..64, 1..40),
    ) {
        let sizes = chunk_sizes(body.len(), cuts);
        let mut raw = chunked_encoding(&body, &sizes);
        raw.extend_from_slice(b"GET /next");
        let mut whole = Vec::new();
        let expected = decode_chunked(&raw, 1 << 20, 1 << 14, &mut whole).unwrap();

        let mut decoder = ChunkedDecoder::default();
        let mut decoded = Vec::new();
        let mut window: Vec<u8> = Vec::new();
        let (mut fed, mut dropped, mut read) = (0, 0, 0);
        let end = loop {
            let step = reads[read % reads.len()].min(raw.len() - fed);
            read += 1;
            window.extend_from_slice(&raw[fed..fed + step]);
            fed += step;
            match decoder.decode(&window, 1 << 20, 1 << 14, &mut decoded).unwrap() {
                ChunkedStatus::Complete { consumed } => break dropped + consumed,
                ChunkedStatus::Partial => {
                    prop_assert!(fed < raw.len(), "partial with everything fed");
                    let done = decoder.take_consumed();
                    window.drain(..done);
                    dropped += done;
                }
            }
        };
        prop_assert_eq!(&decoded, &body);
        prop_assert_eq!(&whole, &body);
        prop_assert_eq!(ChunkedStatus::Complete { consumed: end }, expected);
    }
}
