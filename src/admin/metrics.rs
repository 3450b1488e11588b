//! `GET /metrics`: the Prometheus text exposition format, version 0.0.4.
//!
//! Names follow Prometheus' rules: a `shardd_` prefix (`process_` for the
//! figures every client exports), base units (seconds, bytes), `_total` on
//! counters, and labels of low cardinality only: `shard` (the shard's
//! index), `code` (the status class, `2xx`), `kind`, `reason`, `le`,
//! `outcome` (of a static file), `encoding` (of a compressed response).
//! Every family has `# HELP` and `# TYPE`, and every series is present from
//! the first scrape (zero until something happens).

use std::fmt::{Display, Write};

use shardd_shards::{GoawayReason, DURATION_BOUNDS};

use super::content_metrics::content;
use super::scrape::{Scrape, VERSION};

/// The `Content-Type` of the exposition.
pub(super) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Status classes, in the order of `responses_by_class`.
const CODES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];
/// Timeout kinds, in the order of `timeouts_by_kind` (`TimeoutKind`).
const TIMEOUT_KINDS: [&str; 4] = ["header", "body", "idle", "send"];

/// The exposition of `scrape`.
pub(super) fn render(scrape: &Scrape) -> String {
    let mut out = Exposition(String::with_capacity(16 * 1024));
    acceptor(&mut out, scrape);
    shards(&mut out, scrape);
    content(&mut out, scrape);
    server(&mut out, scrape);
    process(&mut out, scrape);
    out.0.push_str(&scrape.dependency_metrics);
    out.0
}

/// The acceptor's stats (zero without an acceptor: reuseport, a custom listener).
fn acceptor(out: &mut Exposition, scrape: &Scrape) {
    let a = &scrape.stats.acceptor;
    let counters: [(&str, &str, u64); 5] = [
        (
            "shardd_acceptor_accepted_total",
            "Connections the acceptor accepted from the listening socket.",
            a.accepted,
        ),
        (
            "shardd_acceptor_handed_off_total",
            "Connections the acceptor handed to a shard.",
            a.handed_off,
        ),
        (
            "shardd_acceptor_queued_total",
            "Connections that waited in the acceptor's pending queue because every shard was full.",
            a.queued,
        ),
        (
            "shardd_acceptor_rejected_total",
            "Connections answered 503 by the acceptor because every shard and the pending queue were full.",
            a.rejected,
        ),
        (
            "shardd_acceptor_accept_errors_total",
            "Failed accept calls (out of descriptors and the like).",
            a.accept_errors,
        ),
    ];
    for (name, help, value) in counters {
        out.family(name, "counter", help);
        out.sample(name, &[], value);
    }
    let name = "shardd_acceptor_skipped_total";
    out.family(
        name,
        "counter",
        "Times the acceptor passed over a shard, by reason: full (its connection limit or channel) or dead.",
    );
    out.sample(name, &[("reason", &"full")], a.skipped_full);
    out.sample(name, &[("reason", &"dead")], a.skipped_dead);
    let gauges: [(&str, &str, u64); 3] = [
        (
            "shardd_acceptor_pending",
            "Connections in the acceptor's pending queue now.",
            a.pending as u64,
        ),
        (
            "shardd_acceptor_pending_limit",
            "Most connections the pending queue holds (admission.max_pending).",
            scrape.capacity.max_pending as u64,
        ),
        (
            "shardd_shard_connections_limit",
            "Most connections one shard serves or has queued (admission.max_connections_per_shard; 0 = no limit).",
            match scrape.capacity.max_per_shard {
                usize::MAX => 0,
                max => max as u64,
            },
        ),
    ];
    for (name, help, value) in gauges {
        out.family(name, "gauge", help);
        out.sample(name, &[], value);
    }
}

