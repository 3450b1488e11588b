//! Fuzz the sans-IO HTTP/1.1 codec: `decode_head` and `decode_chunked` on
//! the raw bytes, and the production `RequestReader` — the connection loop's
//! turn — over a stream that arrives whole or in pieces.
//!
//! Checks, beyond "no panic":
//! - whatever a decoder or the reader returns points inside its input and
//!   stays within the limits;
//! - the reader owes `100 Continue` at most once per request;
//! - feeding the same bytes whole or in pieces yields the same requests and
//!   ends the same way (closed, refused, or waiting for the same thing), with
//!   one allowance: see [`same_end`].

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardd_shards::http::{
    decode_chunked, decode_head, slice, Awaiting, ChunkedStatus, Decoded, Framing, HttpError,
    ReadBuffers, RequestParts, RequestReader,
};
use shardd_shards::Limits;

/// One parsed request: method, target, header fields, body.
type Seen = (Vec<u8>, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>);

/// How the stream left the reader once every byte was fed.
#[derive(Debug)]
enum End {
    /// A request said `Connection: close`: nothing after it is decoded.
    Closed,
    /// The reader refused the bytes (the error is only shown in a failure message).
    Refused(#[allow(dead_code)] HttpError),
    /// The reader waits for more: the next request, the rest of a head, a body.
    Waiting(Waits),
}

/// [`Awaiting`] without the `100 Continue` flag (whole and split feeding owe
/// it at different times).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Waits {
    Request,
    Head,
    Body,
}

fn limits(selector: u8) -> Limits {
    match selector % 3 {
        0 => Limits::default(),
        1 => Limits {
            max_request_line: 32,
            max_head_bytes: 128,
            max_headers: 4,
            max_body_bytes: 64,
            ..Limits::default()
        },
        _ => Limits {
            max_request_line: 16,
            max_head_bytes: 16,
            max_headers: 1,
            max_body_bytes: 0,
            ..Limits::default()
        },
    }
}

/// What the app would see of a request the reader handed over, after
/// checking that it lies inside the reader's buffers and within the limits.
fn seen(parts: &RequestParts<'_>, limits: &Limits) -> Seen {
    // The head decodes again, alone, to what the reader saw.
    let mut spans = Vec::new();
    let head = decode_head(parts.head_bytes, limits, &mut spans)
        .expect("a head the reader accepted decodes again")
        .expect("and is complete");
    assert!(head.len == parts.head_bytes.len() && head.len <= limits.max_head_bytes);
    assert!(parts.body.len() <= limits.max_body_bytes);
    match head.framing {
        Framing::Length(n) => assert_eq!(parts.body.len(), n),
        Framing::None => assert!(parts.body.is_empty(), "a request without a body got one"),
        Framing::Chunked => {}
    }
    let bytes = parts.head_bytes;
    let fields = parts
        .spans
        .iter()
        .map(|s| {
            (
                slice(bytes, s.name).to_vec(),
                slice(bytes, s.value).to_vec(),
            )
        })
        .collect();
    (
        parts.method.as_bytes().to_vec(),
        parts.target.as_bytes().to_vec(),
        fields,
        parts.body.to_vec(),
    )
}

/// Feed `stream` to a `RequestReader` in reads of `step` bytes (`usize::MAX`:
/// all at once), decoding every request after each read as the connection
/// loop does. Returns the requests and how the stream ended.
fn drive(stream: &[u8], step: usize, limits: &Limits) -> (Vec<Seen>, End) {
    let mut reader = RequestReader::default();
    let mut buffers = ReadBuffers::default();
    let mut requests = Vec::new();
    let mut waits = Waits::Request;
    // `100 Continue`s owed for the request being read.
    let mut continues = 0;
    for piece in stream.chunks(step.max(1)) {
        reader.feed(&mut buffers, piece);
        loop {
            match reader.decode(&mut buffers, limits) {
                Decoded::Request(parts) => {
                    requests.push(seen(&parts, limits));
                    continues = 0;
                    if !parts.keep_alive {
                        return (requests, End::Closed);
                    }
                }
                Decoded::Incomplete(awaiting) => {
                    waits = match awaiting {
                        Awaiting::Request => Waits::Request,
                        Awaiting::Head => Waits::Head,
                        Awaiting::Body { send_continue } => {
                            continues += usize::from(send_continue);
                            assert!(continues <= 1, "100 Continue owed twice");
                            Waits::Body
                        }
                    };
                    assert_eq!(
                        waits == Waits::Request,
                        !reader.has_buffered(&buffers),
                        "waits for {waits:?}"
                    );
                    break;
                }
                Decoded::Refused(error) => return (requests, End::Refused(error)),
                Decoded::Head(_) => unreachable!("this reader does not offer heads"),
            }
        }
    }
    (requests, End::Waiting(waits))
}

/// Whether feeding whole and feeding in pieces ended the same way.
///
/// One allowance: the whole stream may be refused where the pieces leave the
/// reader waiting for the rest of a head. The reader parses a partial head
/// again only once a new line has ended in it (or it passes 4 KiB), so a bad
/// byte, or a head over a limit below 4 KiB, in a line that has not ended is
/// refused only when it does (and the connection would answer 400 for the
/// incomplete request at end of stream, or 408 at the header timeout).
fn same_end(whole: &End, split: &End) -> bool {
    match (whole, split) {
        (End::Closed, End::Closed) | (End::Refused(_), End::Refused(_)) => true,
        (End::Waiting(a), End::Waiting(b)) => a == b,
        (End::Refused(_), End::Waiting(Waits::Head)) => true,
        _ => false,
    }
}

fuzz_target!(|data: &[u8]| {
    let [selector, step, input @ ..] = data else {
        return;
    };
    let limits = limits(*selector);

    // The decoders alone, on the raw input.
    let mut spans = Vec::new();
    if let Ok(Some(head)) = decode_head(input, &limits, &mut spans) {
        assert!(head.len <= input.len());
        let _ = slice(input, head.method);
        let _ = slice(input, head.target);
        for span in &spans {
            let _ = slice(&input[..head.len], span.name);
            let _ = slice(&input[..head.len], span.value);
        }
    }
    let mut out = Vec::new();
    match decode_chunked(
        input,
        limits.max_body_bytes,
        limits.max_head_bytes,
        &mut out,
    ) {
        Ok(ChunkedStatus::Complete { consumed }) => assert!(consumed <= input.len()),
        Ok(ChunkedStatus::Partial) | Err(_) => {}
    }
    assert!(out.len() <= limits.max_body_bytes);

    // The reader: whole versus in pieces.
    let (whole, whole_end) = drive(input, usize::MAX, &limits);
    let (split, split_end) = drive(input, usize::from(*step) + 1, &limits);
    assert_eq!(
        whole, split,
        "requests differ between whole and split feeding"
    );
    assert!(
        same_end(&whole_end, &split_end),
        "whole: {whole_end:?}, split: {split_end:?}"
    );
});
