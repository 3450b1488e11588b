//! Encoding a response into the connection's output buffer.
//!
//! The input is any protocol-neutral [`ResponseView`] (the app's
//! `Response` is one); this file decides everything HTTP/1 about it:
//! the status line, the fields the server adds, the body's framing, and
//! the `500` sent instead of a response that cannot be sent safely.

use super::date::DATE_LEN;
use super::head::eq_lowercase;
use super::HttpError;
use std::borrow::Cow;

use http::StatusCode;

use crate::message::{BodyContent, HeaderText, ResponseParts, ResponseView};

/// What the connection decided about this response beyond the app's say.
#[derive(Clone, Copy, Debug)]
pub struct EncodeOptions<'a> {
    /// Current `Date` value.
    pub date: &'a [u8; DATE_LEN],
    /// The request was `HEAD`: send the headers, not the body.
    pub head_only: bool,
    /// The server closes after this response: send `Connection: close`.
    pub close: bool,
    /// An HTTP/1.0 client asked for keep-alive: confirm it.
    pub keep_alive_1_0: bool,
    /// The client speaks HTTP/1.1, so a stream can go out with chunked coding.
    pub http11: bool,
}

/// Bodies up to this size are copied into the output buffer behind their
/// head (one write for a whole pipelined batch); larger ones are written
/// from where they are, beside the buffer, with one vectored write.
pub const COPY_LIMIT: usize = 8 * 1024;

/// How the body of an encoded response goes out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyPlan {
    /// Entirely in the output already, or there is none to send.
    Written,
    /// Not copied: the response's bytes go out as they are, after the head.
    Separate,
    /// Of a length known up front but not in memory (a file's): the
    /// connection sends it after the head, from where it is.
    Sized,
    /// A stream, sent with chunked coding.
    Chunked,
    /// A stream, sent until the connection closes (HTTP/1.0 has no chunks).
    UntilClose,
    /// `101`: the connection is taken over once the head is sent.
    Upgrade,
}

/// What an encoding sent: the status that went out and how the body follows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Encoded {
    /// The status sent: the response's own, or `500` when it was replaced.
    pub status: StatusCode,
    /// How the body goes out.
    pub plan: BodyPlan,
    /// The response could not be sent safely and a `500` went instead
    /// (with its own small body, already written).
    pub replaced: bool,
}

/// Append `response` to `out` as HTTP/1.1 bytes: the head, and the body
/// when it is small; the answer says what was sent and what, if anything,
/// follows.
///
/// A response whose status or header fields cannot be sent safely (a CR or
/// LF in a value would split the response) is replaced by a 500, so an app
/// bug cannot corrupt the stream. Header text given as `&'static str` is
/// part of the program and is trusted; owned text, which may come from a
/// request, is checked.
pub fn encode_response<R: ResponseView + ?Sized>(
    response: &R,
    options: &EncodeOptions<'_>,
    out: &mut Vec<u8>,
) -> Encoded {
    encode_with(response, options, out, OwnFields::default())
}

/// Encode [`INVALID_RESPONSE`] in place of a response that cannot be sent.
#[cold]
fn encode_replacement(options: &EncodeOptions<'_>, out: &mut Vec<u8>) -> Encoded {
    Encoded {
        replaced: true,
        ..encode_response(&INVALID_RESPONSE, options, out)
    }
}

