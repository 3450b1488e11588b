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
    #[error("{}", describe(.0))]
    Query(#[from] tokio_postgres::Error),
}

impl DatabaseError {
    /// Whether the database was at fault rather than the query: the
    /// request may succeed if retried later (503, not 500).
    pub fn is_transient(&self) -> bool {
        match self {
            DatabaseError::Busy | DatabaseError::Unavailable | DatabaseError::TimedOut => true,
            DatabaseError::Query(error) => {
                error.is_closed() || error.code().is_some_and(|code| transient(code.code()))
            }
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

/// `error` with its cause: tokio-postgres' own text is often just "db
/// error" or "error connecting to server"; the cause says which.
pub(super) fn describe(error: &tokio_postgres::Error) -> String {
    match std::error::Error::source(error) {
        Some(cause) => format!("{error}: {cause}"),
        None => error.to_string(),
    }
}

/// SQLSTATEs that say the server, not the query, failed: connection
/// exceptions (class 08), insufficient resources (53: too many
/// connections, out of memory or disk), operator intervention (57: a
/// shutdown or restart terminated the session, a cancelled query), and
/// serialization failures and deadlocks (40001, 40P01), which a retry
/// may not meet again.
fn transient(sqlstate: &str) -> bool {
    matches!(sqlstate.get(..2), Some("08" | "53" | "57")) || matches!(sqlstate, "40001" | "40P01")
}

#[cfg(test)]
mod tests {
    use super::transient;

    #[test]
    fn a_shutdown_is_transient_a_bad_query_is_not() {
        assert!(
            transient("57P01"),
            "admin_shutdown: the database is restarting"
        );
        assert!(transient("53300"), "too_many_connections");
        assert!(transient("08006"), "connection_failure");
        assert!(transient("40P01"), "deadlock_detected");
        assert!(!transient("42P01"), "undefined_table");
        assert!(!transient("22P02"), "invalid_text_representation");
    }
}