/// Per-shard stats, each series labelled `shard`.
///
/// Once shards count TLS handshakes, they belong here too:
/// `shardd_tls_handshakes_total{shard}` and
/// `shardd_tls_handshake_failures_total{shard}` (counters, from `ShardStatsSnapshot`).
fn shards(out: &mut Exposition, scrape: &Scrape) {
    let shards = &scrape.stats.shards;
    type Figure = fn(&shardd_shards::ShardStatsSnapshot) -> u64;
    let simple: [(&str, &str, &str, Figure); 15] = [
        (
            "shardd_connections_handed_off_total",
            "counter",
            "Connections the acceptor put in the shard's channel.",
            |s| s.handed_off,
        ),
        (
            "shardd_connections_accepted_total",
            "counter",
            "Connections the shard started serving.",
            |s| s.accepted,
        ),
        (
            "shardd_connections_open",
            "gauge",
            "Connections the shard is serving now.",
            |s| s.open as u64,
        ),
        (
            "shardd_connections_queued",
            "gauge",
            "Connections handed to the shard and not yet picked up (in its channel).",
            |s| s.queued as u64,
        ),
        (
            "shardd_bad_requests_total",
            "counter",
            "Requests the codec refused before they reached the app (4xx, 5xx).",
            |s| s.bad_requests,
        ),
        (
            "shardd_handler_panics_total",
            "counter",
            "Handler panics answered with 500.",
            |s| s.handler_panics,
        ),
        (
            "shardd_tls_handshakes_total",
            "counter",
            "TLS handshakes completed (0 without TLS).",
            |s| s.tls_handshakes,
        ),
        (
            "shardd_tls_handshake_failures_total",
            "counter",
            "TLS handshakes that failed: not TLS, a protocol error, a client gone mid-handshake.",
            |s| s.tls_handshake_failures,
        ),
        (
            "shardd_tls_handshake_timeouts_total",
            "counter",
            "TLS clients closed because their handshake was not done within the handshake timeout.",
            |s| s.tls_handshake_timeouts,
        ),
        (
            "shardd_connection_establish_failures_total",
            "counter",
            "Connections closed unanswered before serving because the listener could not establish them: a PROXY protocol header absent, malformed or too long, or the client gone before it.",
            |s| s.establish_failures,
        ),
        (
            "shardd_connection_establish_timeouts_total",
            "counter",
            "Connections closed unanswered because their PROXY protocol header was not complete within its timeout.",
            |s| s.establish_timeouts,
        ),
        (
            "shardd_http2_connections_total",
            "counter",
            "Connections served as HTTP/2 (prior knowledge or ALPN h2).",
            |s| s.http2.connections,
        ),
        (
            "shardd_http2_stream_resets_total",
            "counter",
            "HTTP/2 streams the client reset before their response was complete.",
            |s| s.http2.resets_by_client,
        ),
        (
            "shardd_shard_restarts_total",
            "counter",
            "Times the shard's thread died and was replaced.",
            |s| u64::from(s.restarts),
        ),
        (
            "shardd_shard_up",
            "gauge",
            "1 while the shard's thread runs, 0 from its death until its replacement runs.",
            |s| u64::from(s.alive),
        ),
    ];
    for (name, kind, help, figure) in simple {
        out.family(name, kind, help);
        for (index, shard) in shards.iter().enumerate() {
            out.sample(name, &[("shard", &index)], figure(shard));
        }
    }

    let name = "shardd_requests_total";
    out.family(
        name,
        "counter",
        "Responses the shard sent, by status class (code=\"2xx\"), error responses included.",
    );
    for (index, shard) in shards.iter().enumerate() {
        for (code, count) in CODES.iter().zip(shard.responses_by_class) {
            out.sample(name, &[("shard", &index), ("code", code)], count);
        }
    }

    let name = "shardd_timeouts_total";
    out.family(
        name,
        "counter",
        "Connections closed because a wait ran out, by kind: header, body, idle, send.",
    );
    for (index, shard) in shards.iter().enumerate() {
        for (kind, count) in TIMEOUT_KINDS.iter().zip(shard.timeouts_by_kind) {
            out.sample(name, &[("shard", &index), ("kind", kind)], count);
        }
    }

    let name = "shardd_http2_goaways_total";
    out.family(
        name,
        "counter",
        "HTTP/2 GOAWAY frames the shard sent, by reason: no_error (drain, idle), enhance_your_calm (a client cut off for abuse), protocol_error, other.",
    );
    for (index, shard) in shards.iter().enumerate() {
        for (reason, count) in GoawayReason::NAMES
            .iter()
            .zip(shard.http2.goaways_by_reason)
        {
            out.sample(name, &[("shard", &index), ("reason", reason)], count);
        }
    }

    let name = "shardd_request_duration_seconds";
    out.family(
        name,
        "histogram",
        "Time from the start of answering a request's batch to its response being encoded (the app's time, not the network's).",
    );
    for (index, shard) in shards.iter().enumerate() {
        let histogram = &shard.request_duration;
        let bucket = format!("{name}_bucket");
        for (bound, count) in DURATION_BOUNDS.iter().zip(&histogram.cumulative) {
            out.sample(&bucket, &[("shard", &index), ("le", bound)], count);
        }
        out.sample(
            &bucket,
            &[("shard", &index), ("le", &"+Inf")],
            histogram.count(),
        );
        out.sample(
            &format!("{name}_sum"),
            &[("shard", &index)],
            histogram.sum_seconds,
        );
        out.sample(
            &format!("{name}_count"),
            &[("shard", &index)],
            histogram.count(),
        );
    }
}

