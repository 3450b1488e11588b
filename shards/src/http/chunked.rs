//! Decoding a `Transfer-Encoding: chunked` body (RFC 9112 §7.1), strictly:
//! hex sizes only, CRLF after every line and every chunk, bounded size.

use memchr::memchr;

use super::HttpError;

/// Longest chunk-size line (size + extensions) we will wait for.
const MAX_SIZE_LINE: usize = 1024;

/// Result of decoding as much of a chunked body as `buf` holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChunkedStatus {
    /// The whole body, trailers and final CRLF took `consumed` bytes.
    Complete { consumed: usize },
    /// More bytes are needed.
    Partial,
}

/// Decode the chunked body at the start of `buf` into `out` (cleared first).
///
/// `max_metadata` bounds chunk extensions and trailer fields together (they
/// are header-like, so callers pass `max_head_bytes`): without it, a body of a
/// few bytes could carry megabytes of extensions that the server would have
/// to buffer. With at most 15 size digits per chunk and at least one data
/// byte per chunk, the encoded body is then bounded by
/// `20 * max_body + max_metadata`.
///
/// Stateless: called again from the start when more bytes arrive, which
/// keeps the state in one place (the buffer) at the price of re-copying,
/// bounded by `max_body`.
pub fn decode_chunked(
    buf: &[u8],
    max_body: usize,
    max_metadata: usize,
    out: &mut Vec<u8>,
) -> Result<ChunkedStatus, HttpError> {
    out.clear();
    let mut pos = 0;
    let mut metadata = 0;
    loop {
        let Some(line) = next_line(&buf[pos..], MAX_SIZE_LINE)? else {
            return Ok(ChunkedStatus::Partial);
        };
        let (size, extension) = parse_size_line(line)?;
        metadata += extension;
        if metadata > max_metadata {
            return Err(HttpError::HeaderFieldsTooLarge);
        }
        pos += line.len() + 2;
        if size == 0 {
            return skip_trailers(buf, pos, max_metadata - metadata);
        }
        if size > max_body - out.len().min(max_body) {
            return Err(HttpError::PayloadTooLarge);
        }
        if buf.len() - pos < size + 2 {
            return Ok(ChunkedStatus::Partial);
        }
        out.extend_from_slice(&buf[pos..pos + size]);
        pos += size;
        if &buf[pos..pos + 2] != b"\r\n" {
            return Err(HttpError::BadRequest("chunk data not followed by CRLF"));
        }
        pos += 2;
    }
}

/// The next CRLF-terminated line (without the CRLF), `None` if not all here
/// yet. A line longer than `max` is refused whether or not its end has
/// arrived, so the answer does not depend on how reads were split.
fn next_line(buf: &[u8], max: usize) -> Result<Option<&[u8]>, HttpError> {
    let window = &buf[..buf.len().min(max + 2)];
    match memchr(b'\n', window) {
        None if buf.len() > max + 1 => Err(HttpError::BadRequest("chunk line too long")),
        None => Ok(None),
        Some(0) => Err(HttpError::BadRequest("bare LF in chunked body")),
        Some(end) if buf[end - 1] != b'\r' => Err(HttpError::BadRequest("bare LF in chunked body")),
        Some(end) => Ok(Some(&buf[..end - 1])),
    }
}

/// `chunk-size [ BWS ";" chunk-ext ]` → (size, extension length); extensions
/// are checked for control bytes and otherwise ignored.
fn parse_size_line(line: &[u8]) -> Result<(usize, usize), HttpError> {
    const INVALID: HttpError = HttpError::BadRequest("invalid chunk size");
    let digits = line.iter().take_while(|b| b.is_ascii_hexdigit()).count();
    if digits == 0 {
        return Err(INVALID);
    }
    if digits > 15 {
        return Err(HttpError::PayloadTooLarge);
    }
    let size = line[..digits].iter().fold(0usize, |n, &d| {
        n * 16 + (d as char).to_digit(16).unwrap_or(0) as usize
    });
    let rest = &line[digits..];
    let ext = rest.trim_ascii_start();
    if !rest.is_empty() && ext.first() != Some(&b';') {
        return Err(INVALID);
    }
    if ext.iter().any(|&b| b != b'\t' && (b < 0x20 || b == 0x7f)) {
        return Err(HttpError::BadRequest("control byte in chunk extension"));
    }
    Ok((size, rest.len()))
}

fn skip_trailers(buf: &[u8], mut pos: usize, max: usize) -> Result<ChunkedStatus, HttpError> {
    let start = pos;
    loop {
        let Some(line) = next_line(&buf[pos..], max)? else {
            return Ok(ChunkedStatus::Partial);
        };
        pos += line.len() + 2;
        if line.is_empty() {
            return Ok(ChunkedStatus::Complete { consumed: pos });
        }
        if pos - start > max {
            return Err(HttpError::HeaderFieldsTooLarge);
        }
        let valid_field = line
            .iter()
            .position(|&b| b == b':')
            .is_some_and(|colon| colon > 0)
            && !matches!(line[0], b' ' | b'\t')
            && line.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f));
        if !valid_field {
            return Err(HttpError::BadRequest("invalid trailer field"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(raw: &[u8]) -> (Result<ChunkedStatus, HttpError>, Vec<u8>) {
        let mut out = Vec::new();
        (decode_chunked(raw, 1 << 20, 8192, &mut out), out)
    }

    #[test]
    fn decodes_chunks_and_reports_consumed() {
        let raw = b"5\r\nHello\r\n8;ext=1\r\n, World!\r\n0\r\n\r\nGET /next";
        let (status, body) = decode(raw);
        assert_eq!(
            status,
            Ok(ChunkedStatus::Complete {
                consumed: raw.len() - 9
            })
        );
        assert_eq!(body, b"Hello, World!");
    }

    #[test]
    fn trailers_are_skipped() {
        let raw = b"3\r\nabc\r\n0\r\nX-Sum: 1\r\n\r\n";
        assert_eq!(
            decode(raw).0,
            Ok(ChunkedStatus::Complete {
                consumed: raw.len()
            })
        );
    }

    #[test]
    fn every_prefix_is_partial() {
        let raw = b"5\r\nHello\r\n0\r\n\r\n";
        for end in 0..raw.len() {
            assert_eq!(
                decode(&raw[..end]).0,
                Ok(ChunkedStatus::Partial),
                "prefix {end}"
            );
        }
    }

    #[test]
    fn malformed_framing_is_refused() {
        for raw in [
            &b"x\r\nabc\r\n0\r\n\r\n"[..],
            b"-5\r\nHello\r\n0\r\n\r\n",
            b"5 5\r\nHello\r\n0\r\n\r\n",
            b"5\nHello\r\n0\r\n\r\n",
            b"5\r\nHelloXX0\r\n\r\n",
            b"5\r\nHello\r\n0\r\nbad trailer\r\n\r\n",
            b"5;a\x01b\r\nHello\r\n0\r\n\r\n",
        ] {
            assert_eq!(decode(raw).0.unwrap_err().status(), 400, "{raw:?}");
        }
    }

    #[test]
    fn oversized_bodies_are_refused_before_they_arrive() {
        let mut out = Vec::new();
        assert_eq!(
            decode_chunked(b"ffff\r\n", 100, 100, &mut out),
            Err(HttpError::PayloadTooLarge)
        );
        assert_eq!(
            decode_chunked(b"ffffffffffffffffffff\r\n", 100, 100, &mut out),
            Err(HttpError::PayloadTooLarge)
        );
    }
}
