//! Per-second rates for `/status`: requests and p99 latency per shard,
//! accepted and rejected connections, CPU, computed by the server between the reading
//! now and one about a second old, so the page shows the same figures
//! however often (or, in a background tab or a headless browser, however
//! irregularly) it polls.
//!
//! Readings are kept as `/status.json` is asked for (at most two a second,
//! for a few seconds), plus one at start; nothing runs between requests.
//! So the first answer after a quiet spell is taken over that spell (the
//! page shows it, then asks again at once for a fresh one).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use serde::Serialize;

use super::quantile::quantile_seconds;
use super::scrape::Scrape;

/// The latency quantile the page draws.
const LATENCY_QUANTILE: f64 = 0.99;

/// A rate is taken over about this long, when readings that old exist.
const WINDOW: Duration = Duration::from_secs(1);
/// A shorter span than this gives no rate (too noisy).
const SHORTEST: Duration = Duration::from_millis(250);
/// Readings are kept at most this often...
const EVERY: Duration = Duration::from_millis(500);
/// ...and for this long.
const KEEP: Duration = Duration::from_secs(5);

/// The counters rates are taken of, at one moment.
#[derive(Clone, Debug, PartialEq)]
struct Reading {
    at: Instant,
    requests: Vec<u64>,
    /// Each shard's request-duration histogram (cumulative counts).
    durations: Vec<Vec<u64>>,
    accepted: u64,
    rejected: u64,
    cpu_seconds: Option<f64>,
}

impl Reading {
    fn of(scrape: &Scrape, at: Instant) -> Reading {
        Reading {
            at,
            requests: scrape.stats.shards.iter().map(|s| s.requests).collect(),
            durations: scrape
                .stats
                .shards
                .iter()
                .map(|s| s.request_duration.cumulative.clone())
                .collect(),
            accepted: scrape.stats.acceptor.accepted,
            rejected: scrape.stats.acceptor.rejected,
            cpu_seconds: scrape.process.cpu_seconds,
        }
    }
}

/// Rates between two readings, per second.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub(crate) struct Rates {
    /// The span the rates are taken over, in seconds.
    pub over_seconds: f64,
    /// Requests per second, by shard.
    pub requests: Vec<f64>,
    /// The 99th percentile of the span's request durations, in seconds, by
    /// shard; `null` for a shard that answered none in the span.
    pub p99_seconds: Vec<Option<f64>>,
    /// Connections accepted per second by the acceptor.
    pub accepted: f64,
    /// Connections answered 503 per second by the acceptor.
    pub rejected: f64,
    /// CPU seconds per second (1.0 = one core busy).
    pub cpu_cores: Option<f64>,
}

/// The readings kept.
#[derive(Debug, Default)]
pub(crate) struct RateWindow {
    readings: VecDeque<Reading>,
}

impl RateWindow {
    /// Rates between `scrape`, read at `at`, and a reading about a second
    /// older; `None` until one at least [`SHORTEST`] older exists. Keeps
    /// `scrape` as a reading for later.
    pub(crate) fn rates(&mut self, scrape: &Scrape, at: Instant) -> Option<Rates> {
        let now = Reading::of(scrape, at);
        let age = |r: &Reading| at.saturating_duration_since(r.at);
        let base = self
            .readings
            .iter()
            .rev()
            .find(|r| age(r) >= WINDOW)
            .or(self.readings.front())
            .filter(|r| age(r) >= SHORTEST);
        let rates = base.map(|base| {
            let span = age(base).as_secs_f64();
            let per_second = |now: u64, then: u64| now.saturating_sub(then) as f64 / span;
            Rates {
                over_seconds: span,
                requests: now
                    .requests
                    .iter()
                    .enumerate()
                    .map(|(i, &n)| per_second(n, base.requests.get(i).copied().unwrap_or(0)))
                    .collect(),
                p99_seconds: now
                    .durations
                    .iter()
                    .enumerate()
                    .map(|(i, now)| {
                        let then = base.durations.get(i).map_or(&[][..], Vec::as_slice);
                        quantile_seconds(LATENCY_QUANTILE, now, then)
                    })
                    .collect(),
                accepted: per_second(now.accepted, base.accepted),
                rejected: per_second(now.rejected, base.rejected),
                cpu_cores: now
                    .cpu_seconds
                    .zip(base.cpu_seconds)
                    .map(|(now, then)| (now - then).max(0.0) / span),
            }
        });
        if self.readings.back().is_none_or(|last| age(last) >= EVERY) {
            self.readings.push_back(now);
        }
        while self.readings.len() > 1 && self.readings.front().is_some_and(|r| age(r) > KEEP) {
            self.readings.pop_front();
        }
        rates
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::process::ProcessFigures;
    use crate::admin::readiness::{Capacity, Readiness};
    use crate::config::Admission;
    use crate::stats::StatsSnapshot;
    use shardd_shards::ShardStatsSnapshot;

    fn scrape(requests: [u64; 2], accepted: u64, cpu: f64) -> Scrape {
        let mut stats = StatsSnapshot::default();
        stats.acceptor.accepted = accepted;
        stats.shards = requests
            .iter()
            .map(|&requests| ShardStatsSnapshot {
                requests,
                ..ShardStatsSnapshot::default()
            })
            .collect();
        Scrape {
            stats,
            readiness: Readiness::Ready,
            capacity: Capacity::new(true, &Admission::default(), 16),
            process: ProcessFigures {
                cpu_seconds: Some(cpu),
                ..ProcessFigures::default()
            },
            uptime: Duration::ZERO,
            unavailable: Vec::new(),
            dependency_metrics: String::new(),
        }
    }

    #[test]
    fn rates_over_about_a_second_however_often_polled() {
        let start = Instant::now();
        let ms = |n: u64| start + Duration::from_millis(n);
        let mut window = RateWindow::default();
        assert_eq!(window.rates(&scrape([0, 0], 0, 0.0), ms(0)), None);
        assert_eq!(
            window.rates(&scrape([10, 0], 1, 0.0), ms(100)),
            None,
            "too short a span"
        );
        // Polled every 10 ms from 2 s on: the rates stay over the start reading (2 s).
        let rates = window
            .rates(&scrape([2_000, 1_000], 4, 1.0), ms(2_000))
            .unwrap();
        assert_eq!(rates.over_seconds, 2.0);
        assert_eq!(rates.requests, [1_000.0, 500.0]);
        assert_eq!(rates.p99_seconds, [None, None], "no durations recorded");
        assert_eq!(rates.accepted, 2.0);
        assert_eq!(rates.cpu_cores, Some(0.5));
        let rates = window
            .rates(&scrape([2_010, 1_000], 4, 1.0), ms(2_010))
            .unwrap();
        assert!((rates.over_seconds - 2.01).abs() < 1e-9, "{rates:?}");
        // Later, a reading a second old is the base.
        window.rates(&scrape([3_000, 1_000], 4, 1.5), ms(3_000));
        let rates = window
            .rates(&scrape([4_000, 3_000], 4, 2.5), ms(4_000))
            .unwrap();
        assert_eq!(rates.over_seconds, 1.0);
        assert_eq!(rates.requests, [1_000.0, 2_000.0]);
        assert_eq!(rates.cpu_cores, Some(1.0));
        assert!(window.readings.len() <= 5, "{:?}", window.readings.len());
    }
}
