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
use super::head_memo::HeadMemo;
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
    /// The last head decoded into `spans`, so the same head again is not decoded again.
    pub memo: HeadMemo,
}

/// What the front of the unconsumed bytes holds.
#[derive(Debug)]
pub enum Decoded<'b> {
    /// A whole request. The reader has moved past it: the next
    /// [`RequestReader::decode`] looks at what follows.
    Request(RequestParts<'b>),
    /// Only with [`RequestReader::offering_heads`]: the head of a request
    /// with a body (`body` is empty). Say next how the body is taken:
    /// [`RequestReader::stream_body`], or just call `decode` again to have
    /// it buffered as usual.
    Head(RequestParts<'b>),
    /// More bytes are needed.
    Incomplete(Awaiting),
    /// The bytes break a rule: answer with this error and close.
    Refused(HttpError),
}

/// One complete request, borrowed from the [`ReadBuffers`]: what an app's
/// `Request` is made of, so handing it over copies a few words, no bytes.
///
/// Only this crate builds them (`non_exhaustive`): [`Request::headers`](crate::Request::headers)
/// relies on `spans` pointing at field names httparse checked.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct RequestParts<'b> {
    /// The method token, as sent.
    pub method: &'b str,
    /// The request target, as sent (path and query).
    pub target: &'b str,
    /// How much of `target` comes before its `?` (all of it without one).
    pub path_len: usize,
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

impl Awaiting {
    /// Whether to send `100 Continue` now
    /// ([`encode_continue`](super::encode_continue) writes it).
    pub fn owes_continue(self) -> bool {
        matches!(
            self,
            Awaiting::Body {
                send_continue: true
            }
        )
    }
}

/// Where the request at the front stands.
#[derive(Clone, Debug, Default)]
#[allow(clippy::large_enum_variant)] // one per connection, never moved around
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
        /// The head was offered for streaming ([`RequestReader::offer_head`]).
        offered: bool,
    },
    /// Its body goes to the app as it arrives ([`RequestReader::stream_body`]);
    /// the head is consumed already.
    Streaming(Streaming),
}

/// What is left of a body being streamed.
#[derive(Clone, Debug)]
enum Streaming {
    Length(usize),
    Chunked(ChunkedDecoder),
}

/// A piece of a streamed body ([`RequestReader::next_body_piece`]).
#[derive(Debug, PartialEq, Eq)]
pub enum BodyPiece {
    /// This many body bytes were appended to the output.
    Data(usize),
    /// Nothing more is buffered; read more.
    NeedMore,
    /// The body is complete; the reader is at the next request.
    End,
    /// The framing is broken: answer with this error and close.
    Refused(HttpError),
}

/// Decodes the requests of one connection, however its bytes are split into reads.
#[derive(Debug, Default)]
pub struct RequestReader {
    /// Offset in `bytes` where the next request starts; everything before is consumed.
    start: usize,
    stage: Stage,
    /// Hand out the head of a request with a body first ([`Decoded::Head`]).
    offer_heads: bool,
}

impl RequestReader {
    /// A reader that hands out the head of each request with a body before
    /// its body ([`Decoded::Head`]), so the body can be streamed.
    pub fn offering_heads() -> Self {
        RequestReader {
            offer_heads: true,
            ..RequestReader::default()
        }
    }

