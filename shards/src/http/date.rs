//! The `Date` header value, formatted once a second per shard.

use std::cell::Cell;
use std::io::Write;
use std::time::SystemTime;

/// Length of an IMF-fixdate: `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// A shard-local cache of the current `Date` value. The shard refreshes it
/// from a once-a-second task, so encoding a response copies 29 bytes
/// instead of formatting a time.
#[derive(Debug)]
pub struct DateCache {
    value: Cell<[u8; DATE_LEN]>,
}

impl DateCache {
    /// A cache holding the current time.
    pub fn new() -> Self {
        let cache = DateCache {
            value: Cell::new([b' '; DATE_LEN]),
        };
        cache.refresh();
        cache
    }

    /// Re-format from the system clock (into a stack buffer: no allocation).
    pub fn refresh(&self) {
        let mut bytes = [b' '; DATE_LEN];
        let mut cursor = &mut bytes[..];
        let _ = write!(cursor, "{}", httpdate::HttpDate::from(SystemTime::now()));
        self.value.set(bytes);
    }

    /// The current `Date` value.
    pub fn get(&self) -> [u8; DATE_LEN] {
        self.value.get()
    }
}

impl Default for DateCache {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn date_is_an_imf_fixdate() {
        let date = DateCache::new().get();
        let text = std::str::from_utf8(&date).unwrap();
        assert!(text.ends_with(" GMT"), "{text}");
        assert!(httpdate::parse_http_date(text).is_ok(), "{text}");
    }
}