/// The server as a whole: readiness, drain, build.
fn server(out: &mut Exposition, scrape: &Scrape) {
    let name = "shardd_ready";
    out.family(
        name,
        "gauge",
        "1 while /health/ready answers 200: not draining, a new connection has room, and no dependency (the database) is down.",
    );
    out.sample(
        name,
        &[],
        u8::from(scrape.readiness == super::readiness::Readiness::Ready),
    );
    let name = "shardd_draining";
    out.family(name, "gauge", "1 from the moment a drain starts.");
    out.sample(
        name,
        &[],
        u8::from(scrape.readiness == super::readiness::Readiness::Draining),
    );
    let name = "shardd_build_info";
    out.family(name, "gauge", "Always 1; the version of shardd in a label.");
    out.sample(name, &[("version", &Escaped(VERSION))], 1);
}

/// The figures every Prometheus client exports, with their usual names.
fn process(out: &mut Exposition, scrape: &Scrape) {
    let p = &scrape.process;
    let gauges: [(&str, &str, Option<u64>); 4] = [
        (
            "process_resident_memory_bytes",
            "Resident memory size in bytes.",
            p.resident_bytes,
        ),
        (
            "process_virtual_memory_bytes",
            "Virtual memory size in bytes.",
            p.virtual_bytes,
        ),
        (
            "process_open_fds",
            "Number of open file descriptors.",
            p.open_fds,
        ),
        (
            "process_max_fds",
            "Maximum number of open file descriptors.",
            p.max_fds,
        ),
    ];
    for (name, help, value) in gauges {
        if let Some(value) = value {
            out.family(name, "gauge", help);
            out.sample(name, &[], value);
        }
    }
    if let Some(seconds) = p.cpu_seconds {
        let name = "process_cpu_seconds_total";
        out.family(
            name,
            "counter",
            "Total user and system CPU time spent in seconds.",
        );
        out.sample(name, &[], seconds);
    }
    if let Some(start) = p.start_time_seconds {
        let name = "process_start_time_seconds";
        out.family(
            name,
            "gauge",
            "Start time of the process since unix epoch in seconds.",
        );
        out.sample(name, &[], start);
    }
}

/// The text being written.
pub(super) struct Exposition(String);

impl Exposition {
    /// `# HELP` and `# TYPE` of a family (`help` has no backslash or newline).
    pub(super) fn family(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }

