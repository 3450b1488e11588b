//! Property tests of the sans-IO codec, driven through the production
//! [`RequestReader`]: bytes arrive in arbitrary pieces, the reader keeps the
//! framing state between them (partial head, chunked decoder dropping the
//! framing it has decoded, `100 Continue`), complete requests come out of
//! its `decode` in order — the same turn the connection loop runs.
//!
//! `decode_head`, `decode_chunked` and `ChunkedDecoder` also have properties
//! of their own, on byte slices.
//!
//! Case counts are modest so CI stays fast; raise them with
//! `PROPTEST_CASES=10000 cargo test -p shardd-shards --test codec_props`.

use proptest::prelude::*;
use shardd_shards::http::{
    decode_chunked, decode_head, slice, Awaiting, ChunkedDecoder, ChunkedStatus, Decoded, Framing,
    HttpError, ReadBuffers, RequestParts, RequestReader, Version,
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

impl Seen {
    /// What the reader handed over; every span must lie inside the head it
    /// points into (`slice` panics otherwise).
    fn of(parts: &RequestParts<'_>, limits: &Limits) -> Self {
        assert!(parts.head_bytes.len() <= limits.max_head_bytes);
        assert!(parts.body.len() <= limits.max_body_bytes);
        let head = parts.head_bytes;
        let text = |span| String::from_utf8_lossy(slice(head, span)).into_owned();
        Seen {
            method: parts.method.to_owned(),
            target: parts.target.to_owned(),
            headers: parts
                .spans
                .iter()
                .map(|s| (text(s.name), text(s.value)))
                .collect(),
            body: parts.body.to_vec(),
            keep_alive: parts.keep_alive,
            version: parts.version,
        }
    }
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
    /// Sends `Expect: 100-continue`.
    expect: bool,
    close: bool,
}

impl Req {
    fn encode(&self) -> Vec<u8> {
        let mut out = self.encode_head();
        out.extend_from_slice(&self.encode_body());
        out
    }

    /// The head, through the empty line that ends it.
    fn encode_head(&self) -> Vec<u8> {
        let mut out = format!(
            "{} {} HTTP/1.1\r\nHost: example.test\r\n",
            self.method, self.target
        )
        .into_bytes();
        for (name, value) in &self.headers {
            out.extend_from_slice(format!("{name}: {value}\r\n").as_bytes());
        }
        if self.expect {
            out.extend_from_slice(b"Expect: 100-continue\r\n");
        }
        if self.close {
            out.extend_from_slice(b"Connection: close\r\n");
        }
        match &self.framed {
            Framed::NoBody => {}
            Framed::Length => {
                out.extend_from_slice(format!("Content-Length: {}\r\n", self.body.len()).as_bytes())
            }
            Framed::Chunked { .. } => out.extend_from_slice(b"Transfer-Encoding: chunked\r\n"),
        }
        out.extend_from_slice(b"\r\n");
        out
    }

    /// The body as framed on the wire.
    fn encode_body(&self) -> Vec<u8> {
        let mut out = Vec::new();
        match &self.framed {
            Framed::NoBody => {}
            Framed::Length => out.extend_from_slice(&self.body),
            Framed::Chunked {
                sizes,
                extensions,
                upper,
                trailers,
            } => {
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
        if self.expect {
            headers.push(("Expect".into(), "100-continue".into()));
        }
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

/// Where each request of a pipeline lies in its stream: (start, end of head, end).
fn layout(reqs: &[Req]) -> Vec<(usize, usize, usize)> {
    let mut at = 0;
    reqs.iter()
        .map(|req| {
            let start = at;
            let head_end = start + req.encode_head().len();
            at = head_end + req.encode_body().len();
            (start, head_end, at)
        })
        .collect()
}

/// What the reader says it waits for, without the `100 Continue` flag.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waits {
    Request,
    Head,
    Body,
}

impl From<Awaiting> for Waits {
    fn from(awaiting: Awaiting) -> Self {
        match awaiting {
            Awaiting::Request => Waits::Request,
            Awaiting::Head => Waits::Head,
            Awaiting::Body { .. } => Waits::Body,
        }
    }
}

/// The connection loop's turn, without the socket: each read goes into a
/// [`RequestReader`], then every request it can decode is taken, in order,
/// until it needs more bytes or refuses.
struct Driver {
    limits: Limits,
    reader: RequestReader,
    buffers: ReadBuffers,
    /// What the last `decode` said it waits for.
    waits: Waits,
    /// How many times the reader said to send `100 Continue`.
    continues: usize,
    /// After a `Connection: close` request nothing more is decoded.
    closed: bool,
}

impl Driver {
    fn new(limits: Limits) -> Self {
        Driver {
            limits,
            reader: RequestReader::default(),
            buffers: ReadBuffers::default(),
            waits: Waits::Request,
            continues: 0,
            closed: false,
        }
    }

    /// Add `bytes` as one read and return every request now complete, in
    /// order, and the refusal that ended the read, if one did (the requests
    /// before it in the same read still count).
    fn feed(&mut self, bytes: &[u8]) -> (Vec<Seen>, Option<HttpError>) {
        self.reader.feed(&mut self.buffers, bytes);
        let mut out = Vec::new();
        while !self.closed {
            match self.reader.decode(&mut self.buffers, &self.limits) {
                Decoded::Request(parts) => {
                    self.closed = !parts.keep_alive;
                    out.push(Seen::of(&parts, &self.limits));
                }
                Decoded::Incomplete(awaiting) => {
                    if awaiting
                        == (Awaiting::Body {
                            send_continue: true,
                        })
                    {
                        self.continues += 1;
                    }
                    self.waits = awaiting.into();
                    break;
                }
                Decoded::Refused(error) => return (out, Some(error)),
                Decoded::Head(_) => unreachable!("this reader does not offer heads"),
            }
        }
        (out, None)
    }

    /// [`feed`](Self::feed) for reads that must not be refused.
    fn feed_ok(&mut self, bytes: &[u8]) -> Vec<Seen> {
        let (got, refused) = self.feed(bytes);
        assert_eq!(refused, None, "refused after {got:?}");
        got
    }

    /// Feed `pieces` one read each; the requests seen until a refusal, and the refusal.
    fn feed_all(&mut self, pieces: &[Vec<u8>]) -> (Vec<Seen>, Option<HttpError>) {
        let mut seen = Vec::new();
        for piece in pieces {
            let (got, refused) = self.feed(piece);
            seen.extend(got);
            if refused.is_some() {
                return (seen, refused);
            }
        }
        (seen, None)
    }

    /// Whether unconsumed bytes are still buffered.
    fn leftover(&self) -> bool {
        self.reader.has_buffered(&self.buffers)
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
        any::<bool>(),
    )
        .prop_map(
            |(kind, method, target, headers, body, cuts, extensions, upper, trailers, expect)| {
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
                    expect,
                    close: false,
                }
            },
        )
}

/// Cut `stream` at these points (taken modulo its length, sorted,
/// deduplicated) into pieces.
fn pieces(stream: &[u8], cuts: &[usize]) -> Vec<Vec<u8>> {
    let ends = piece_ends(stream.len(), cuts);
    let mut from = 0;
    ends.into_iter()
        .map(|end| {
            let piece = stream[from..end].to_vec();
            from = end;
            piece
        })
        .collect()
}

/// Where the pieces of [`pieces`] end: after each, the reader is asked to decode.
fn piece_ends(len: usize, cuts: &[usize]) -> Vec<usize> {
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (len + 1)).collect();
    points.push(len);
    points.sort_unstable();
    points.dedup();
    points.retain(|&p| p > 0);
    points
}

/// How many `100 Continue`s a reader owes when `reqs` arrive in reads ending
/// at `ends`: one per request that asks for it and whose head is complete
/// while its body is not, at the end of some read.
fn continues_owed(reqs: &[Req], ends: &[usize]) -> usize {
    reqs.iter()
        .zip(layout(reqs))
        .filter(|(req, (_, head_end, end))| {
            req.expect && ends.iter().any(|b| (*head_end..*end).contains(b))
        })
        .count()
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

/// Bytes that look like HTTP framing, for junk that reaches past the first check.
fn http_junk() -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(
        prop::sample::select(vec![
            &b"0"[..],
            b"1",
            b"a",
            b"F",
            b"ffffffffffffffffff",
            b"\r\n",
            b"\n",
            b"\r",
            b";",
            b"x=y",
            b" ",
            b"\t",
            b"hello",
            b":",
            b"X-T: 1",
            b"\0",
            b"GET / HTTP/1.1",
            b"Host: x",
            b"Content-Length: 3",
            b"Transfer-Encoding: chunked",
            b"Connection: close",
            b"Expect: 100-continue",
        ]),
        0..40,
    )
    .prop_map(|parts| parts.concat())
}

/// A chunked upload's head: what [`chunked_encoding`] bodies follow in the reader tests.
const UPLOAD_HEAD: &[u8] =
    b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n";

proptest! {
    #![proptest_config(cases(128))]

    /// Any split of a pipelined stream parses to the same requests, in order,
    /// and the reader owes `100 Continue` exactly when a read leaves a head
    /// that asked for it without its body.
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
        let got = whole.feed_ok(&stream);
        prop_assert_eq!(&got, &expected);
        prop_assert!(!whole.leftover());
        prop_assert_eq!(whole.continues, 0);

        // In arbitrary pieces.
        let mut split = Driver::new(Limits::default());
        let (got, refused) = split.feed_all(&pieces(&stream, &cuts));
        prop_assert_eq!(refused, None);
        prop_assert_eq!(&got, &expected);
        prop_assert!(!split.leftover());
        prop_assert_eq!(split.continues, continues_owed(&reqs, &piece_ends(stream.len(), &cuts)));
        if !close_last {
            prop_assert_eq!(split.waits, Waits::Request);
        }
    }

    /// The reader remembers the last head it decoded: the same head sent
    /// again (the usual keep-alive or pipelined client) reads exactly as it
    /// did the first time, in one read or in pieces, and a different head
    /// after it is decoded afresh.
    #[test]
    fn repeated_heads_parse_the_same(
        reqs in prop::collection::vec(request(), 1..4),
        repeats in prop::collection::vec(1..4usize, 4),
        cuts in prop::collection::vec(any::<usize>(), 0..40),
    ) {
        // a a a b b a ...: each request repeated, then the first again.
        let mut sent: Vec<&Req> = Vec::new();
        for (req, times) in reqs.iter().zip(&repeats) {
            sent.extend(std::iter::repeat_n(req, *times));
        }
        sent.push(&reqs[0]);
        let stream: Vec<u8> = sent.iter().flat_map(|req| req.encode()).collect();
        let expected: Vec<Seen> = sent.iter().map(|req| req.seen()).collect();

        let mut whole = Driver::new(Limits::default());
        prop_assert_eq!(&whole.feed_ok(&stream), &expected);
        let mut split = Driver::new(Limits::default());
        let (got, refused) = split.feed_all(&pieces(&stream, &cuts));
        prop_assert_eq!(refused, None);
        prop_assert_eq!(&got, &expected);
        prop_assert!(!split.leftover());
    }

    /// Byte at a time: the worst split, every prefix is "need more", never an
    /// error, and the reader says what it waits for: the next request between
    /// requests, the rest of a head inside one, the body after a head.
    #[test]
    fn byte_at_a_time_parses_the_same(reqs in prop::collection::vec(request(), 1..4)) {
        let stream: Vec<u8> = reqs.iter().flat_map(Req::encode).collect();
        let expected: Vec<Seen> = reqs.iter().map(Req::seen).collect();
        let spans = layout(&reqs);
        let mut driver = Driver::new(Limits::default());
        let mut got = Vec::new();
        for (at, byte) in stream.iter().enumerate() {
            got.extend(driver.feed_ok(std::slice::from_ref(byte)));
            let fed = at + 1;
            let waits = match spans.iter().find(|(start, _, end)| *start < fed && fed < *end) {
                None => Waits::Request,
                Some((_, head_end, _)) if fed < *head_end => Waits::Head,
                Some(_) => Waits::Body,
            };
            prop_assert_eq!(driver.waits, waits, "after {} of {} bytes", fed, stream.len());
        }
        prop_assert_eq!(got, expected);
        prop_assert!(!driver.leftover());
        let every_byte: Vec<usize> = (1..=stream.len()).collect();
        prop_assert_eq!(driver.continues, continues_owed(&reqs, &every_byte));
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

        // The reader hands over the same request, whatever follows it.
        let mut reader = RequestReader::default();
        let mut buffers = ReadBuffers::default();
        reader.feed(&mut buffers, &followed);
        match reader.decode(&mut buffers, &limits) {
            Decoded::Request(parts) => prop_assert_eq!(Seen::of(&parts, &limits), req.seen()),
            other => prop_assert!(false, "{:?}", other),
        }
        prop_assert_eq!(reader.has_buffered(&buffers), !junk.is_empty());
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
        chunky in http_junk(),
        max_body in 0usize..300,
        max_trailers in 0usize..300,
    ) {
        let mut out = Vec::new();
        for input in [bytes, chunky] {
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

    /// Arbitrary bytes, alone or after a chunked upload's head, never panic
    /// the reader in any split or under any limits; whatever it hands over
    /// lies inside its buffers and within the limits (checked in
    /// `Seen::of`); and the split sees the same requests as the whole.
    /// (A split may refuse only what the whole refuses; the converse does
    /// not hold: the reader parses a partial head again only once a line
    /// ends or it passes 4 KiB, so a bad byte in a head whose line has not
    /// ended yet is refused later, when it does.)
    #[test]
    fn arbitrary_bytes_never_panic_the_reader(
        bytes in prop::collection::vec(any::<u8>(), 0..600),
        chunky in http_junk(),
        upload in any::<bool>(),
        cuts in prop::collection::vec(any::<usize>(), 0..20),
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
        for junk in [bytes, chunky] {
            let mut stream = if upload { UPLOAD_HEAD.to_vec() } else { Vec::new() };
            stream.extend_from_slice(&junk);
            let (whole, whole_refused) = Driver::new(limits.clone()).feed_all(&[stream.clone()]);
            let (split, split_refused) = Driver::new(limits.clone()).feed_all(&pieces(&stream, &cuts));
            prop_assert_eq!(whole, split);
            prop_assert!(
                split_refused.is_none() || whole_refused.is_some(),
                "split refused {:?}, whole did not", split_refused
            );
        }
    }

    /// Mutating bytes of a valid pipeline never panics the reader.
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
        driver.feed_all(&pieces(&stream, &cuts));
    }
}

#[test]
fn chunk_sizes_cover_the_body() {
    assert_eq!(chunk_sizes(0, vec![3]), Vec::<usize>::new());
    assert_eq!(chunk_sizes(5, vec![]), vec![5]);
    assert_eq!(chunk_sizes(5, vec![1, 2]).iter().sum::<usize>(), 5);
}

#[test]
fn pieces_cover_the_stream() {
    let stream = b"abcdef";
    assert_eq!(pieces(stream, &[]).concat(), stream);
    assert_eq!(pieces(stream, &[2, 3, 9, 6, 0]), [&b"ab"[..], b"c", b"def"]);
    assert_eq!(piece_ends(6, &[2, 3, 9, 6, 0]), [2, 3, 6]);
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

    // And through the reader, which keeps the decoder between reads.
    let mut stream = UPLOAD_HEAD.to_vec();
    stream.extend_from_slice(&raw);
    let whole = Driver::new(Limits::default()).feed_all(&[stream.clone()]);
    let cut = UPLOAD_HEAD.len() + 1030;
    let split =
        Driver::new(Limits::default()).feed_all(&[stream[..cut].to_vec(), stream[cut..].to_vec()]);
    assert_eq!(whole, split);
}

/// A chunked body encoded with the given chunk sizes, extensions and a
/// trailer, and the length of its longest framing line (CRLF included).
fn chunked_encoding(body: &[u8], sizes: &[usize]) -> (Vec<u8>, usize) {
    let mut raw = Vec::new();
    let mut longest = 0;
    let mut at = 0;
    for (i, &size) in sizes.iter().enumerate() {
        let line_start = raw.len();
        raw.extend_from_slice(format!("{size:x}").as_bytes());
        if i % 2 == 1 {
            raw.extend_from_slice(b";ext=v");
        }
        raw.extend_from_slice(b"\r\n");
        longest = longest.max(raw.len() - line_start);
        raw.extend_from_slice(&body[at..at + size]);
        raw.extend_from_slice(b"\r\n");
        at += size;
    }
    const END: &[u8] = b"0\r\nX-Trailer: 1\r\n\r\n";
    raw.extend_from_slice(END);
    longest = longest.max(b"X-Trailer: 1\r\n".len());
    (raw, longest)
}

proptest! {
    #![proptest_config(cases(128))]

    /// `ChunkedDecoder` on its own, used the way the reader uses it: fed
    /// more bytes on each call and the framing it has consumed dropped after
    /// every read. Whatever the read split, that must give the same body and
    /// end at the same byte as decoding the whole encoding at once.
    #[test]
    fn incremental_chunked_decode_matches_whole_decode(
        body in proptest::collection::vec(any::<u8>(), 0..600),
        cuts in proptest::collection::vec(0usize..700, 0..12),
        reads in proptest::collection::vec(1usize..64, 1..40),
    ) {
        let sizes = chunk_sizes(body.len(), cuts);
        let (mut raw, _) = chunked_encoding(&body, &sizes);
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

    /// A chunked upload through the reader, in reads of any sizes: the same
    /// body as decoding it whole, the request ends where it should (the next
    /// one decodes), and while the body arrives the reader's buffer holds
    /// only the head and the undecoded rest of one framing line — decoded
    /// data and framing are dropped read by read, however long the body.
    #[test]
    fn reader_buffer_stays_bounded_while_a_chunked_body_arrives(
        body in proptest::collection::vec(any::<u8>(), 0..2000),
        cuts in proptest::collection::vec(0usize..2000, 0..40),
        reads in proptest::collection::vec(1usize..64, 1..40),
    ) {
        let sizes = chunk_sizes(body.len(), cuts);
        let (encoded, longest_line) = chunked_encoding(&body, &sizes);
        let mut whole = Vec::new();
        prop_assert_eq!(
            decode_chunked(&encoded, 1 << 20, 1 << 14, &mut whole).unwrap(),
            ChunkedStatus::Complete { consumed: encoded.len() }
        );
        let mut stream = UPLOAD_HEAD.to_vec();
        stream.extend_from_slice(&encoded);
        stream.extend_from_slice(b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");

        let mut driver = Driver::new(Limits::default());
        let mut got = Vec::new();
        let (mut fed, mut read) = (0, 0);
        while fed < stream.len() {
            let step = reads[read % reads.len()].min(stream.len() - fed);
            read += 1;
            got.extend(driver.feed_ok(&stream[fed..fed + step]));
            fed += step;
            if driver.waits == Waits::Body {
                let buffered = &driver.buffers.bytes;
                prop_assert!(got.is_empty());
                prop_assert_eq!(&buffered[..UPLOAD_HEAD.len()], UPLOAD_HEAD);
                prop_assert!(
                    buffered.len() < UPLOAD_HEAD.len() + longest_line,
                    "{} bytes buffered after {} of the body", buffered.len(), fed - UPLOAD_HEAD.len()
                );
                // What is kept is the end of what arrived.
                let kept = buffered.len() - UPLOAD_HEAD.len();
                prop_assert_eq!(&buffered[UPLOAD_HEAD.len()..], &stream[fed - kept..fed]);
                prop_assert!(driver.buffers.body.len() <= body.len());
            }
        }
        prop_assert_eq!(got.len(), 2);
        prop_assert_eq!(&got[0].body, &body);
        prop_assert_eq!(&got[0].target, "/upload");
        prop_assert_eq!(&got[1].target, "/next");
        prop_assert!(!driver.leftover());
    }
}

/// A control byte in a head line that has not ended is refused when it
/// arrives, as when the bytes come in one read (the reader re-parses a
/// partial head when a control byte arrives, not only when a line ends).
#[test]
fn a_control_byte_in_an_unfinished_head_line_is_refused_when_it_arrives() {
    let whole = Driver::new(Limits::default()).feed_all(&[b"GET /\x01".to_vec()]);
    assert!(whole.1.is_some(), "{whole:?}");
    let mut driver = Driver::new(Limits::default());
    let pieces = [b"GET /".to_vec(), b"\x01".to_vec()];
    assert_eq!(driver.feed_all(&pieces), (vec![], whole.1));
}

/// A request without a body after a chunked one must not see the chunked
/// one's body. The reader hands over `ReadBuffers::body` for every request
/// that has no `Content-Length` body, and only clears it when a chunked body
/// starts, so a `GET` pipelined (or kept alive) after a chunked `POST` sees
/// the `POST`'s body (a bug the fuzzer found, fixed in the reader).
#[test]
fn a_request_without_a_body_after_a_chunked_one_has_an_empty_body() {
    let mut reader = RequestReader::default();
    let mut buffers = ReadBuffers::default();
    let mut stream = UPLOAD_HEAD.to_vec();
    stream.extend_from_slice(b"3\r\nabc\r\n0\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n");
    reader.feed(&mut buffers, &stream);
    let limits = Limits::default();
    match reader.decode(&mut buffers, &limits) {
        Decoded::Request(parts) => assert_eq!(parts.body, b"abc"),
        other => panic!("{other:?}"),
    }
    match reader.decode(&mut buffers, &limits) {
        Decoded::Request(parts) => {
            assert_eq!(parts.method, "GET");
            assert_eq!(parts.body, b"", "the GET sees the POST's body");
        }
        other => panic!("{other:?}"),
    }
}
