//! Conditional requests (RFC 9110 §13) and single byte ranges (§14)
//! against a file's validators.

use std::time::{Duration, SystemTime};

use super::cache::OpenedFile;

/// What the preconditions decided.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Precondition {
    /// Send the file (or the range asked for).
    Proceed,
    /// `304 Not Modified`: the client's copy is current.
    NotModified,
    /// `412 Precondition Failed`.
    Failed,
}

/// The request's condition fields, as raw values.
#[derive(Default)]
pub(crate) struct Conditions<'a> {
    pub(crate) if_match: Option<&'a [u8]>,
    pub(crate) if_none_match: Option<&'a [u8]>,
    pub(crate) if_modified_since: Option<&'a [u8]>,
    pub(crate) if_unmodified_since: Option<&'a [u8]>,
    pub(crate) if_range: Option<&'a [u8]>,
    pub(crate) range: Option<&'a [u8]>,
}

/// Evaluate the preconditions in the order RFC 9110 §13.2.2 gives.
pub(crate) fn evaluate(conditions: &Conditions<'_>, file: &OpenedFile) -> Precondition {
    if let Some(tags) = conditions.if_match {
        if !matches_any(tags, &file.etag, true) {
            return Precondition::Failed;
        }
    } else if let Some(date) = conditions.if_unmodified_since.and_then(http_date) {
        if seconds(file.modified) > date {
            return Precondition::Failed;
        }
    }
    if let Some(tags) = conditions.if_none_match {
        if matches_any(tags, &file.etag, false) {
            return Precondition::NotModified;
        }
    } else if let Some(date) = conditions.if_modified_since.and_then(http_date) {
        if seconds(file.modified) <= date {
            return Precondition::NotModified;
        }
    }
    Precondition::Proceed
}

/// What a `Range` field asks of a body of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum RangeAsked {
    /// No range (or one to ignore: several ranges, a bad field, an
    /// `If-Range` that no longer holds): the whole body, `200`.
    Whole,
    /// `206` with these bytes, `start..=end`.
    Part { start: u64, end: u64 },
    /// `416 Range Not Satisfiable`.
    Unsatisfiable,
}

/// The range to send of `file` (its validators decide an `If-Range`).
pub(crate) fn range(conditions: &Conditions<'_>, file: &OpenedFile) -> RangeAsked {
    let Some(field) = conditions.range else {
        return RangeAsked::Whole;
    };
    if let Some(validator) = conditions.if_range {
        let holds = if validator.first() == Some(&b'"') {
            validator == file.etag.as_bytes() // a strong comparison
        } else {
            validator == file.last_modified.as_bytes()
        };
        if !holds {
            return RangeAsked::Whole;
        }
    }
    parse_range(field, file.len)
}

/// One `bytes=` range of a body of `len` bytes; several are served whole
/// (allowed, and what keeps a request from asking for a file many times over).
fn parse_range(field: &[u8], len: u64) -> RangeAsked {
    let Some(spec) = std::str::from_utf8(field)
        .ok()
        .and_then(|field| field.trim().strip_prefix("bytes="))
    else {
        return RangeAsked::Whole;
    };
    if spec.contains(',') {
        return RangeAsked::Whole;
    }
    let Some((first, last)) = spec.trim().split_once('-') else {
        return RangeAsked::Whole;
    };
    let number = |text: &str| -> Option<u64> {
        let text = text.trim();
        if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        text.parse().ok()
    };
    match (first.trim().is_empty(), last.trim().is_empty()) {
        // `-N`: the last N bytes.
        (true, false) => match number(last) {
            Some(0) => RangeAsked::Unsatisfiable,
            Some(_) if len == 0 => RangeAsked::Unsatisfiable,
            Some(suffix) => RangeAsked::Part {
                start: len.saturating_sub(suffix),
                end: len - 1,
            },
            None => RangeAsked::Whole,
        },
        // `N-` or `N-M`.
        (false, _) => {
            let Some(start) = number(first) else {
                return RangeAsked::Whole;
            };
            let end = if last.trim().is_empty() {
                u64::MAX
            } else {
                match number(last) {
                    Some(end) if end >= start => end,
                    _ => return RangeAsked::Whole,
                }
            };
            if start >= len {
                return RangeAsked::Unsatisfiable;
            }
            RangeAsked::Part {
                start,
                end: end.min(len - 1),
            }
        }
        (true, true) => RangeAsked::Whole,
    }
}

/// Whether the entity-tag list `tags` (or `*`) matches `etag`; `strong`:
/// weak tags never match (for `If-Match`).
pub(crate) fn matches_any(tags: &[u8], etag: &str, strong: bool) -> bool {
    let Ok(tags) = std::str::from_utf8(tags) else {
        return false;
    };
    if tags.trim() == "*" {
        return true;
    }
    tags.split(',')
        .map(str::trim)
        .any(|tag| match tag.strip_prefix("W/") {
            Some(weak) => !strong && weak == etag,
            None => tag == etag,
        })
}

/// An HTTP date, as whole seconds (what `Last-Modified` can say).
fn http_date(value: &[u8]) -> Option<SystemTime> {
    httpdate::parse_http_date(std::str::from_utf8(value).ok()?).ok()
}

/// `time` cut to whole seconds.
fn seconds(time: SystemTime) -> SystemTime {
    let since = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default();
    SystemTime::UNIX_EPOCH + Duration::from_secs(since.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_of_a_hundred_bytes() {
        let part = |start, end| RangeAsked::Part { start, end };
        for (field, asked) in [
            ("bytes=0-9", part(0, 9)),
            ("bytes=90-", part(90, 99)),
            ("bytes=-10", part(90, 99)),
            ("bytes=-500", part(0, 99)),
            ("bytes=50-1000", part(50, 99)),
            ("bytes=100-", RangeAsked::Unsatisfiable),
            ("bytes=-0", RangeAsked::Unsatisfiable),
            ("bytes=0-1,5-6", RangeAsked::Whole),
            ("bytes=9-1", RangeAsked::Whole),
            ("items=0-1", RangeAsked::Whole),
            ("bytes=x-1", RangeAsked::Whole),
            ("bytes=-", RangeAsked::Whole),
        ] {
            assert_eq!(parse_range(field.as_bytes(), 100), asked, "{field}");
        }
    }

    #[test]
    fn entity_tags_compare_strongly_for_if_match_only() {
        assert!(matches_any(b"\"a\", W/\"b\"", "\"b\"", false));
        assert!(!matches_any(b"W/\"b\"", "\"b\"", true));
        assert!(matches_any(b"*", "\"b\"", true));
        assert!(!matches_any(b"\"c\"", "\"b\"", false));
    }
}