    /// One sample line: `name{label="value",...} value`.
    pub(super) fn sample(
        &mut self,
        name: &str,
        labels: &[(&str, &dyn Display)],
        value: impl Display,
    ) {
        self.0.push_str(name);
        if !labels.is_empty() {
            self.0.push('{');
            for (i, (label, value)) in labels.iter().enumerate() {
                let comma = if i > 0 { "," } else { "" };
                let _ = write!(self.0, "{comma}{label}=\"{value}\"");
            }
            self.0.push('}');
        }
        let _ = writeln!(self.0, " {value}");
    }
}

/// A label value with `\`, `"` and newlines escaped.
struct Escaped<'a>(&'a str);

impl Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::process::ProcessFigures;
    use crate::admin::readiness::{Capacity, Readiness};
    use crate::config::Admission;
    use crate::stats::StatsSnapshot;
    use shardd_shards::{HistogramSnapshot, ShardStatsSnapshot};

    fn scrape() -> Scrape {
        let mut stats = StatsSnapshot::default();
        stats.acceptor.accepted = 7;
        stats.acceptor.skipped_dead = 2;
        stats.shards = vec![
            ShardStatsSnapshot {
                alive: true,
                open: 3,
                responses_by_class: [0, 5, 0, 1, 0],
                request_duration: HistogramSnapshot {
                    cumulative: (0..=DURATION_BOUNDS.len() as u64)
                        .map(|i| i.min(6))
                        .collect(),
                    sum_seconds: 0.25,
                },
                ..ShardStatsSnapshot::default()
            },
            ShardStatsSnapshot::default(),
        ];
        Scrape {
            stats,
            readiness: Readiness::Ready,
            capacity: Capacity::new(true, &Admission::default(), 16),
            process: ProcessFigures {
                resident_bytes: Some(1 << 20),
                cpu_seconds: Some(1.5),
                ..ProcessFigures::default()
            },
            uptime: std::time::Duration::from_secs(1),
            unavailable: Vec::new(),
            dependency_metrics: String::new(),
        }
    }

    #[test]
    fn renders_labelled_series_and_histograms() {
        let text = render(&scrape());
        for line in [
            "# TYPE shardd_requests_total counter",
            "shardd_requests_total{shard=\"0\",code=\"2xx\"} 5",
            "shardd_requests_total{shard=\"1\",code=\"5xx\"} 0",
            "shardd_acceptor_skipped_total{reason=\"dead\"} 2",
            "shardd_connections_open{shard=\"0\"} 3",
            "shardd_shard_up{shard=\"0\"} 1",
            "shardd_shard_up{shard=\"1\"} 0",
            "shardd_request_duration_seconds_bucket{shard=\"0\",le=\"0.0001\"} 0",
            "shardd_request_duration_seconds_bucket{shard=\"0\",le=\"1\"} 6",
            "shardd_request_duration_seconds_bucket{shard=\"0\",le=\"+Inf\"} 6",
            "shardd_request_duration_seconds_sum{shard=\"0\"} 0.25",
            "shardd_request_duration_seconds_count{shard=\"0\"} 6",
            "shardd_timeouts_total{shard=\"1\",kind=\"send\"} 0",
            "shardd_ready 1",
            "process_resident_memory_bytes 1048576",
            "process_cpu_seconds_total 1.5",
        ] {
            assert!(
                text.lines().any(|l| l == line),
                "no line {line:?} in\n{text}"
            );
        }
        assert!(
            !text.contains("process_open_fds"),
            "unknown figures are left out"
        );
        assert!(text.contains(&format!("shardd_build_info{{version=\"{VERSION}\"}} 1")));
    }

    #[test]
    fn every_family_has_help_then_type_and_counters_end_in_total() {
        let text = render(&scrape());
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').unwrap();
                assert!(lines[i - 1].starts_with(&format!("# HELP {name} ")));
                if kind == "counter" {
                    assert!(name.ends_with("_total"), "{name}");
                }
            }
        }
    }

    #[test]
    fn escapes_label_values() {
        assert_eq!(Escaped("a\"b\\c\nd").to_string(), "a\\\"b\\\\c\\nd");
    }
}
