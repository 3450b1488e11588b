//! `DatabaseSettings`: which Postgres the shards talk to and how much of it
//! they may use, the `[database]` table of `config/shardd.toml`.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;

/// The per-shard Postgres pool's settings, the `[database]` table of
/// `config/shardd.toml` (and `--database-url`).
///
/// Every shard opens `connections_per_shard` connections of its own; the
/// requests of a shard share them, their queries pipelined (sent without
/// waiting for the answers before them), so a few connections carry many
/// requests at once and no connection is shared across cores.
#[derive(Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// A libpq-style connection string or URL,
    /// `postgres://user:password@host:port/database`; empty: no database.
    /// Its password is never logged nor shown (`Debug` hides it).
    pub url: String,
    /// Connections each shard opens. Two keep a shard's queries flowing
    /// while one connection is being replaced, and give Postgres two
    /// backends per core to run them (pipelining, not more connections,
    /// is what carries concurrency).
    pub connections_per_shard: usize,
    /// Requests a shard lets wait on the database at once; one more gets
    /// 503 at once (with `Retry-After`) instead of queueing without bound
    /// while the database is slow.
    pub max_waiting_per_shard: usize,
    /// Longest one request's queries may take, in milliseconds: past it
    /// the request gets 503, its query is cancelled, and its connection
    /// (whose pipeline now holds a stuck query) is replaced.
    pub query_timeout_ms: u64,
    /// Longest a connection (and preparing its statements) may take, in
    /// milliseconds, before it counts as failed.
    pub connect_timeout_ms: u64,
    /// Longest wait between two attempts to reconnect, in milliseconds;
    /// the wait starts at 50 ms and doubles up to this.
    pub max_reconnect_delay_ms: u64,
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        DatabaseSettings {
            url: String::new(),
            connections_per_shard: 2,
            max_waiting_per_shard: 512,
            query_timeout_ms: 5_000,
            connect_timeout_ms: 5_000,
            max_reconnect_delay_ms: 5_000,
        }
    }
}

/// Most connections a shard may open: Postgres' own default
/// `max_connections` is 100 for the whole server.
const MAX_CONNECTIONS_PER_SHARD: usize = 64;

impl DatabaseSettings {
    /// Settings for `url`, the rest at their defaults.
    pub fn with_url(url: impl Into<String>) -> Self {
        DatabaseSettings {
            url: url.into(),
            ..DatabaseSettings::default()
        }
    }

    /// Whether a database is configured (`url` is not empty).
    pub fn is_configured(&self) -> bool {
        !self.url.is_empty()
    }

    /// Check the settings make sense; the message names the setting as
    /// `config/shardd.toml` spells it and never contains the password.
    pub fn validate(&self) -> Result<(), String> {
        if !self.is_configured() {
            return Ok(());
        }
        self.connection_config()?;
        if !(1..=MAX_CONNECTIONS_PER_SHARD).contains(&self.connections_per_shard) {
            return Err(format!(
                "database.connections_per_shard must be 1 to {MAX_CONNECTIONS_PER_SHARD}"
            ));
        }
        if self.max_waiting_per_shard == 0 {
            return Err("database.max_waiting_per_shard must be at least 1".into());
        }
        for (value, name) in [
            (self.query_timeout_ms, "query_timeout_ms"),
            (self.connect_timeout_ms, "connect_timeout_ms"),
            (self.max_reconnect_delay_ms, "max_reconnect_delay_ms"),
        ] {
            if !(1..=3_600_000).contains(&value) {
                return Err(format!(
                    "database.{name} must be 1 to 3600000 (an hour), in milliseconds"
                ));
            }
        }
        Ok(())
    }

    /// The parsed connection string. Its error says what is wrong without
    /// repeating the string (which may hold a password).
    pub fn connection_config(&self) -> Result<tokio_postgres::Config, String> {
        let config = tokio_postgres::Config::from_str(&self.url).map_err(|error| {
            format!("database.url is not a Postgres connection string: {error}")
        })?;
        if config.get_hosts().is_empty() {
            return Err("database.url names no host".into());
        }
        Ok(config)
    }

    /// Where the database is, for logs: user, host, port and database
    /// name, never the password.
    pub fn describe(&self) -> String {
        let Ok(config) = self.connection_config() else {
            return "an unparsable database.url".into();
        };
        let host = match config.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(name)) => name.clone(),
            Some(tokio_postgres::config::Host::Unix(path)) => path.display().to_string(),
            None => String::new(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        format!(
            "postgres://{}@{host}:{port}/{}",
            config.get_user().unwrap_or(""),
            config.get_dbname().unwrap_or("")
        )
    }

    /// [`query_timeout_ms`](Self::query_timeout_ms) as a `Duration`.
    pub fn query_timeout(&self) -> Duration {
        Duration::from_millis(self.query_timeout_ms)
    }

    /// [`connect_timeout_ms`](Self::connect_timeout_ms) as a `Duration`.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }

    /// [`max_reconnect_delay_ms`](Self::max_reconnect_delay_ms) as a `Duration`.
    pub fn max_reconnect_delay(&self) -> Duration {
        Duration::from_millis(self.max_reconnect_delay_ms)
    }
}

/// Everything but the URL, which is shown as [`DatabaseSettings::describe`]
/// shows it: a `{:?}` of a config never prints a password.
impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let url = if self.is_configured() {
            self.describe()
        } else {
            String::new()
        };
        f.debug_struct("DatabaseSettings")
            .field("url", &url)
            .field("connections_per_shard", &self.connections_per_shard)
            .field("max_waiting_per_shard", &self.max_waiting_per_shard)
            .field("query_timeout_ms", &self.query_timeout_ms)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .field("max_reconnect_delay_ms", &self.max_reconnect_delay_ms)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const URL: &str = "postgres://bench:s3cret@db.example:6543/hello";

    #[test]
    fn neither_debug_nor_describe_nor_errors_show_the_password() {
        let settings = DatabaseSettings::with_url(URL);
        assert_eq!(
            settings.describe(),
            "postgres://bench@db.example:6543/hello"
        );
        assert!(!format!("{settings:?}").contains("s3cret"));
        let bad = DatabaseSettings::with_url("postgres://bench:s3cret@db.example:notaport/x");
        let error = bad.validate().unwrap_err();
        assert!(error.contains("database.url"), "{error}");
        assert!(!error.contains("s3cret"), "{error}");
    }

    #[test]
    fn limits_are_checked_by_name() {
        let mut settings = DatabaseSettings::with_url(URL);
        settings.validate().unwrap();
        settings.connections_per_shard = 0;
        assert!(settings
            .validate()
            .unwrap_err()
            .contains("connections_per_shard"));
        settings.connections_per_shard = 2;
        settings.query_timeout_ms = 0;
        assert!(settings
            .validate()
            .unwrap_err()
            .contains("query_timeout_ms"));
    }

    #[test]
    fn no_url_is_no_database() {
        let settings = DatabaseSettings::default();
        assert!(!settings.is_configured());
        settings.validate().unwrap();
    }
}
