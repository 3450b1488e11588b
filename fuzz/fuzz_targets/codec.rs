//! Fuzz the sans-IO HTTP/1.1 codec: `decode_head`, `decode_chunked`, and
//! the connection loop's use of them over a stream that arrives in pieces.
//!
//! Checks, beyond "no panic":
//! - whatever a decoder returns points inside its input;
//! - feeding the same bytes whole or in pieces yields the same requests,
//!   and an error in one way of feeding is an error in the other.

#![no_main]

use libfuzzer_sys::fuzz_target;
use shardd_shards::http::{
    decode_chunked, decode_head, slice, ChunkedStatus, Framing, HeaderSpan, HttpError,
};
use shardd_shards::Limits;

/// One parsed request: method, target, header fields, body.
type Seen = (Vec<u8>, Vec<u8>, Vec<(Vec<u8>, Vec<u8>)>, Vec<u8>);

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

/// Feed `stream` to a connection-style loop in pieces of `step` bytes
/// (`usize::MAX`: all at once). Returns the requests and whether it stopped on an error.
fn drive(stream: &[u8], step: usize, limits: &Limits) -> (Vec<Seen>, Option<HttpError>) {
    let mut read = Vec::new();
    let mut start = 0;
    let mut spans: Vec<HeaderSpan> = Vec::new();
    let mut body = Vec::new();
    let mut seen = Vec::new();
    for piece in stream.chunks(step.max(1)) {
        read.extend_from_slice(piece);
        while start < read.len() {
            let avail = &read[start..];
            let head = match decode_head(avail, limits, &mut spans) {
                Ok(Some(head)) => head,
                Ok(None) => break,
                Err(error) => return (seen, Some(error)),
            };
            assert!(head.len <= avail.len() && head.len <= limits.max_head_bytes);
            let rest = &avail[head.len..];
            let (content, consumed) = match head.framing {
                Framing::None => (Vec::new(), head.len),
                Framing::Length(n) => {
                    assert!(n <= limits.max_body_bytes);
                    if rest.len() < n {
                        break;
                    }
                    (rest[..n].to_vec(), head.len + n)
                }
                Framing::Chunked => {
                    match decode_chunked(
                        rest,
                        limits.max_body_bytes,
                        limits.max_head_bytes,
                        &mut body,
                    ) {
                        Ok(ChunkedStatus::Complete { consumed }) => {
                            assert!(consumed <= rest.len());
                            assert!(body.len() <= limits.max_body_bytes);
                            (body.clone(), head.len + consumed)
                        }
                        Ok(ChunkedStatus::Partial) => break,
                        Err(error) => return (seen, Some(error)),
                    }
                }
            };
            let fields = spans
                .iter()
                .map(|s| {
                    (
                        slice(avail, s.name).to_vec(),
                        slice(avail, s.value).to_vec(),
                    )
                })
                .collect();
            seen.push((
                slice(avail, head.method).to_vec(),
                slice(avail, head.target).to_vec(),
                fields,
                content,
            ));
            start += consumed;
            if !head.keep_alive {
                return (seen, None);
            }
        }
        if start == read.len() {
            read.clear();
            start = 0;
        }
    }
    (seen, None)
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

    // The connection loop: whole versus in pieces.
    let (whole, whole_error) = drive(input, usize::MAX, &limits);
    let (split, split_error) = drive(input, usize::from(*step) + 1, &limits);
    assert_eq!(
        whole, split,
        "requests differ between whole and split feeding"
    );
    assert_eq!(
        whole_error.is_some(),
        split_error.is_some(),
        "whole: {whole_error:?}, split: {split_error:?}"
    );
});
