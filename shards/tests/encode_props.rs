//! Property test of the encode memo: whatever sequence of responses and
//! options goes through one [`EncodeMemo`], every encoding is the one
//! [`encode_response`] gives on its own.
//!
//! The responses are drawn from small sets of parts (static and owned
//! text, a value the encoder must refuse, empty, static, owned, shared and
//! streamed bodies, statuses with and without a body, the options, two
//! dates): a base response, and variants of it that differ from it in one
//! part each. A sequence of them repeats itself often, the way a
//! connection's responses do, and a response differs from the one before
//! it in a single part as often: what the memo must not mistake for a repeat.
//!
//! `PROPTEST_CASES=10000 cargo test -p shardd-shards --test encode_props`
//! for a longer run.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::StatusCode;
use proptest::prelude::*;
use shardd_shards::http::{
    encode_remembered, encode_response, EncodeMemo, EncodeOptions, DATE_LEN,
};
use shardd_shards::{Body, Response};

const DATES: [&[u8; DATE_LEN]; 2] = [
    b"Mon, 30 Nov 2026 12:00:00 GMT",
    b"Mon, 30 Nov 2026 12:00:01 GMT",
];
const STATUSES: [u16; 8] = [200, 201, 204, 304, 404, 100, 205, 500];
const NAMES: [&str; 4] = ["Content-Type", "X-Tag", "Date", "Content-Length"];
/// The last one has a line break: the encoder sends a 500 instead.
const VALUES: [&str; 4] = ["text/plain", "1", "13", "a\r\nX-Injected: 1"];
const BODIES: [&[u8]; 3] = [b"", b"Hello, World!", b"{\"message\":\"Hello, World!\"}"];

/// A streamed body of one chunk (the encoder never polls it).
struct OneChunk(Option<Bytes>);

impl futures_core::Stream for OneChunk {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.0.take().map(Ok))
    }
}

/// One response, as indexes into the part sets.
#[derive(Clone, Debug)]
struct Shape {
    status: usize,
    /// (name, value, owned text)
    fields: Vec<(usize, usize, bool)>,
    body: usize,
    /// 0 static, 1 owned, 2 shared, 3 owned but long, 4 empty, 5 streamed
    body_kind: u8,
    date: usize,
    head_only: bool,
    close: bool,
    http11: bool,
}

impl Shape {
    fn response(&self) -> Response {
        let mut response = Response::new(StatusCode::from_u16(STATUSES[self.status]).unwrap());
        for &(name, value, owned) in &self.fields {
            response = if owned {
                response.with_header(NAMES[name].to_owned(), VALUES[value].to_owned())
            } else {
                response.with_header(NAMES[name], VALUES[value])
            };
        }
        let bytes = BODIES[self.body];
        response.with_body(match self.body_kind {
            0 => Body::Static(bytes),
            1 => Body::Owned(bytes.to_vec()),
            2 => Body::Shared(Bytes::from(bytes.to_vec())),
            3 => Body::Owned(bytes.repeat(40)),
            4 => Body::Empty,
            _ => Body::stream(OneChunk(Some(Bytes::from_static(bytes)))),
        })
    }

    /// This shape with part `which` taken from `other`: a response that
    /// differs from this one in one part, or in none.
    fn with_part_of(&self, other: &Shape, which: usize) -> Shape {
        let mut shape = self.clone();
        match which {
            0 => shape.status = other.status,
            1 => shape.fields = other.fields.clone(),
            2 => shape.body = other.body,
            3 => shape.body_kind = other.body_kind,
            4 => shape.date = other.date,
            5 => shape.head_only = other.head_only,
            6 => shape.close = other.close,
            _ => shape.http11 = other.http11,
        }
        shape
    }

    fn options(&self) -> EncodeOptions<'static> {
        EncodeOptions {
            date: DATES[self.date],
            head_only: self.head_only,
            close: self.close,
            keep_alive_1_0: !self.http11 && !self.close,
            http11: self.http11,
        }
    }
}

fn shape() -> impl Strategy<Value = Shape> {
    (
        0..STATUSES.len(),
        proptest::collection::vec((0..NAMES.len(), 0..VALUES.len(), any::<bool>()), 0..6),
        0..BODIES.len(),
        0u8..6,
        0..DATES.len(),
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(status, fields, body, body_kind, date, head_only, close, http11)| Shape {
                status,
                fields,
                body,
                body_kind,
                date,
                head_only,
                close,
                http11,
            },
        )
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: std::env::var("PROPTEST_CASES").ok().and_then(|n| n.parse().ok()).unwrap_or(256),
        ..ProptestConfig::default()
    })]

    /// Each response of the sequence is encoded through the memo (after
    /// whatever came before it) and on its own: same bytes, same plan.
    #[test]
    fn remembered_encodings_are_plain_encodings(
        base in shape(),
        others in proptest::collection::vec((shape(), 0usize..8), 1..6),
        order in proptest::collection::vec(0usize..7, 1..24),
    ) {
        let mut shapes = vec![base.clone()];
        shapes.extend(others.iter().map(|(other, which)| base.with_part_of(other, *which)));
        let mut memo = EncodeMemo::default();
        for &pick in &order {
            let shape = &shapes[pick % shapes.len()];
            let (response, options) = (shape.response(), shape.options());
            let mut remembered = b"before".to_vec();
            let remembered_plan = encode_remembered(&mut memo, &response, &options, &mut remembered);
            let mut plain = b"before".to_vec();
            let plain_plan = encode_response(&response, &options, &mut plain);
            prop_assert_eq!(remembered_plan, plain_plan);
            prop_assert_eq!(
                String::from_utf8_lossy(&remembered),
                String::from_utf8_lossy(&plain),
                "{:?}", shape
            );
        }
    }
}
