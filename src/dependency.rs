//! `Dependency`: something the server needs besides itself (a database),
//! whose state the admin port reports: `/health/ready` answers 503 while
//! one is down, and `/metrics` carries its figures.

/// A service the app cannot answer without, reported by the admin port.
///
/// Register one with [`Server::with_dependency`](crate::Server::with_dependency).
/// The admin port asks it on its own thread, on every `/health/ready` and
/// `/metrics`, so its answers should be cheap reads (atomics).
pub trait Dependency: Send + Sync + 'static {
    /// A short name for `/health/ready`'s answer (`unavailable: database`).
    fn name(&self) -> &str;

    /// Whether requests that need it can be served now.
    fn is_ready(&self) -> bool;

    /// Append its figures to `/metrics`, in the Prometheus text format
    /// (`# HELP`, `# TYPE`, samples). None by default.
    fn write_metrics(&self, out: &mut String) {
        let _ = out;
    }
}

/// The per-shard Postgres pools: ready while every shard has a live connection.
#[cfg(feature = "postgres")]
impl Dependency for shardd_shards::database::DatabaseHealth {
    fn name(&self) -> &str {
        "database"
    }

    fn is_ready(&self) -> bool {
        shardd_shards::database::DatabaseHealth::is_ready(self)
    }

    fn write_metrics(&self, out: &mut String) {
        shardd_shards::database::DatabaseHealth::write_metrics(self, out);
    }
}
