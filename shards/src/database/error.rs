//! `DatabaseError`: why a request got no answer from the database, and the
//! response a client gets for it.

use http::StatusCode;

use crate::Response;

/// Why a request's queries got no answer.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    /// `max_waiting_per_shard` requests of this shard already wait on the database.
    #[error("too many requests are waiting on the database")]
    Busy,
    /// This shard has no live connection (the database is down or unreachable).
    #[error("the database is unavailable")]
    Unavailable,
    /// The queries took longer than `query_timeout_ms`.
    #[error("the database did not answer in time")]
    TimedOut,
    /// Postgres answered with an error, or the connection broke.
    #[error("database error: {0}")]
    Query(#[from] tokio_postgres::Error),
}

impl DatabaseError {
    /// Whether the database was at fault rather than the query: the
    /// request may succeed if retried later (503, not 500).
    pub fn is_transient(&self) -> bool {
        match self {
            DatabaseError::Busy | DatabaseError::Unavailable | DatabaseError::TimedOut => true,
            DatabaseError::Query(error) => error.is_closed(),
        }
    }

    /// What a client gets: 503 with `Retry-After: 1` when the database is
    /// busy, down or slow; 500 for a query Postgres refused. The body
    /// says which, never the query nor Postgres' message (those go to
    /// the log).
    pub fn response(&self) -> Response {
        let (status, text) = match self {
            DatabaseError::Busy => (StatusCode::SERVICE_UNAVAILABLE, "database busy\n"),
            DatabaseError::Unavailable => {
                (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
            }
            DatabaseError::TimedOut => (StatusCode::SERVICE_UNAVAILABLE, "database timed out\n"),
            DatabaseError::Query(_) if self.is_transient() => {
                (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n")
            }
            DatabaseError::Query(_) => (StatusCode::INTERNAL_SERVER_ERROR, "database error\n"),
        };
        let response = Response::new(status)
            .with_header("Content-Type", "text/plain; charset=utf-8")
            .with_body(text);
        if status == StatusCode::SERVICE_UNAVAILABLE {
            response.with_header("Retry-After", "1")
        } else {
            response
        }
    }
}

impl From<DatabaseError> for Response {
    fn from(error: DatabaseError) -> Response {
        error.response()
    }
}
