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
    Complete {
        /// Bytes the body took, framing and trailers included.
        consumed: usize,
    },
    /// More bytes are needed.
    Partial,
}

/// Decode a whole chunked body at the start of `buf` into `out` (cleared
/// first). A convenience over [`ChunkedDecoder`] for callers that have all
/// the bytes they will get; see there for the limits.
pub fn decode_chunked(
    buf: &[u8],
    max_body: usize,
    max_metadata: usize,
    out: &mut Vec<u8>,
) -> Result<ChunkedStatus, HttpError> {
    out.clear();
    ChunkedDecoder::default().decode(buf, max_body, max_metadata, out)
}

/// Where an incremental chunked decode stands.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Phase {
    /// Expecting a chunk-size line.
    #[default]
    Size,
    /// Inside a chunk's data, this many bytes still to come.
    Data(usize),
    /// Expecting the CRLF after a chunk's data.
    DataEnd,
    /// After the last chunk: trailer fields until an empty line.
    Trailers,
    Done,
}

/// Decodes a chunked body as its bytes arrive, looking at each byte once.
///
/// The caller passes the body's raw bytes from their start each time (more
/// of them on each call) and the decoder carries on where it stopped,
/// appending data to `out`. [`ChunkedDecoder::take_consumed`] lets the caller
/// drop framing it no longer needs, so a slow upload in tiny chunks costs
/// neither quadratic time nor a buffer many times the body's size.
///
/// Limits: the decoded body may not exceed `max_body` (413). Chunk
/// extensions and trailer fields share `max_metadata` (they are header-like;
/// callers pass `max_head_bytes`), so a body of a few bytes cannot carry
/// megabytes of extensions (431). A chunk-size line may be at most 1 KiB.
#[derive(Clone, Debug, Default)]
pub struct ChunkedDecoder {
    phase: Phase,
    /// Raw bytes consumed, counted from the start of what the caller passes.
    pos: usize,
    /// Extension and trailer bytes seen so far.
    metadata: usize,
}

impl ChunkedDecoder {
    /// Continue decoding `buf` (the raw body from its start, minus what
    /// [`take_consumed`](Self::take_consumed) gave back).
    pub fn decode(
        &mut self,
        buf: &[u8],
        max_body: usize,
        max_metadata: usize,
        out: &mut Vec<u8>,
    ) -> Result<ChunkedStatus, HttpError> {
        loop {
            match self.phase {
                Phase::Size => {
                    let Some(line) = next_line(&buf[self.pos..], MAX_SIZE_LINE)? else {
                        return Ok(ChunkedStatus::Partial);
                    };
                    let (size, extension) = parse_size_line(line)?;
                    self.add_metadata(extension, max_metadata)?;
                    self.pos += line.len() + 2;
                    self.phase = if size == 0 {
                        Phase::Trailers
                    } else if size > max_body.saturating_sub(out.len()) {
                        return Err(HttpError::PayloadTooLarge);
                    } else {
                        Phase::Data(size)
                    };
                }
                Phase::Data(remaining) => {
                    let available = (buf.len() - self.pos).min(remaining);
                    out.extend_from_slice(&buf[self.pos..self.pos + available]);
                    self.pos += available;
                    if available < remaining {
                        self.phase = Phase::Data(remaining - available);
                        return Ok(ChunkedStatus::Partial);
                    }
                    self.phase = Phase::DataEnd;
                }
                Phase::DataEnd => {
                    match buf.get(self.pos..self.pos + 2) {
                        None => return Ok(ChunkedStatus::Partial),
                        Some(b"\r\n") => self.pos += 2,
                        Some(_) => {
                            return Err(HttpError::BadRequest("chunk data not followed by CRLF"))
                        }
                    }
                    self.phase = Phase::Size;
                }
                Phase::Trailers => {
                    let budget = max_metadata.saturating_sub(self.metadata);
                    let Some(line) = next_line(&buf[self.pos..], budget)? else {
                        return Ok(ChunkedStatus::Partial);
                    };
                    self.pos += line.len() + 2;
                    if line.is_empty() {
                        self.phase = Phase::Done;
                        continue;
                    }
                    self.add_metadata(line.len() + 2, max_metadata)?;
                    if !is_trailer_field(line) {
                        return Err(HttpError::BadRequest("invalid trailer field"));
                    }
                }
                Phase::Done => return Ok(ChunkedStatus::Complete { consumed: self.pos }),
            }
        }
    }

    /// Forget the raw bytes consumed so far and return how many there were;
    /// the next [`decode`](Self::decode) expects `buf` to start after them.
    /// Only while the body is incomplete: the final `consumed` counts from here.
    pub fn take_consumed(&mut self) -> usize {
        std::mem::take(&mut self.pos)
    }

    fn add_metadata(&mut self, bytes: usize, max: usize) -> Result<(), HttpError> {
        self.metadata += bytes;
        if self.metadata > max {
            return Err(HttpError::HeaderFieldsTooLarge);
        }
        Ok(())
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

/// `name ":" value` with a token-ish name and no control bytes but HTAB.
fn is_trailer_field(line: &[u8]) -> bool {
    line.iter()
        .position(|&b| b == b':')
        .is_some_and(|colon| colon > 0)
        && !matches!(line[0], b' ' | b'\t')
        && line.iter().all(|&b| b == b'\t' || (b >= 0x20 && b != 0x7f))
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
    fn incremental_decode_matches_whole_decode_and_drops_framing() {
        let raw = b"3;x=y\r\nabc\r\n1\r\nd\r\n0\r\nT: 1\r\n\r\nNEXT";
        let mut decoder = ChunkedDecoder::default();
        let mut body = Vec::new();
        // Feed one byte more each time, dropping consumed framing as the
        // connection loop does; every byte is looked at once.
        let mut window: Vec<u8> = Vec::new();
        let mut fed = 0;
        let consumed = loop {
            window.push(raw[fed]);
            fed += 1;
            match decoder.decode(&window, 100, 100, &mut body).unwrap() {
                ChunkedStatus::Complete { consumed } => break consumed,
                ChunkedStatus::Partial => {
                    let done = decoder.take_consumed();
                    window.drain(..done);
                }
            }
        };
        assert_eq!(body, b"abcd");
        assert_eq!(&raw[fed - window.len() + consumed..fed], b"");
        assert_eq!(fed, raw.len() - 4, "stopped right after the final CRLF");
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
