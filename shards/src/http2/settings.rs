//! `Http2Settings`: what a shard allows one HTTP/2 connection, sent to the
//! client in its SETTINGS frame or enforced on it.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// HTTP/2 settings, the `[http2]` table of `config/shardd.toml`.
///
/// Every bound is finite by default: a client cannot open unlimited
/// streams, send an unlimited header list, or hold the connection open
/// without answering pings. Durations are whole milliseconds in the file.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Http2Settings {
    /// Serve HTTP/2: cleartext connections that open with the HTTP/2
    /// preface, and TLS connections that negotiate `h2` by ALPN. Off: every
    /// connection is HTTP/1.1 and TLS offers `http/1.1` only.
    pub enabled: bool,
    /// Streams a client may have open at once on one connection
    /// (`SETTINGS_MAX_CONCURRENT_STREAMS`); more are refused with `REFUSED_STREAM`.
    pub max_concurrent_streams: u32,
    /// Largest decoded header list of a request, in bytes, counted as
    /// RFC 9113 does (name + value + 32 per field): an HPACK block that
    /// expands past it gets a 431, and the CONTINUATION frames of an
    /// oversized block are not buffered.
    pub max_header_list_size: u32,
    /// Bytes of a request body a client may send on one stream before the
    /// app has read them (`SETTINGS_INITIAL_WINDOW_SIZE`): the per-stream
    /// buffer, and the backpressure on uploads.
    pub initial_stream_window: u32,
    /// The same for all streams of a connection together.
    pub initial_connection_window: u32,
    /// Largest frame payload the client may send (`SETTINGS_MAX_FRAME_SIZE`,
    /// 16384 to 16777215).
    pub max_frame_size: u32,
    /// Bytes of response body a stream may queue for sending before its
    /// app is made to wait for the client's window (a slow reader slows
    /// the stream's producer instead of growing memory).
    pub max_send_buffer: u32,
    /// How often an idle-looking connection is pinged to check the client is
    /// still there; `0` turns pings off.
    #[serde(rename = "keepalive_interval_ms", deserialize_with = "millis")]
    pub keepalive_interval: Duration,
    /// How long a ping may go unanswered before the connection is closed.
    #[serde(rename = "keepalive_timeout_ms", deserialize_with = "millis")]
    pub keepalive_timeout: Duration,
    /// Streams the client may reset within one second before the
    /// connection is closed with `ENHANCE_YOUR_CALM` (the rapid-reset
    /// attack, CVE-2023-44487): an honest client cancels a few requests, an
    /// attacker thousands.
    pub max_resets_per_second: u32,
    /// Frames that ask for work and for nothing served (PING, SETTINGS,
    /// PRIORITY, DATA of under 64 bytes that does not end its stream) a
    /// client may send in one second, plus one per KiB the connection
    /// carries in that second; past it the connection is closed with
    /// `ENHANCE_YOUR_CALM` (PING, SETTINGS and tiny-DATA floods). Honest
    /// clients send a handful; a busy one earns room for its pings.
    pub max_control_frames_per_second: u32,
}

impl Default for Http2Settings {
    fn default() -> Self {
        Http2Settings {
            enabled: true,
            max_concurrent_streams: 128,
            max_header_list_size: 16 * 1024,
            initial_stream_window: 256 * 1024,
            initial_connection_window: 1024 * 1024,
            max_frame_size: 16 * 1024,
            max_send_buffer: 256 * 1024,
            keepalive_interval: Duration::from_secs(30),
            keepalive_timeout: Duration::from_secs(20),
            max_resets_per_second: 200,
            max_control_frames_per_second: 1000,
        }
    }
}

/// The largest value HTTP/2 allows for a flow-control window.
const MAX_WINDOW: u32 = (1 << 31) - 1;

impl Http2Settings {
    /// Check values that parse but break the protocol or remove a bound; the
    /// message names the setting as `config/shardd.toml` spells it.
    pub fn validate(&self) -> Result<(), &'static str> {
        let Http2Settings {
            enabled: _,
            max_concurrent_streams,
            max_header_list_size,
            initial_stream_window,
            initial_connection_window,
            max_frame_size,
            max_send_buffer,
            keepalive_interval,
            keepalive_timeout,
            max_resets_per_second,
            max_control_frames_per_second,
        } = self;
        let checks = [
            (
                (1..=65_535).contains(max_concurrent_streams),
                "http2.max_concurrent_streams must be between 1 and 65535",
            ),
            (
                *max_header_list_size >= 1024,
                "http2.max_header_list_size must be at least 1024",
            ),
            (
                (1..=MAX_WINDOW).contains(initial_stream_window),
                "http2.initial_stream_window must be between 1 and 2147483647",
            ),
            (
                (65_535..=MAX_WINDOW).contains(initial_connection_window),
                "http2.initial_connection_window must be between 65535 and 2147483647",
            ),
            (
                (16_384..=16_777_215).contains(max_frame_size),
                "http2.max_frame_size must be between 16384 and 16777215",
            ),
            (
                *max_send_buffer >= 1024,
                "http2.max_send_buffer must be at least 1024",
            ),
            (
                keepalive_interval.is_zero() || !keepalive_timeout.is_zero(),
                "http2.keepalive_timeout_ms must be at least 1 when pings are on",
            ),
            (
                *max_resets_per_second >= 1,
                "http2.max_resets_per_second must be at least 1",
            ),
            (
                *max_control_frames_per_second >= 10,
                "http2.max_control_frames_per_second must be at least 10",
            ),
        ];
        match checks.into_iter().find(|(ok, _)| !ok) {
            Some((_, message)) => Err(message),
            None => Ok(()),
        }
    }
}

/// A duration given in the config file as whole milliseconds.
fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_are_valid_and_finite() {
        let defaults = Http2Settings::default();
        assert_eq!(defaults.validate(), Ok(()));
        assert!(defaults.max_concurrent_streams <= 256);
        assert!(defaults.max_header_list_size <= 64 * 1024);
    }

    #[test]
    fn each_rule_names_its_setting() {
        let cases = [
            (
                Http2Settings {
                    max_concurrent_streams: 0,
                    ..Default::default()
                },
                "http2.max_concurrent_streams",
            ),
            (
                Http2Settings {
                    max_frame_size: 1000,
                    ..Default::default()
                },
                "http2.max_frame_size",
            ),
            (
                Http2Settings {
                    initial_stream_window: 1 << 31,
                    ..Default::default()
                },
                "http2.initial_stream_window",
            ),
            (
                Http2Settings {
                    keepalive_timeout: Duration::ZERO,
                    ..Default::default()
                },
                "http2.keepalive_timeout_ms",
            ),
            (
                Http2Settings {
                    max_control_frames_per_second: 0,
                    ..Default::default()
                },
                "http2.max_control_frames_per_second",
            ),
        ];
        for (settings, name) in cases {
            let message = settings.validate().unwrap_err();
            assert!(message.starts_with(name), "{message} should name {name}");
        }
    }
}
