//! The last head decoded, kept so that the same head sent again is not
//! decoded again.
//!
//! Clients repeat themselves: a pipelining benchmark, a health check, a
//! polling client and most API clients send the same head byte for byte,
//! request after request. Decoding a head (httparse, then the framing and
//! smuggling rules) is a pure function of its bytes and three limits, so
//! when the bytes at the front of the buffer are the last head's bytes, the
//! last head's result is the answer: one comparison instead of a parse.
//!
//! The memo lives with the [`ReadBuffers`](super::ReadBuffers) whose `spans`
//! the last decode filled, so a memo hit also finds the right header spans.

use super::head::Head;
use crate::limits::Limits;

/// Heads longer than this are not remembered: a browser's head is under
/// 1 KiB, and copying a longer one on every miss would cost more than the
/// hits it could save.
pub const MEMO_MAX_HEAD: usize = 1024;

/// The last head decoded from these buffers: its bytes and what they decoded to.
#[derive(Debug, Default)]
pub struct HeadMemo {
    bytes: Vec<u8>,
    /// `None` when nothing is remembered (or `spans` no longer match it).
    head: Option<Head>,
    /// The limits the head was checked against; other limits, other answers.
    checked_with: (usize, usize, usize),
}

impl HeadMemo {
    /// The remembered head, if `avail` starts with its exact bytes and the
    /// limits are the ones it was checked against.
    #[inline(always)]
    pub fn recall(&self, avail: &[u8], limits: &Limits) -> Option<Head> {
        let head = self.head?;
        let same = avail.len() >= self.bytes.len()
            && avail[..self.bytes.len()] == self.bytes[..]
            && self.checked_with == limit_key(limits);
        same.then_some(head)
    }

    /// Forget the head: the spans are about to be overwritten.
    #[inline(always)]
    pub fn forget(&mut self) {
        self.head = None;
    }

    /// Remember `head`, just decoded from `bytes` (its whole head, final
    /// empty line included) with the spans now in the buffers.
    #[inline(always)]
    pub fn remember(&mut self, bytes: &[u8], head: Head, limits: &Limits) {
        if bytes.len() > MEMO_MAX_HEAD {
            return;
        }
        self.bytes.clear();
        self.bytes.extend_from_slice(bytes);
        self.head = Some(head);
        self.checked_with = limit_key(limits);
    }
}

/// The limits [`decode_head`](super::decode_head) reads.
///
/// Every field is named (no `..`): a new limit does not compile until it
/// is decided here whether a remembered head's answer depends on it. One
/// left out by mistake would let a head checked under the old value pass
/// under the new one.
#[inline(always)]
fn limit_key(limits: &Limits) -> (usize, usize, usize) {
    let Limits {
        max_request_line,
        max_head_bytes,
        max_headers,
        // The body's size is checked against the head's framing after
        // the head is recalled, on every request.
        max_body_bytes: _,
        // What the connection may buffer and how long it may wait do not
        // change how a head decodes.
        max_output_bytes: _,
        header_timeout: _,
        idle_timeout: _,
        body_timeout: _,
        send_timeout: _,
        drain_grace: _,
    } = *limits;
    (max_headers, max_head_bytes, max_request_line)
}