    /// Decode the request at the front of the unconsumed bytes.
    #[inline(always)] // the hot path: keeps the decode inside the connection loop
    pub fn decode<'b>(&mut self, buffers: &'b mut ReadBuffers, limits: &Limits) -> Decoded<'b> {
        let ReadBuffers {
            bytes,
            spans,
            body,
            memo,
        } = buffers;
        let avail = &bytes[self.start..];
        if avail.is_empty() {
            bytes.clear();
            self.start = 0;
            return Decoded::Incomplete(match self.stage {
                Stage::Fresh => Awaiting::Request,
                Stage::Head { .. } => Awaiting::Head,
                Stage::Body { .. } | Stage::Streaming(_) => Awaiting::Body {
                    send_continue: false,
                },
            });
        }
        let head = match &self.stage {
            Stage::Body { head, .. } => *head,
            Stage::Streaming(_) => {
                return Decoded::Incomplete(Awaiting::Body {
                    send_continue: false,
                })
            }
            Stage::Head { parsed } if !worth_parsing(avail, *parsed, limits) => {
                return Decoded::Incomplete(Awaiting::Head)
            }
            Stage::Fresh | Stage::Head { .. } => match memo.recall(avail, limits) {
                Some(head) => head,
                None => {
                    memo.forget();
                    match decode_head(avail, limits, spans) {
                        Ok(Some(head)) => {
                            memo.remember(&avail[..head.len], head, limits);
                            head
                        }
                        Ok(None) => {
                            self.stage = Stage::Head {
                                parsed: avail.len(),
                            };
                            return Decoded::Incomplete(Awaiting::Head);
                        }
                        Err(error) => return Decoded::Refused(error),
                    }
                }
            },
        };
        let at = self.start;
        if self.offer_heads && head.framing != Framing::None && self.offer(head) {
            let head_bytes = &bytes[at..at + head.len];
            return Decoded::Head(parts_of(&head, head_bytes, spans, &[]));
        }
        let rest = &avail[head.len..];
        let (body_range, consumed) = match head.framing {
            Framing::Length(length) if length > limits.max_body_bytes => {
                return Decoded::Refused(HttpError::PayloadTooLarge)
            }
            // An empty range, not `body`: that still holds the last chunked body.
            Framing::None => (Some(at + head.len..at + head.len), head.len),
            Framing::Length(length) if rest.len() >= length => (
                Some(at + head.len..at + head.len + length),
                head.len + length,
            ),
            Framing::Length(_) => return Decoded::Incomplete(self.await_body(head, body)),
            Framing::Chunked => {
                let waiting = self.await_body(head, body);
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
        Decoded::Request(parts_of(&head, head_bytes, spans, body))
    }

    /// Enter the body stage with the head marked offered; false if it was already.
    fn offer(&mut self, head: Head) -> bool {
        match &mut self.stage {
            Stage::Body { offered, .. } => !std::mem::replace(offered, true),
            _ => {
                self.stage = Stage::Body {
                    head,
                    chunked: ChunkedDecoder::default(),
                    continue_sent: false,
                    offered: true,
                };
                true
            }
        }
    }

    /// Enter (or stay in) the body stage; say whether `100 Continue` is owed now.
    fn await_body(&mut self, head: Head, body: &mut Vec<u8>) -> Awaiting {
        if !matches!(self.stage, Stage::Body { .. }) {
            body.clear();
            self.stage = Stage::Body {
                head,
                chunked: ChunkedDecoder::default(),
                continue_sent: false,
                offered: false,
            };
        }
        let Stage::Body {
            head,
            continue_sent,
            ..
        } = &mut self.stage
        else {
            unreachable!()
        };
        Awaiting::Body {
            send_continue: owe_continue(head, continue_sent),
        }
    }

    /// Stream the body of the request just offered: its head is consumed,
    /// and [`next_body_piece`](Self::next_body_piece) hands out its body as
    /// it arrives, with no `max_body_bytes` limit (the app reads at its own pace).
    ///
    /// The answer says whether to send `100 Continue` now (the client
    /// waits for it before sending the body), as [`decode`](Self::decode)
    /// does for a body it buffers.
    pub fn stream_body(&mut self) -> Awaiting {
        let Stage::Body {
            head,
            chunked,
            mut continue_sent,
            ..
        } = std::mem::take(&mut self.stage)
        else {
            return Awaiting::Body {
                send_continue: false,
            };
        };
        let send_continue = owe_continue(&head, &mut continue_sent);
        self.start += head.len;
        // A chunked decoder carries on where it stopped; what it decoded
        // already is in `buffers.body` and goes out first.
        self.stage = Stage::Streaming(match head.framing {
            Framing::Length(length) => Streaming::Length(length),
            Framing::Chunked | Framing::None => Streaming::Chunked(chunked),
        });
        Awaiting::Body { send_continue }
    }

    /// Move the next buffered piece of a streamed body to the end of `out`.
    pub fn next_body_piece(
        &mut self,
        buffers: &mut ReadBuffers,
        limits: &Limits,
        out: &mut Vec<u8>,
    ) -> BodyPiece {
        let Stage::Streaming(streaming) = &mut self.stage else {
            return BodyPiece::End;
        };
        let avail = &buffers.bytes[self.start..];
        match streaming {
            Streaming::Length(0) => {}
            Streaming::Length(left) => {
                if avail.is_empty() {
                    return BodyPiece::NeedMore;
                }
                let n = avail.len().min(*left);
                out.extend_from_slice(&avail[..n]);
                *left -= n;
                self.start += n;
                return BodyPiece::Data(n);
            }
            Streaming::Chunked(_) if !buffers.body.is_empty() => {
                out.extend_from_slice(&buffers.body);
                let n = buffers.body.len();
                buffers.body.clear();
                return BodyPiece::Data(n);
            }
            Streaming::Chunked(decoder) => {
                let before = out.len();
                match decoder.decode(avail, usize::MAX, limits.max_head_bytes, out) {
                    Ok(ChunkedStatus::Complete { consumed }) => {
                        self.start += consumed;
                        if out.len() > before {
                            // Hand out the last data; the end is seen next call.
                            self.stage = Stage::Streaming(Streaming::Length(0));
                            return BodyPiece::Data(out.len() - before);
                        }
                    }
                    Ok(ChunkedStatus::Partial) => {
                        let decoded = decoder.take_consumed();
                        buffers.bytes.drain(self.start..self.start + decoded);
                        return match out.len() - before {
                            0 => BodyPiece::NeedMore,
                            n => BodyPiece::Data(n),
                        };
                    }
                    Err(error) => return BodyPiece::Refused(error),
                }
            }
        }
        self.stage = Stage::Fresh;
        BodyPiece::End
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

/// Whether `100 Continue` is owed now for the request of `head`, which
/// is then marked sent: once per request, and only when asked for.
fn owe_continue(head: &Head, continue_sent: &mut bool) -> bool {
    let owed = head.expect_continue && !*continue_sent;
    *continue_sent |= owed;
    owed
}

/// A request's parts from its decoded head and body.
#[inline(always)]
fn parts_of<'b>(
    head: &Head,
    head_bytes: &'b [u8],
    spans: &'b [HeaderSpan],
    body: &'b [u8],
) -> RequestParts<'b> {
    RequestParts {
        method: validated_str(slice(head_bytes, head.method)),
        target: validated_str(slice(head_bytes, head.target)),
        path_len: head.path_len as usize,
        version: head.version,
        keep_alive: head.keep_alive,
        head_bytes,
        spans,
        body,
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
mod tests;