/// Append the interim `100 Continue` response, which tells a client that
/// sent `Expect: 100-continue` to go on with its body. The reader says
/// when one is owed ([`Awaiting::owes_continue`](super::Awaiting::owes_continue)).
pub fn encode_continue(out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// Fields the app set itself, so the server leaves its own out. Rare: the
/// encoder assumes none and starts over if a field says otherwise, so the
/// usual response is encoded in one pass over its fields.
#[derive(Clone, Copy, Default)]
struct OwnFields {
    server: bool,
    date: bool,
}

#[inline(always)]
fn encode_with<R: ResponseView + ?Sized>(
    response: &R,
    options: &EncodeOptions<'_>,
    out: &mut Vec<u8>,
    own: OwnFields,
) -> Encoded {
    let status = response.status();
    let upgrade = status == StatusCode::SWITCHING_PROTOCOLS && response.upgrades();
    // Other interim (1xx) responses are the server's business: an app that
    // returned one would leave the client waiting for a final response.
    if !upgrade && !(200..=599).contains(&status.as_u16()) {
        return encode_replacement(options, out);
    }
    let content = response.body_content();
    // A body of known length that is not in memory (a file's).
    let sized = match content {
        BodyContent::Sized(len) => Some(len),
        _ => None,
    };
    let (bytes, is_stream) = match content.bytes() {
        Some(bytes) => (bytes, false),
        None => (&[][..], sized.is_none()),
    };
    let bodyless = status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let sends_body = !options.head_only && !bodyless && !upgrade;
    let copied = sends_body && !is_stream && sized.is_none() && bytes.len() <= COPY_LIMIT;
    let start = out.len();
    let common = status == StatusCode::OK && !own.server;
    if !common {
        // Written before the room is reserved: its length has no bound the
        // reservation could rely on (an unknown code's reason is the app's).
        write_status_line(status, out);
    }
    let mut head = Appender::new(out, HEAD_ROOM + if copied { bytes.len() } else { 0 });
    if common {
        head.put(OK_LINE);
    } else if !own.server {
        head.put(SERVER_FIELD);
    }
    if !own.date {
        head.put(b"Date: ");
        head.put(options.date);
        head.put(b"\r\n");
    }
    let mut length = None;
    for (name, value) in response.fields() {
        if !sendable_name(name) || !sendable_value(value) {
            head.abandon(start);
            return encode_replacement(options, out);
        }
        match name.len() {
            4 if !own.date && eq_lowercase(name.as_bytes(), b"date") => {
                head.abandon(start);
                return encode_with(response, options, out, OwnFields { date: true, ..own });
            }
            6 if !own.server && eq_lowercase(name.as_bytes(), b"server") => {
                head.abandon(start);
                return encode_with(
                    response,
                    options,
                    out,
                    OwnFields {
                        server: true,
                        ..own
                    },
                );
            }
            // Framing and connection management are the server's job
            // (but for the `Connection: upgrade` of a 101).
            10 if !upgrade && eq_lowercase(name.as_bytes(), b"connection") => continue,
            14 if eq_lowercase(name.as_bytes(), b"content-length") => {
                length = Some(&**value);
                continue;
            }
            17 if eq_lowercase(name.as_bytes(), b"transfer-encoding") => continue,
            _ => {}
        }
        head.reserve(name.len() + value.len() + 4);
        head.put(name.as_bytes());
        head.put(b": ");
        head.put(value.as_bytes());
        head.put(b"\r\n");
    }
    if upgrade {
        head.put(b"\r\n");
        head.finish();
        return sent(status, BodyPlan::Upgrade);
    }
    let stream = is_stream && sends_body;
    // A HEAD or 304 answer without a body may state the length the body
    // would have (RFC 9110 §8.6); otherwise the length is the body's.
    let stated = length.filter(|length| {
        bytes.is_empty()
            && (options.head_only || status == StatusCode::NOT_MODIFIED)
            && !length.is_empty()
            && length.bytes().all(|b| b.is_ascii_digit())
    });
    if let Some(length) = stated {
        head.reserve(length.len());
        head.put(b"Content-Length: ");
        head.put(length.as_bytes());
        head.put(b"\r\n");
    } else if is_stream && !bodyless {
        // A HEAD answer states the framing a GET would get (chunked; to
        // HTTP/1.0, none: until the connection closes), never a length
        // the body does not have.
        if options.http11 {
            head.put(b"Transfer-Encoding: chunked\r\n");
        }
    } else if !bodyless {
        let len = sized.unwrap_or(bytes.len() as u64);
        head.put(b"Content-Length: ");
        head.put(itoa::Buffer::new().format(len).as_bytes());
        head.put(b"\r\n");
    }
    if options.close {
        head.put(b"Connection: close\r\n");
    } else if options.keep_alive_1_0 {
        head.put(b"Connection: keep-alive\r\n");
    }
    head.put(b"\r\n");
    if copied {
        head.put(bytes);
    }
    head.finish();
    let plan = if copied || !sends_body || sized == Some(0) {
        BodyPlan::Written
    } else if sized.is_some() {
        BodyPlan::Sized
    } else if stream && options.http11 {
        BodyPlan::Chunked
    } else if stream {
        BodyPlan::UntilClose
    } else {
        BodyPlan::Separate
    };
    sent(status, plan)
}

/// The response went out as given.
#[inline(always)]
fn sent(status: StatusCode, plan: BodyPlan) -> Encoded {
    Encoded {
        status,
        plan,
        replaced: false,
    }
}

/// The common status line, with our `Server` field.
const OK_LINE: &[u8] = b"HTTP/1.1 200 OK\r\nServer: shardd\r\n";
const SERVER_FIELD: &[u8] = b"Server: shardd\r\n";

/// Room reserved for what the server adds to a head besides the app's
/// fields (each reserved as it comes) and the status line of an uncommon
/// status: `Server`, `Date`, the framing field, `Connection`, the blank line.
const HEAD_ROOM: usize = 256;

// The most the server adds after the reservation, each piece at its
// longest: the 200 line and `Server`, `Date`, `Content-Length` with 20
// digits (a stated length is one of the app's fields, counted with them),
// `Connection: keep-alive`, the blank line. Every other piece is the
// app's (counted exactly) or the body (counted exactly).
const _: () = assert!(
    OK_LINE.len()
        + "Date: \r\n".len()
        + DATE_LEN
        + "Content-Length: \r\n".len()
        + 20
        + "Connection: keep-alive\r\n".len()
        + 2
        <= HEAD_ROOM
);

/// Appends to a `Vec` through its spare capacity, reserved up front for
/// the whole head (and small body), keeping the length in a register
/// until `finish`: a piece costs a copy, not a capacity check and a reload
/// and store of the vector's length (75 instructions a response).
///
/// The reservations are what make this sound: `encode_response` reserves
/// the body and [`HEAD_ROOM`] for its own pieces up front (their bound is
/// checked at compile time) and each app field before it is put; debug
/// builds (the tests, the fuzzer) check every piece as well.
struct Appender<'v> {
    out: &'v mut Vec<u8>,
    at: *mut u8,
    len: usize,
    /// Room kept free after each app field for what is still to come
    /// (the server's own pieces and a copied body).
    tail: usize,
    /// Bytes the appender may write up to (debug check only).
    #[cfg(debug_assertions)]
    end: usize,
}

