//! `Output`: what a connection has to send — encoded bytes, and large
//! bodies to be written from where they are (not copied), in order.

use std::io::IoSlice;

use crate::body::Body;
use crate::http::EncodeMemo;

/// At most this many pieces per vectored write (the kernel takes 1024;
/// a batch of pipelined responses rarely has more than a few large bodies).
const MAX_SLICES: usize = 64;

/// A connection's pending output.
#[derive(Debug, Default)]
pub(crate) struct Output {
    /// Encoded heads and small bodies.
    pub bytes: Vec<u8>,
    /// Large bodies, each to be sent once `bytes` up to its offset is.
    pub(crate) separate: Vec<(usize, Body)>,
    /// The last response encoded here, to copy when the app repeats it.
    pub(crate) memo: EncodeMemo,
}

impl Output {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Output {
            bytes: Vec::with_capacity(capacity),
            separate: Vec::new(),
            memo: EncodeMemo::default(),
        }
    }

    /// Bytes waiting to be sent.
    pub(crate) fn len(&self) -> usize {
        self.bytes.len()
            + self
                .separate
                .iter()
                .map(|(_, body)| body_bytes(body).len())
                .sum::<usize>()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.bytes.is_empty() && self.separate.is_empty()
    }

    /// Send `body` after everything encoded so far, without copying it.
    pub(crate) fn push_separate(&mut self, body: Body) {
        if !body_bytes(&body).is_empty() {
            self.separate.push((self.bytes.len(), body));
        }
    }

    pub(crate) fn clear(&mut self) {
        self.bytes.clear();
        self.separate.clear();
    }

    /// The pieces still to send after the first `written` bytes, in order.
    pub(crate) fn slices(&self, written: usize) -> Vec<IoSlice<'_>> {
        let mut pieces: Vec<&[u8]> = Vec::with_capacity(2 * self.separate.len() + 1);
        let mut from = 0;
        for (at, body) in &self.separate {
            pieces.push(&self.bytes[from..*at]);
            pieces.push(body_bytes(body));
            from = *at;
        }
        pieces.push(&self.bytes[from..]);
        let mut slices = Vec::with_capacity(pieces.len());
        let mut skip = written;
        for piece in pieces {
            if skip >= piece.len() {
                skip -= piece.len();
                continue;
            }
            slices.push(IoSlice::new(&piece[skip..]));
            skip = 0;
            if slices.len() == MAX_SLICES {
                break;
            }
        }
        slices
    }
}

fn body_bytes(body: &Body) -> &[u8] {
    body.as_bytes().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn joined(output: &Output, written: usize) -> Vec<u8> {
        output
            .slices(written)
            .iter()
            .flat_map(|s| s.to_vec())
            .collect()
    }

    #[test]
    fn separate_bodies_go_out_in_order_after_what_precedes_them() {
        let mut output = Output::default();
        output.bytes.extend_from_slice(b"head1|");
        output.push_separate(Body::Owned(b"BODY1".to_vec()));
        output.bytes.extend_from_slice(b"head2|");
        output.push_separate(Body::Static(b"BODY2"));
        output.bytes.extend_from_slice(b"tail");
        assert_eq!(joined(&output, 0), b"head1|BODY1head2|BODY2tail");
        assert_eq!(joined(&output, 8), b"DY1head2|BODY2tail");
        assert_eq!(output.len(), 26);
    }
}
