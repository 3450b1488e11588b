//! The last response encoded, kept so that the same response again is
//! copied rather than encoded again.
//!
//! Apps repeat themselves as clients do: a handler builds its response
//! afresh for every request, but usually from the same parts — the same
//! status, the same `&'static str` header fields, often the same body.
//! Encoding is a pure function of the [`ResponseView`] and the
//! [`EncodeOptions`], so when both equal the last ones, the last bytes are
//! the answer: a few comparisons and one copy instead of composing the head
//! piece by piece (about 290 instructions for a TechEmpower response).
//!
//! What is compared, and why it is enough:
//! - header text only when it is `&'static str`, by address and length:
//!   static text never changes, so the same address is the same text (owned
//!   text is not remembered: comparing it would cost what encoding does);
//! - the body by its bytes (up to [`MEMO_MAX_ENCODED`]; a static body by
//!   address first), found at the end of the remembered encoding;
//! - every field of the options, the `Date` value included (a response's
//!   own close flag reaches the encoding only through them; a `101` is
//!   never remembered).

use std::borrow::Cow;

use http::StatusCode;

use super::date::DATE_LEN;
use super::encode::{encode_response, BodyPlan, EncodeOptions, Encoded};
use crate::message::{BodyContent, ResponseView};

/// Encodings longer than this (head and body) are not remembered: copying
/// them on every miss would cost more than the hits save.
pub const MEMO_MAX_ENCODED: usize = 512;

/// Responses with more header fields than this are not remembered.
const MEMO_MAX_FIELDS: usize = 4;

/// The last response encoded through this memo, and its bytes.
#[derive(Debug, Default)]
pub struct EncodeMemo {
    /// What was encoded; `None` when nothing is remembered.
    key: Option<Key>,
    /// The encoding: head, then the body's bytes (`body_len` of them).
    bytes: Vec<u8>,
}

/// A remembered response and the options it was encoded with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    /// The response's status, which is also the status sent (a replaced
    /// response is not remembered).
    status: StatusCode,
    fields: [(&'static str, &'static str); MEMO_MAX_FIELDS],
    field_count: usize,
    /// The body, when it was static: a response with the same static body
    /// is equal without reading it.
    static_body: Option<&'static [u8]>,
    body_len: usize,
    options: OptionsKey,
}

/// Every field of [`EncodeOptions`], by value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct OptionsKey {
    head_only: bool,
    close: bool,
    keep_alive_1_0: bool,
    http11: bool,
    date: [u8; DATE_LEN],
}

impl OptionsKey {
    /// Destructured here and in `matches`, not read field by field: a field
    /// added to the options stops the build until it is part of the key.
    #[inline(always)]
    fn of(options: &EncodeOptions<'_>) -> Self {
        let EncodeOptions {
            date,
            head_only,
            close,
            keep_alive_1_0,
            http11,
        } = *options;
        OptionsKey {
            date: *date,
            head_only,
            close,
            keep_alive_1_0,
            http11,
        }
    }

    /// Whether `options` are the ones this key was made of (in place: no
    /// copy of the date to compare).
    #[inline(always)]
    fn matches(&self, options: &EncodeOptions<'_>) -> bool {
        let EncodeOptions {
            date,
            head_only,
            close,
            keep_alive_1_0,
            http11,
        } = *options;
        (head_only, close, keep_alive_1_0, http11)
            == (self.head_only, self.close, self.keep_alive_1_0, self.http11)
            && *date == self.date
    }
}

/// Encode `response` as [`encode_response`] does, through `memo`: the same
/// response with the same options as last time is copied from the memo.
#[inline(always)]
pub fn encode_remembered<R: ResponseView + ?Sized>(
    memo: &mut EncodeMemo,
    response: &R,
    options: &EncodeOptions<'_>,
    out: &mut Vec<u8>,
) -> Encoded {
    if memo.recall(response, options) {
        out.extend_from_slice(&memo.bytes);
        return Encoded {
            status: response.status(),
            plan: BodyPlan::Written,
            replaced: false,
        };
    }
    let start = out.len();
    let encoded = encode_response(response, options, out);
    memo.remember(response, options, encoded, &out[start..]);
    encoded
}

