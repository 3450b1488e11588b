//! `OwnedHead`: a copy of a request's head, for a request whose body
//! streams to the app (the read buffer keeps receiving the body meanwhile).

use std::ops::Range;

use crate::http::{path_len, HeaderSpan, RequestParts, Version};

/// A copy of a request's head: the read buffer it came from keeps
/// receiving the body while the app holds the request.
pub(crate) struct OwnedHead {
    bytes: Vec<u8>,
    spans: Vec<HeaderSpan>,
    method: Range<usize>,
    target: Range<usize>,
    version: Version,
    keep_alive: bool,
}

impl OwnedHead {
    pub(crate) fn copy(parts: &RequestParts<'_>) -> Self {
        let offset = |text: &str| {
            let at = text.as_ptr() as usize - parts.head_bytes.as_ptr() as usize;
            at..at + text.len()
        };
        OwnedHead {
            bytes: parts.head_bytes.to_vec(),
            spans: parts.spans.to_vec(),
            method: offset(parts.method),
            target: offset(parts.target),
            version: parts.version,
            keep_alive: parts.keep_alive,
        }
    }

    pub(super) fn parts(&self) -> RequestParts<'_> {
        let text = |range: &Range<usize>| {
            // The bytes were validated as text when the head was decoded.
            std::str::from_utf8(&self.bytes[range.clone()]).unwrap_or_default()
        };
        RequestParts {
            method: text(&self.method),
            target: text(&self.target),
            path_len: path_len(&self.bytes[self.target.clone()]),
            version: self.version,
            keep_alive: self.keep_alive,
            head_bytes: &self.bytes,
            spans: &self.spans,
            body: &[],
        }
    }
}