impl<'v> Appender<'v> {
    /// Start appending, with `tail` bytes reserved for the server's pieces and the body.
    #[inline(always)]
    fn new(out: &'v mut Vec<u8>, tail: usize) -> Self {
        out.reserve(tail);
        Appender {
            at: out.as_mut_ptr(),
            len: out.len(),
            tail,
            #[cfg(debug_assertions)]
            end: out.len() + tail,
            out,
        }
    }

    #[inline(always)]
    fn put(&mut self, bytes: &[u8]) {
        #[cfg(debug_assertions)]
        assert!(
            self.len + bytes.len() <= self.end,
            "a piece past the reserved room"
        );
        // SAFETY: `at` is the vector's buffer, and its capacity covers
        // every piece (see the type's comment); `bytes` cannot lie in the
        // vector's spare capacity, so the regions do not overlap.
        unsafe { copy_small(bytes, self.at.add(self.len)) };
        self.len += bytes.len();
    }

    /// Make room for an app field of `more` bytes, keeping the tail free.
    #[inline(always)]
    fn reserve(&mut self, more: usize) {
        if self.out.capacity() - self.len < more + self.tail {
            grow(self.out, self.len, more + self.tail);
            self.at = self.out.as_mut_ptr();
        }
        #[cfg(debug_assertions)]
        {
            self.end = self.end.max(self.len + more + self.tail);
        }
    }

    /// Drop what was put since `start` (the encoding starts over).
    fn abandon(self, start: usize) {
        self.out.truncate(start);
    }