impl EncodeMemo {
    /// Whether `response` with `options` is the response remembered.
    #[inline(always)]
    fn recall<R: ResponseView + ?Sized>(&self, response: &R, options: &EncodeOptions<'_>) -> bool {
        let Some(key) = &self.key else {
            return false;
        };
        if response.status() != key.status || !key.options.matches(options) {
            return false;
        }
        let mut count = 0;
        for (name, value) in response.fields() {
            let (Cow::Borrowed(name), Cow::Borrowed(value)) = (name, value) else {
                return false;
            };
            let Some(&(known_name, known_value)) = key.fields[..key.field_count].get(count) else {
                return false;
            };
            if !std::ptr::eq(*name, known_name) || !std::ptr::eq(*value, known_value) {
                return false;
            }
            count += 1;
        }
        if count != key.field_count || response.upgrades() {
            return false;
        }
        let body = response.body_content();
        if let (BodyContent::Static(bytes), Some(known)) = (body, key.static_body) {
            if std::ptr::eq(bytes, known) {
                return true;
            }
        }
        let Some(body) = body.bytes() else {
            return false; // a stream
        };
        body.len() == key.body_len && self.bytes.ends_with(body)
    }

    /// Remember `response`, just encoded with `options` to `encoded`, if it
    /// is one the memo can recognise.
    #[inline(always)]
    fn remember<R: ResponseView + ?Sized>(
        &mut self,
        response: &R,
        options: &EncodeOptions<'_>,
        sent: Encoded,
        encoded: &[u8],
    ) {
        self.key = None;
        if sent.plan != BodyPlan::Written
            || sent.replaced
            || encoded.len() > MEMO_MAX_ENCODED
            || response.upgrades()
        {
            return;
        }
        let content = response.body_content();
        let Some(body) = content.bytes() else {
            return; // a stream
        };
        let static_body = match content {
            BodyContent::Static(bytes) => Some(bytes),
            _ => None,
        };
        // The body is found at the end of the encoding (a HEAD answer or a
        // 204 leaves it out; then only an empty body can be recognised).
        if !encoded.ends_with(body) {
            return;
        }
        let mut fields = [("", ""); MEMO_MAX_FIELDS];
        let mut field_count = 0;
        for (name, value) in response.fields() {
            let (Cow::Borrowed(name), Cow::Borrowed(value)) = (name, value) else {
                return;
            };
            let Some(field) = fields.get_mut(field_count) else {
                return;
            };
            *field = (*name, *value);
            field_count += 1;
        }
        if self.bytes.capacity() == 0 {
            self.bytes.reserve_exact(MEMO_MAX_ENCODED);
        }
        self.bytes.clear();
        self.bytes.extend_from_slice(encoded);
        self.key = Some(Key {
            status: response.status(),
            fields,
            field_count,
            static_body,
            body_len: body.len(),
            options: OptionsKey::of(options),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::test_response::{TestBody, TestResponse as Response};

    const DATE: &[u8; DATE_LEN] = b"Mon, 30 Nov 2026 12:00:00 GMT";
    const LATER: &[u8; DATE_LEN] = b"Mon, 30 Nov 2026 12:00:01 GMT";

    fn options(date: &[u8; DATE_LEN]) -> EncodeOptions<'_> {
        EncodeOptions {
            date,
            head_only: false,
            close: false,
            keep_alive_1_0: false,
            http11: true,
        }
    }

    /// Encode through the memo, and check the bytes against a plain encoding.
    fn encode_both(
        memo: &mut EncodeMemo,
        response: &Response,
        options: &EncodeOptions<'_>,
    ) -> Vec<u8> {
        let mut through_memo = b"earlier output".to_vec();
        let sent = encode_remembered(memo, &response.parts(), options, &mut through_memo);
        let mut plain = b"earlier output".to_vec();
        assert_eq!(
            sent,
            encode_response(&response.parts(), options, &mut plain)
        );
        assert_eq!(
            String::from_utf8_lossy(&through_memo),
            String::from_utf8_lossy(&plain)
        );
        through_memo
    }

    #[test]
    fn the_same_static_response_is_recalled() {
        let mut memo = EncodeMemo::default();
        let first = encode_both(&mut memo, &Response::text("Hello, World!"), &options(DATE));
        assert!(memo.recall(&Response::text("Hello, World!").parts(), &options(DATE)));
        assert_eq!(
            encode_both(&mut memo, &Response::text("Hello, World!"), &options(DATE)),
            first
        );
    }

    #[test]
    fn an_owned_body_with_the_same_bytes_is_recalled_and_other_bytes_are_not() {
        let mut memo = EncodeMemo::default();
        let json = |body: &str| Response::json(body.as_bytes().to_vec());
        encode_both(&mut memo, &json(r#"{"a":1}"#), &options(DATE));
        assert!(memo.recall(&json(r#"{"a":1}"#).parts(), &options(DATE)));
        assert!(!memo.recall(&json(r#"{"a":2}"#).parts(), &options(DATE)));
        assert!(!memo.recall(&json(r#"{"a":12}"#).parts(), &options(DATE)));
        encode_both(&mut memo, &json(r#"{"a":2}"#), &options(DATE));
    }

    #[test]
    fn any_difference_is_a_miss() {
        let mut memo = EncodeMemo::default();
        let base = || Response::text("Hello, World!");
        encode_both(&mut memo, &base(), &options(DATE));
        let misses = [
            (base().with_header("X-A", "1"), options(DATE)),
            (Response::json("Hello, World!"), options(DATE)),
            (Response::text("Hello, World?"), options(DATE)),
            (Response::text("Hello"), options(DATE)),
            (Response::text(String::from("Hello, World?")), options(DATE)),
            (
                base(),
                EncodeOptions {
                    head_only: true,
                    ..options(DATE)
                },
            ),
            (
                base(),
                EncodeOptions {
                    close: true,
                    ..options(DATE)
                },
            ),
            (
                base(),
                EncodeOptions {
                    http11: false,
                    keep_alive_1_0: true,
                    ..options(DATE)
                },
            ),
            (base(), options(LATER)),
            (
                Response::new(StatusCode::CREATED)
                    .with_header("Content-Type", "text/plain")
                    .with_body("Hello, World!"),
                options(DATE),
            ),
        ];
        for (response, options) in misses {
            assert!(
                !memo.recall(&response.parts(), &options),
                "{response:?} with {options:?}"
            );
            // And encoding it gives its own bytes, after which the base is a miss.
            encode_both(&mut memo, &response, &options);
            encode_both(&mut memo, &base(), &self::options(DATE));
        }
    }

    #[test]
    fn owned_text_streams_and_long_responses_are_not_remembered() {
        let mut memo = EncodeMemo::default();
        let owned = Response::text("x").with_header("X-Id", String::from("7"));
        encode_both(&mut memo, &owned, &options(DATE));
        assert!(memo.key.is_none());
        let long = Response::text(vec![b'x'; MEMO_MAX_ENCODED]);
        encode_both(&mut memo, &long, &options(DATE));
        assert!(memo.key.is_none());
        let stream = Response::text(TestBody::Stream);
        let mut out = Vec::new();
        let sent = encode_remembered(&mut memo, &stream.parts(), &options(DATE), &mut out);
        assert_eq!(sent.plan, BodyPlan::Chunked);
        assert!(memo.key.is_none());
    }

    #[test]
    fn a_replaced_response_is_not_remembered_and_a_recall_reports_the_status() {
        let mut memo = EncodeMemo::default();
        let owned_bad = Response::new(StatusCode::INTERNAL_SERVER_ERROR)
            .with_header("X", String::from("a\r\nb"));
        let mut out = Vec::new();
        let sent = encode_remembered(&mut memo, &owned_bad.parts(), &options(DATE), &mut out);
        assert!(sent.replaced);
        assert!(memo.key.is_none());
        let created = Response::new(StatusCode::CREATED);
        encode_both(&mut memo, &created, &options(DATE));
        let sent = encode_remembered(&mut memo, &created.parts(), &options(DATE), &mut out);
        assert!(memo.recall(&created.parts(), &options(DATE)));
        assert_eq!(
            sent,
            Encoded {
                status: StatusCode::CREATED,
                plan: BodyPlan::Written,
                replaced: false
            }
        );
    }

    #[test]
    fn a_head_answer_is_remembered_apart_from_the_get_answer() {
        let mut memo = EncodeMemo::default();
        let head = EncodeOptions {
            head_only: true,
            ..options(DATE)
        };
        let empty_body = Response::new(StatusCode::NO_CONTENT);
        encode_both(&mut memo, &empty_body, &head);
        assert!(memo.recall(&empty_body.parts(), &head));
        // A body left out of the encoding cannot be checked: not remembered.
        encode_both(&mut memo, &Response::text("Hello"), &head);
        assert!(!memo.recall(&Response::text("Hello").parts(), &head));
        assert!(!memo.recall(&Response::text("Hello").parts(), &options(DATE)));
    }
}
