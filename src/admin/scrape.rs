//! One reading of everything the admin port reports, taken once per request
//! so `/metrics` and `/status.json` each show one moment.

use std::time::Duration;

use super::process::ProcessFigures;
use super::readiness::{Capacity, Readiness};
use super::Sources;
use crate::stats::StatsSnapshot;

/// The version in `shardd_build_info` and on the status page.
pub(super) const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Everything reported, at one moment.
#[derive(Clone, Debug)]
pub(crate) struct Scrape {
    pub stats: StatsSnapshot,
    pub readiness: Readiness,
    pub capacity: Capacity,
    pub process: ProcessFigures,
    /// Time since the server started serving.
    pub uptime: Duration,
    /// The names of the dependencies that are down.
    pub unavailable: Vec<String>,
    /// The dependencies' own metrics, in the Prometheus text format.
    pub dependency_metrics: String,
}

impl Scrape {
    /// Read `sources` now.
    pub(crate) fn take(sources: &Sources) -> Scrape {
        let stats = sources.stats.snapshot();
        let mut readiness = sources
            .capacity
            .readiness(sources.drain.has_started(), &stats);
        let unavailable: Vec<String> = sources
            .dependencies
            .iter()
            .filter(|dependency| !dependency.is_ready())
            .map(|dependency| dependency.name().to_owned())
            .collect();
        if readiness == Readiness::Ready && !unavailable.is_empty() {
            readiness = Readiness::Unavailable;
        }
        let mut dependency_metrics = String::new();
        for dependency in &sources.dependencies {
            dependency.write_metrics(&mut dependency_metrics);
        }
        Scrape {
            stats,
            readiness,
            capacity: sources.capacity,
            process: ProcessFigures::read(),
            uptime: sources.started.elapsed(),
            unavailable,
            dependency_metrics,
        }
    }
}