    /// Make what was put part of the vector.
    #[inline(always)]
    fn finish(self) {
        // SAFETY: `len` is within capacity and every byte up to it was
        // written (by the vector's owner before, or by `put`).
        unsafe { self.out.set_len(self.len) };
    }
}

/// `Content-Type: text/plain`, the one field of the server's own responses.
const PLAIN_TEXT: &[(HeaderText, HeaderText)] =
    &[(Cow::Borrowed("Content-Type"), Cow::Borrowed("text/plain"))];

/// Sent instead of a response that cannot be sent safely.
const INVALID_RESPONSE: ResponseParts<'static> = ResponseParts {
    status: StatusCode::INTERNAL_SERVER_ERROR,
    fields: PLAIN_TEXT,
    body: BodyContent::Static(b"invalid response from application\n"),
    upgrade: false,
};

/// Static text is trusted; an owned name must be a token.
fn sendable_name(name: &HeaderText) -> bool {
    match name {
        Cow::Borrowed(_) => true,
        Cow::Owned(name) => {
            !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
        }
    }
}

/// Static text is trusted; an owned value must hold no control bytes but HTAB.
fn sendable_value(value: &HeaderText) -> bool {
    match value {
        Cow::Borrowed(_) => true,
        Cow::Owned(value) => value
            .bytes()
            .all(|b| b == b'\t' || (b >= 0x20 && b != 0x7f)),
    }
}

/// Grow `out`, whose first `len` bytes are written, by at least `room`.
#[cold]
fn grow(out: &mut Vec<u8>, len: usize, room: usize) {
    // SAFETY: every byte up to `len` was written (by the vector's owner or `put`).
    unsafe { out.set_len(len) };
    out.reserve(room);
}

/// Copy `bytes` to `to`. Most pieces of a head are a few bytes long and
/// of a length known only at run time, which the compiler hands to
/// `memcpy`; two overlapping moves cost a third of that call.
///
/// # Safety
/// `to` is valid for `bytes.len()` bytes of writes and does not overlap `bytes`.
#[inline(always)]
unsafe fn copy_small(bytes: &[u8], to: *mut u8) {
    let len = bytes.len();
    let from = bytes.as_ptr();
    // SAFETY: (all arms) every read is within `bytes` and every write
    // within the `len` bytes after `to`, which the caller vouches for;
    // the moves are unaligned, so any address will do.
    unsafe {
        if len > 16 {
            std::ptr::copy_nonoverlapping(from, to, len);
        } else if len >= 8 {
            let head = from.cast::<u64>().read_unaligned();
            let tail = from.add(len - 8).cast::<u64>().read_unaligned();
            to.cast::<u64>().write_unaligned(head);
            to.add(len - 8).cast::<u64>().write_unaligned(tail);
        } else if len >= 4 {
            let head = from.cast::<u32>().read_unaligned();
            let tail = from.add(len - 4).cast::<u32>().read_unaligned();
            to.cast::<u32>().write_unaligned(head);
            to.add(len - 4).cast::<u32>().write_unaligned(tail);
        } else if len >= 2 {
            let head = from.cast::<u16>().read_unaligned();
            let tail = from.add(len - 2).cast::<u16>().read_unaligned();
            to.cast::<u16>().write_unaligned(head);
            to.add(len - 2).cast::<u16>().write_unaligned(tail);
        } else if len == 1 {
            *to = *from;
        }
    }
}

/// Append the response for a refused request; the connection closes after it.
pub fn encode_error(error: HttpError, date: &[u8; DATE_LEN], out: &mut Vec<u8>) {
    let body = format!("{}\n", error.detail());
    let response = ResponseParts {
        status: error.status(),
        fields: PLAIN_TEXT,
        body: BodyContent::Bytes(body.as_bytes()),
        upgrade: false,
    };
    let options = EncodeOptions {
        date,
        head_only: false,
        close: true,
        keep_alive_1_0: false,
        http11: true,
    };
    encode_response(&response, &options, out);
}

fn write_status_line(status: StatusCode, out: &mut Vec<u8>) {
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests;
