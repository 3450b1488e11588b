//! Which path answers what.
//!
//! | path | answer |
//! | --- | --- |
//! | `/metrics` | the Prometheus exposition |
//! | `/health/live` | 200 while the process runs |
//! | `/health/ready` | 200 while new connections are taken; 503 draining, full, or a dependency (the database) down |
//! | `/status` | the page for people |
//! | `/status.json` | what the page polls |
//! | `/` | a redirect to `/status` |
//!
//! `GET` and `HEAD` only.

use std::time::Instant;

use super::http::{Reply, Request};
use super::readiness::Readiness;
use super::scrape::Scrape;
use super::{metrics, status, Sources};

/// The reply to `request`.
pub(super) fn answer(request: &Request, sources: &Sources) -> Reply {
    if request.method != "GET" && request.method != "HEAD" {
        return Reply::text(405, "only GET and HEAD\n").with_header("Allow", "GET, HEAD");
    }
    match request.path.as_str() {
        "/metrics" => Reply::new(
            200,
            metrics::CONTENT_TYPE,
            metrics::render(&Scrape::take(sources)),
        ),
        "/health/live" => Reply::text(200, "live\n"),
        "/health/ready" => {
            let scrape = Scrape::take(sources);
            match scrape.readiness {
                Readiness::Ready => Reply::text(200, "ready\n"),
                Readiness::Unavailable => Reply::text(
                    503,
                    format!("unavailable: {}\n", scrape.unavailable.join(", ")),
                ),
                other => Reply::text(503, format!("{}\n", other.as_str())),
            }
        }
        "/status" => Reply::new(200, "text/html; charset=utf-8", status::PAGE)
            .with_header("Content-Security-Policy", status::CONTENT_SECURITY_POLICY),
        "/status.json" => {
            let scrape = Scrape::take(sources);
            let rates = sources.rates().rates(&scrape, Instant::now());
            Reply::new(200, "application/json", status::json(&scrape, rates))
        }
        "/" => Reply::text(302, "see /status\n").with_header("Location", "/status"),
        _ => Reply::text(
            404,
            "not found; try /metrics, /health/live, /health/ready, /status\n",
        ),
    }
}
