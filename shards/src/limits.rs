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

/// A duration given in the config file as whole milliseconds.
fn millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    u64::deserialize(deserializer).map(Duration::from_millis)
}
