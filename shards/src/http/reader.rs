//! The request reader: bytes in, complete requests (or a refusal) out.
//!
//! It owns the framing state of one connection between reads — how much of a
//! partial head was already looked at, the chunked decoder of a body that is
//! still arriving, whether `100 Continue` was owed — and drops decoded chunk
//! framing from the buffer as it goes, so a long upload costs linear time and
//! a buffer proportional to what is still to come. The connection loop, the
//! property tests, the fuzz target and the codec bench all drive this one
//! reader, so they all exercise what runs in production.

use memchr::memchr;

use super::chunked::{ChunkedDecoder, ChunkedStatus};
use super::head::{decode_head, slice, Framing, Head, HeaderSpan, Version};
use super::HttpError;
use crate::limits::Limits;

/// A partial head is only parsed again once it is this long, even without
/// a new line (below it, only a newline can complete it or break a limit).
/// 4 KiB is a quarter of the default `max_head_bytes`: a client sending one
/// huge line still has its limit checked every 4 KiB, not once per byte.
const RESCAN_PARTIAL_HEAD_AFTER: usize = 4096;

/// The buffers a reader decodes from.
#[derive(Debug, Default)]
pub struct ReadBuffers {
    /// Bytes received; the reader decides which of them are already consumed.
    pub bytes: Vec<u8>,
    /// Header positions of the request being decoded.
    pub spans: Vec<HeaderSpan>,
    /// The de-chunked body of the request being decoded.
    pub body: Vec<u8>,
}

/// What the front of the unconsumed bytes holds.
#[derive(Debug)]
pub enum Decoded<'b> {
    /// A whole request. The reader has moved past it: the next
    /// [`RequestReader::decode`] looks at what follows.
    Request(RequestParts<'b>),
    /// More bytes are needed.
    Incomplete(Awaiting),
    /// The bytes break a rule: answer with this error and close.
    Refused(HttpError),
}

/// One complete request, borrowed from the [`ReadBuffers`]: what an app's
/// `Request` is made of, so handing it over copies a few words, no bytes.
#[derive(Clone, Copy, Debug)]
pub struct RequestParts<'b> {
    /// The method token, as sent.
    pub method: &'b str,
    /// The request target, as sent (path and query).
    pub target: &'b str,
    /// The protocol version.
    pub version: Version,
    /// Whether the connection may carry another request after this one.
    pub keep_alive: bool,
    /// The head as received (request line and fields): what `spans` point into.
    pub head_bytes: &'b [u8],
    /// Where each header field lies in `head_bytes`.
    pub spans: &'b [HeaderSpan],
    /// The body, de-chunked if it was sent chunked.
    pub body: &'b [u8],
}

/// What an incomplete read is waiting for: each has its own timeout.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Awaiting {
    /// Nothing of the next request has arrived (keep-alive between requests).
    Request,
    /// Part of a head has arrived.
    Head,
    /// The head has arrived and the body is coming. `send_continue`: the
    /// client asked for `100 Continue` and has not had it yet; send it now
    /// (the reader assumes it is sent and says so once).
    Body {
        /// Whether to send `100 Continue` now.
        send_continue: bool,
    },
}

/// Where the request at the front stands.
#[derive(Clone, Debug, Default)]
enum Stage {
    /// No byte of it has been looked at.
    #[default]
    Fresh,
    /// Its head is partial; this many bytes of it were parsed last time.
    Head { parsed: usize },
    /// Its head is decoded (offsets relative to the request's start); its body is arriving.
    Body {
        head: Head,
        chunked: ChunkedDecoder,
        continue_sent: bool,
    },
}

/// Decodes the requests of one connection, however its bytes are split into reads.
#[derive(Debug, Default)]
pub struct RequestReader {
    /// Offset in `bytes` where the next request starts; everything before is consumed.
    start: usize,
    stage: Stage,
}

