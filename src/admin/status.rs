//! `GET /status`: a page for people, and `GET /status.json`, what it polls.
//!
//! The page (`status.html`) is one self-contained file: inline styles and
//! a short inline script, nothing fetched from anywhere but `status.json`
//! beside it, once a second (sooner until it has fresh rates). Requests per
//! second, p99 latency and CPU use come computed by the server (`rates.rs`),
//! over about the last second, so the first poll already has them. The page
//! keeps the last five minutes of what it polled and draws requests/s and
//! p99 per shard as inline SVG lines, with each shard's share of the
//! requests (now and since start) and the busiest / quietest ratio, red
//! above 1.5.

use serde::Serialize;

use super::process::ProcessFigures;
use super::rates::Rates;
use super::scrape::{Scrape, VERSION};

/// The page; the server adds nothing to it.
pub(super) const PAGE: &str = include_str!("status.html");

/// What the page may load: itself (inline script and style) and `status.json`.
pub(super) const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'unsafe-inline'; \
     style-src 'unsafe-inline'; connect-src 'self'; img-src data:; base-uri 'none'; form-action 'none'";

#[derive(Serialize)]
struct Status<'a> {
    version: &'static str,
    uptime_seconds: f64,
    /// `ready`, `draining`, `full` or `unavailable`.
    readiness: &'static str,
    /// The dependencies that are down (`database`), which make it `unavailable`.
    unavailable: &'a [String],
    acceptor: Acceptor,
    shards: Vec<Shard>,
    process: &'a ProcessFigures,
    /// Per second, over about the last second; `null` right after start.
    rates: Option<Rates>,
}

#[derive(Serialize)]
struct Acceptor {
    /// False without an acceptor (reuseport, a custom listener): its figures are all 0.
    present: bool,
    accepted: u64,
    handed_off: u64,
    queued: u64,
    pending: usize,
    pending_limit: usize,
    rejected: u64,
    skipped_full: u64,
    skipped_dead: u64,
    accept_errors: u64,
}

#[derive(Serialize)]
struct Shard {
    shard: usize,
    up: bool,
    open: usize,
    queued: usize,
    accepted: u64,
    requests: u64,
    /// Responses with a 5xx status.
    server_errors: u64,
    bad_requests: u64,
    timeouts: u64,
    handler_panics: u64,
    restarts: u32,
}

/// `status.json`: the reading and the rates as JSON.
pub(super) fn json(scrape: &Scrape, rates: Option<Rates>) -> String {
    let a = &scrape.stats.acceptor;
    let status = Status {
        version: VERSION,
        uptime_seconds: scrape.uptime.as_secs_f64(),
        readiness: scrape.readiness.as_str(),
        unavailable: &scrape.unavailable,
        acceptor: Acceptor {
            present: scrape.capacity.acceptor,
            accepted: a.accepted,
            handed_off: a.handed_off,
            queued: a.queued,
            pending: a.pending,
            pending_limit: scrape.capacity.max_pending,
            rejected: a.rejected,
            skipped_full: a.skipped_full,
            skipped_dead: a.skipped_dead,
            accept_errors: a.accept_errors,
        },
        shards: scrape
            .stats
            .shards
            .iter()
            .enumerate()
            .map(|(shard, s)| Shard {
                shard,
                up: s.alive,
                open: s.open,
                queued: s.queued,
                accepted: s.accepted,
                requests: s.requests,
                server_errors: s.responses_by_class[4],
                bad_requests: s.bad_requests,
                timeouts: s.timeouts,
                handler_panics: s.handler_panics,
                restarts: s.restarts,
            })
            .collect(),
        process: &scrape.process,
        rates,
    };
    serde_json::to_string(&status).unwrap_or_else(|_| "{}".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_loads_nothing_from_elsewhere() {
        let page = PAGE.to_ascii_lowercase();
        for external in ["src=", "href=\"http", "@import", "url(", "//cdn", "<link"] {
            assert!(!page.contains(external), "status.html has {external:?}");
        }
        assert!(page.contains("status.json"));
    }
}
