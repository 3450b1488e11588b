//! Per-connection limits and timeouts enforced by the connection loop.

use std::time::Duration;

use serde::{Deserialize, Deserializer};

/// Bounds on what one connection may make its shard hold or wait for.
///
/// Every field has a default suited to serving behind a load balancer. The
/// same type is the `[limits]` table of `config/shardd.toml`, where the
/// durations are whole milliseconds (`header_timeout_ms`, ...).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Limits {
    /// Longest request line (method, target, version) in bytes; longer → 414.
    pub max_request_line: usize,
    /// Largest request head (request line + header fields) in bytes; larger → 431.
    pub max_head_bytes: usize,
    /// Most header fields in one request; more → 431.
    pub max_headers: usize,
    /// Largest request body (after chunked decoding) in bytes; larger → 413.
    pub max_body_bytes: usize,
    /// Unsent response bytes per connection before the shard stops reading
    /// more pipelined requests from it (a client that does not read).
    pub max_output_bytes: usize,
    /// Time from the first byte of a request (or from accept) to a complete head;
    /// then 408 if part of a request came, a silent close if nothing did.
    #[serde(rename = "header_timeout_ms", deserialize_with = "millis")]
    pub header_timeout: Duration,
    /// Time a keep-alive connection may sit idle between requests; then it is closed.
    #[serde(rename = "idle_timeout_ms", deserialize_with = "millis")]
    pub idle_timeout: Duration,
    /// Longest pause while receiving a request body; then 408.
    #[serde(rename = "body_timeout_ms", deserialize_with = "millis")]
    pub body_timeout: Duration,
    /// Longest a response write may wait for the client to read; then the connection is closed.
    #[serde(rename = "send_timeout_ms", deserialize_with = "millis")]
    pub send_timeout: Duration,
    /// During a drain, how long an idle keep-alive connection stays open
    /// for a request its client may already be sending (answered with
    /// `Connection: close`) before it is closed. Closing at once would lose
    /// a request that crosses the close on the wire.
    #[serde(rename = "drain_grace_ms", deserialize_with = "millis")]
    pub drain_grace: Duration,
}

/// The highest `max_headers` the codec supports (its stack array size).
pub const MAX_HEADERS_CAP: usize = 128;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_request_line: 8 * 1024,
            max_head_bytes: 16 * 1024,
            max_headers: 64,
            max_body_bytes: 1024 * 1024,
            max_output_bytes: 256 * 1024,
            header_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(60),
            body_timeout: Duration::from_secs(30),
            send_timeout: Duration::from_secs(30),
            drain_grace: Duration::from_secs(1),
        }
    }
}

impl Limits {
    /// Check values that parse but make no sense. The one place a limit's
    /// rule lives: the config file, the library's `Config` and a live
    /// change (`set_limits`, a SIGHUP reload) all ask here; the message
    /// names the setting as `config/shardd.toml` spells it.
    ///
    /// Every field is named (no `..`): a new limit does not compile until
    /// it has a rule here, or says why it needs none.
    pub fn validate(&self) -> Result<(), &'static str> {
        let Limits {
            max_request_line,
            max_head_bytes,
            max_headers,
            // Any size: 0 refuses every non-empty body (413), a policy.
            max_body_bytes: _,
            max_output_bytes,
            header_timeout,
            idle_timeout,
            body_timeout,
            send_timeout,
            // 0: an idle connection closes as soon as the drain starts.
            drain_grace: _,
        } = *self;
        let checks = [
            (
                max_request_line >= 16,
                "limits.max_request_line must be at least 16",
            ),
            (
                max_head_bytes >= max_request_line,
                "limits.max_head_bytes must be at least limits.max_request_line",
            ),
            (
                (1..=MAX_HEADERS_CAP).contains(&max_headers),
                "limits.max_headers must be between 1 and 128",
            ),
            (
                max_output_bytes >= 1,
                "limits.max_output_bytes must be at least 1",
            ),
            (
                !header_timeout.is_zero(),
                "limits.header_timeout_ms must be at least 1",
            ),
            (
                !idle_timeout.is_zero(),
                "limits.idle_timeout_ms must be at least 1",
            ),
            (
                !body_timeout.is_zero() && !send_timeout.is_zero(),
                "limits.body_timeout_ms and limits.send_timeout_ms must be at least 1",
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
    fn the_defaults_are_valid_and_each_rule_names_its_setting() {
        assert_eq!(Limits::default().validate(), Ok(()));
        let bad: [(Limits, &str); 6] = [
            (
                Limits {
                    max_request_line: 15,
                    ..Limits::default()
                },
                "max_request_line",
            ),
            (
                Limits {
                    max_head_bytes: 100,
                    max_request_line: 200,
                    ..Limits::default()
                },
                "max_head_bytes",
            ),
            (
                Limits {
                    max_headers: MAX_HEADERS_CAP + 1,
                    ..Limits::default()
                },
                "max_headers",
            ),
            (
                Limits {
                    max_output_bytes: 0,
                    ..Limits::default()
                },
                "max_output_bytes",
            ),
            (
                Limits {
                    idle_timeout: Duration::ZERO,
                    ..Limits::default()
                },
                "idle_timeout_ms",
            ),
            (
                Limits {
                    send_timeout: Duration::ZERO,
                    ..Limits::default()
                },
                "send_timeout_ms",
            ),
        ];
        for (limits, setting) in bad {
            let message = limits.validate().expect_err(setting);
            assert!(message.contains(setting), "{message}");
        }
    }
}