impl RequestReader {
    /// Decode the request at the front of the unconsumed bytes.
    #[inline(always)] // the hot path: keeps the decode inside the connection loop
    pub fn decode<'b>(&mut self, buffers: &'b mut ReadBuffers, limits: &Limits) -> Decoded<'b> {
        let ReadBuffers { bytes, spans, body } = buffers;
        let avail = &bytes[self.start..];
        if avail.is_empty() {
            bytes.clear();
            self.start = 0;
            return Decoded::Incomplete(match self.stage {
                Stage::Fresh => Awaiting::Request,
                Stage::Head { .. } => Awaiting::Head,
                Stage::Body { .. } => Awaiting::Body {
                    send_continue: false,
                },
            });
        }
        let head = match &self.stage {
            Stage::Body { head, .. } => *head,
            Stage::Head { parsed } if !worth_parsing(avail, *parsed, limits) => {
                return Decoded::Incomplete(Awaiting::Head)
            }
            Stage::Fresh | Stage::Head { .. } => match decode_head(avail, limits, spans) {
                Ok(Some(head)) => head,
                Ok(None) => {
                    self.stage = Stage::Head {
                        parsed: avail.len(),
                    };
                    return Decoded::Incomplete(Awaiting::Head);
                }
                Err(error) => return Decoded::Refused(error),
            },
        };
        let at = self.start;
        let rest = &avail[head.len..];
        let (body_range, consumed) = match head.framing {
            // An empty range, not `body`: that still holds the last chunked body.
            Framing::None => (Some(at + head.len..at + head.len), head.len),
            Framing::Length(length) if rest.len() >= length => (
                Some(at + head.len..at + head.len + length),
                head.len + length,
            ),
            Framing::Length(_) => {
                // RFC 9110 §10.1.1: ignore Expect in an HTTP/1.0 request.
                let expects = head.expect_continue && head.version == Version::Http11;
                return Decoded::Incomplete(self.await_body(head, expects, body));
            }
            Framing::Chunked => {
                let expects = head.expect_continue;
                let waiting = self.await_body(head, expects, body);
                let Stage::Body { chunked, .. } = &mut self.stage else {
                    unreachable!("await_body enters the body stage")
                };
                let max_body = limits.max_body_bytes;
                match chunked.decode(rest, max_body, limits.max_head_bytes, body) {
                    Ok(ChunkedStatus::Complete { consumed }) => (None, head.len + consumed),
                    Ok(ChunkedStatus::Partial) => {
                        // Decoded framing and data are not needed again: keep the
                        // buffer (and the next decode) proportional to what is to come.
                        let decoded = chunked.take_consumed();
                        let from = at + head.len;
                        bytes.drain(from..from + decoded);
                        return Decoded::Incomplete(waiting);
                    }
                    Err(error) => return Decoded::Refused(error),
                }
            }
        };
        self.start += consumed;
        self.stage = Stage::Fresh;
        let body = match body_range {
            Some(range) => &bytes[range],
            None => &body[..],
        };
        let head_bytes = &bytes[at..at + head.len];
        Decoded::Request(RequestParts {
            method: validated_str(slice(head_bytes, head.method)),
            target: validated_str(slice(head_bytes, head.target)),
            version: head.version,
            keep_alive: head.keep_alive,
            head_bytes,
            spans,
            body,
        })
    }

    /// Enter (or stay in) the body stage; say whether `100 Continue` is owed now.
    fn await_body(&mut self, head: Head, expects_continue: bool, body: &mut Vec<u8>) -> Awaiting {
        if !matches!(self.stage, Stage::Body { .. }) {
            body.clear();
            self.stage = Stage::Body {
                head,
                chunked: ChunkedDecoder::default(),
                continue_sent: false,
            };
        }
        let Stage::Body { continue_sent, .. } = &mut self.stage else {
            unreachable!()
        };
        let send_continue = expects_continue && !*continue_sent;
        *continue_sent |= send_continue;
        Awaiting::Body { send_continue }
    }

    /// The bytes not consumed yet (what follows the last request decoded).
    pub fn unconsumed<'b>(&self, buffers: &'b ReadBuffers) -> &'b [u8] {
        &buffers.bytes[self.start..]
    }

    /// Whether unconsumed bytes are buffered (a request, or part of one).
    pub fn has_buffered(&self, buffers: &ReadBuffers) -> bool {
        self.start < buffers.bytes.len()
    }

    /// Make at least `min_space` bytes of spare capacity in `buffers.bytes`
    /// for the next read: drop consumed bytes first, grow only if still short.
    pub fn make_room(&mut self, buffers: &mut ReadBuffers, min_space: usize) {
        let bytes = &mut buffers.bytes;
        if bytes.capacity() - bytes.len() >= min_space {
            return;
        }
        if self.start > 0 {
            // Offsets kept in `stage` are relative to `start`, so they stay valid.
            bytes.drain(..self.start);
            self.start = 0;
        }
        if bytes.capacity() - bytes.len() < min_space {
            bytes.reserve(bytes.capacity().max(min_space));
        }
    }

    /// Append received bytes (for callers that are not reading a socket).
    pub fn feed(&mut self, buffers: &mut ReadBuffers, received: &[u8]) {
        self.make_room(buffers, received.len());
        buffers.bytes.extend_from_slice(received);
    }
}

/// The method and target as text. httparse has already validated exactly
/// these bytes (it hands them out as `&str`), so checking UTF-8 again on
/// every request would be wasted work.
fn validated_str(bytes: &[u8]) -> &str {
    debug_assert!(std::str::from_utf8(bytes).is_ok());
    // SAFETY: the bytes are the method and target httparse returned as `&str`.
    unsafe { std::str::from_utf8_unchecked(bytes) }
}

/// Only parse a partial head again when what arrived since the last attempt
/// could change the answer: a new line, a byte no head may contain (refused
/// at once, not when its line ends), or a length past a limit or the rescan
/// size. A client sending one byte at a time then costs linear time, not
/// quadratic.
fn worth_parsing(avail: &[u8], parsed: usize, limits: &Limits) -> bool {
    let new = &avail[parsed.saturating_sub(1).min(avail.len())..];
    avail.len() < parsed
        || memchr(b'\n', new).is_some()
        || new
            .iter()
            .any(|&b| (b < 0x20 && b != b'\r' && b != b'\t') || b == 0x7f)
        || avail.len() > RESCAN_PARTIAL_HEAD_AFTER.min(limits.max_request_line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader_with(bytes: &[u8]) -> (RequestReader, ReadBuffers) {
        let mut reader = RequestReader::default();
        let mut buffers = ReadBuffers::default();
        reader.feed(&mut buffers, bytes);
        (reader, buffers)
    }

    #[test]
    fn pipelined_requests_come_out_in_order_then_the_reader_waits() {
        let (mut reader, mut buffers) =
            reader_with(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
        let limits = Limits::default();
        for path in [&b"/a"[..], b"/b"] {
            match reader.decode(&mut buffers, &limits) {
                Decoded::Request(parts) => assert_eq!(parts.target.as_bytes(), path),
                other => panic!("{other:?}"),
            }
        }
        assert!(matches!(
            reader.decode(&mut buffers, &limits),
            Decoded::Incomplete(Awaiting::Request)
        ));
        assert!(buffers.bytes.is_empty(), "consumed bytes are released");
    }

    #[test]
    fn continue_is_owed_once_and_the_body_then_completes() {
        let (mut reader, mut buffers) = reader_with(
            b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
        );
        let limits = Limits::default();
        let decode = |reader: &mut RequestReader, buffers: &mut ReadBuffers| match reader
            .decode(buffers, &limits)
        {
            Decoded::Incomplete(awaiting) => awaiting,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            decode(&mut reader, &mut buffers),
            Awaiting::Body {
                send_continue: true
            }
        );
        assert_eq!(
            decode(&mut reader, &mut buffers),
            Awaiting::Body {
                send_continue: false
            }
        );
        reader.feed(&mut buffers, b"abc");
        match reader.decode(&mut buffers, &limits) {
            Decoded::Request(parts) => assert_eq!(parts.body, b"abc"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn decoded_chunk_framing_is_dropped_while_the_body_arrives() {
        let (mut reader, mut buffers) =
            reader_with(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
        let limits = Limits::default();
        let head_len = buffers.bytes.len();
        for _ in 0..100 {
            reader.feed(&mut buffers, b"4\r\nabcd\r\n");
            assert!(matches!(
                reader.decode(&mut buffers, &limits),
                Decoded::Incomplete(Awaiting::Body { .. })
            ));
            assert_eq!(buffers.bytes.len(), head_len, "framing kept in the buffer");
        }
        reader.feed(&mut buffers, b"0\r\n\r\n");
        match reader.decode(&mut buffers, &limits) {
            Decoded::Request(parts) => assert_eq!(parts.body.len(), 400),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_request_without_a_body_after_a_chunked_one_gets_no_body() {
        let (mut reader, mut buffers) = reader_with(
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
              GET / HTTP/1.1\r\nHost: x\r\n\r\n",
        );
        let limits = Limits::default();
        let mut bodies = Vec::new();
        while let Decoded::Request(parts) = reader.decode(&mut buffers, &limits) {
            bodies.push(parts.body.to_vec());
        }
        assert_eq!(bodies, [b"hello".to_vec(), Vec::new()]);
    }

    #[test]
    fn a_control_byte_in_an_unfinished_head_line_is_refused_at_once() {
        let limits = Limits::default();
        let (mut reader, mut buffers) = reader_with(b"GET /a");
        assert!(matches!(
            reader.decode(&mut buffers, &limits),
            Decoded::Incomplete(Awaiting::Head)
        ));
        reader.feed(&mut buffers, b"\x01");
        assert!(matches!(
            reader.decode(&mut buffers, &limits),
            Decoded::Refused(_)
        ));
    }

    #[test]
    fn a_broken_head_is_refused() {
        let (mut reader, mut buffers) = reader_with(b"GET / HTTP/1.1\nHost: x\r\n\r\n");
        assert!(matches!(
            reader.decode(&mut buffers, &Limits::default()),
            Decoded::Refused(HttpError::BadRequest(_))
        ));
    }
}
