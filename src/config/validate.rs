//! Checking a [`Config`] beyond what parsing checks: values that parse
//! but make no sense, and which changes a running server cannot take.

use super::{Admission, Config, ListenerMode, Logging};
use crate::error::Error;

impl Config {
    /// Check values that parse but make no sense; the message names the setting.
    pub fn validate(&self) -> Result<(), Error> {
        let checks = [
            (self.shards <= 1024, "shards must be at most 1024"),
            (
                self.listener == ListenerMode::Handoff || self.bind.tcp().is_some(),
                "listener = \"reuseport\" needs a TCP bind address, not unix:",
            ),
            (
                self.upgrade_timeout_ms >= 1,
                "upgrade_timeout_ms must be at least 1",
            ),
            (self.backlog >= 1, "backlog must be at least 1"),
            (
                self.channel_capacity >= 1,
                "channel_capacity must be at least 1",
            ),
            (
                self.drain_timeout_ms >= 1,
                "drain_timeout_ms must be at least 1",
            ),
            (
                self.admission.retry_after_secs <= 86_400,
                "admission.retry_after_secs must be at most 86400",
            ),
            (
                self.proxy_header_timeout_ms >= 1,
                "proxy_header_timeout_ms must be at least 1",
            ),
            (
                self.log.access_log_buffers >= 1,
                "log.access_log_buffers must be at least 1",
            ),
        ];
        if let Some((_, message)) = checks.into_iter().find(|(ok, _)| !ok) {
            return Err(Error::InvalidSetting(message));
        }
        self.limits.validate().map_err(Error::InvalidSetting)?;
        self.http2.validate().map_err(Error::InvalidSetting)?;
        for (index, mount) in self.static_files.iter().enumerate() {
            mount.validate().map_err(Error::InvalidStatic)?;
            let prefix = mount.prefix.trim_end_matches('/');
            if self.static_files[..index]
                .iter()
                .any(|earlier| earlier.prefix.trim_end_matches('/') == prefix)
            {
                return Err(Error::InvalidStatic(format!(
                    "static prefix {:?} is mounted twice",
                    mount.prefix
                )));
            }
        }
        self.compression.validate().map_err(Error::InvalidSetting)?;
        #[cfg(feature = "postgres")]
        self.database.validate().map_err(Error::InvalidDatabase)?;
        self.check_built_features(cfg!(feature = "tls"))?;
        if self
            .tls
            .as_ref()
            .is_some_and(|tls| tls.handshake_timeout_ms == 0)
        {
            return Err(Error::InvalidSetting(
                "tls.handshake_timeout_ms must be at least 1",
            ));
        }
        Ok(())
    }

    /// Refuse settings this build cannot honour, rather than ignore them:
    /// `[tls]` without the `tls` feature would serve plain HTTP.
    fn check_built_features(&self, tls_built: bool) -> Result<(), Error> {
        if self.tls.is_some() && !tls_built {
            return Err(Error::InvalidSetting(
                "[tls] is set but shardd was built without the tls feature \
                 (enable feature \"tls\" of shardd-server)",
            ));
        }
        Ok(())
    }

    /// The settings that differ in `new` but that a running server cannot
    /// change: they take effect in a new process (an upgrade, a restart).
    /// What can change live (`limits`, `upgrade_timeout_ms`) is not listed.
    ///
    /// Every field is named (no `..`): a new setting does not compile until
    /// it is decided here whether a reload applies it, so a SIGHUP never
    /// ignores a change without saying so.
    pub fn changes_needing_restart(&self, new: &Config) -> Vec<&'static str> {
        let Config {
            bind,
            unix_mode,
            shards,
            listener,
            pin,
            batch_scheduling,
            defer_accept,
            backlog,
            channel_capacity,
            drain_timeout_ms,
            // Live: read when an upgrade starts.
            upgrade_timeout_ms: _,
            admission:
                Admission {
                    max_connections_per_shard,
                    max_pending,
                    overload,
                    dispatch,
                    retry_after_secs,
                },
            // Live: `ServerHandle::set_limits`.
            limits: _,
            http2,
            compression,
            tls,
            proxy_protocol,
            proxy_header_timeout_ms,
            admin,
            log:
                Logging {
                    format,
                    access_log,
                    access_log_format,
                    access_log_buffers,
                },
            static_files,
            #[cfg(feature = "postgres")]
            database,
        } = self;
        let (a, b) = (&new.admission, &new.log);
        #[cfg(feature = "postgres")]
        let database_changed = *database != new.database;
        #[cfg(not(feature = "postgres"))]
        let database_changed = false;
        [
            (*bind != new.bind, "bind"),
            (*unix_mode != new.unix_mode, "unix_mode"),
            (*shards != new.shards, "shards"),
            (*listener != new.listener, "listener"),
            (*pin != new.pin, "pin"),
            (
                *batch_scheduling != new.batch_scheduling,
                "batch_scheduling",
            ),
            (*defer_accept != new.defer_accept, "defer_accept"),
            (*backlog != new.backlog, "backlog"),
            (
                *channel_capacity != new.channel_capacity,
                "channel_capacity",
            ),
            (
                *drain_timeout_ms != new.drain_timeout_ms,
                "drain_timeout_ms",
            ),
            (
                *max_connections_per_shard != a.max_connections_per_shard,
                "admission.max_connections_per_shard",
            ),
            (*max_pending != a.max_pending, "admission.max_pending"),
            (*admin != new.admin, "admin"),
            // The files are re-read on SIGHUP; other paths need an upgrade.
            (*tls != new.tls, "tls"),
            (*proxy_protocol != new.proxy_protocol, "proxy_protocol"),
            (*http2 != new.http2, "http2"),
            (*static_files != new.static_files, "static"),
            // The app is built once, with the settings it started with.
            (*compression != new.compression, "compression"),
            // Each shard's pool is started once, with the app.
            (database_changed, "database"),
            (
                *proxy_header_timeout_ms != new.proxy_header_timeout_ms,
                "proxy_header_timeout_ms",
            ),
            (*overload != a.overload, "admission.overload"),
            (*dispatch != a.dispatch, "admission.dispatch"),
            (
                *retry_after_secs != a.retry_after_secs,
                "admission.retry_after_secs",
            ),
            // The logger and the access-log writer are set up once, at start.
            (*format != b.format, "log.format"),
            (*access_log != b.access_log, "log.access_log"),
            (
                *access_log_format != b.access_log_format,
                "log.access_log_format",
            ),
            (
                *access_log_buffers != b.access_log_buffers,
                "log.access_log_buffers",
            ),
        ]
        .into_iter()
        .filter_map(|(changed, name)| changed.then_some(name))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use crate::config::Config;

    #[test]
    fn tls_table_refused_when_built_without_tls() {
        let config = Config::from_toml("[tls]\ncert = \"a.pem\"\nkey = \"k.pem\"").unwrap();
        let error = config.check_built_features(false).unwrap_err().to_string();
        assert!(error.contains("built without the tls feature"), "{error}");
        assert!(config.check_built_features(true).is_ok());
        assert!(Config::default().check_built_features(false).is_ok());
    }

    #[test]
    fn changes_needing_restart_leave_out_limits() {
        let old = Config::default();
        let mut new = Config::default();
        new.limits.max_body_bytes = 1;
        new.upgrade_timeout_ms = 1;
        assert!(old.changes_needing_restart(&new).is_empty());
        new.shards = 3;
        new.bind = "unix:/x".parse().unwrap();
        new.admission.max_pending = 1;
        assert_eq!(
            old.changes_needing_restart(&new),
            ["bind", "shards", "admission.max_pending"]
        );
    }
    #[test]
    fn a_changed_log_table_is_named_as_needing_a_restart() {
        let new = Config::from_toml(
            "[log]\nformat = \"json\"\naccess_log = \"-\"\naccess_log_buffers = 2",
        )
        .unwrap();
        assert_eq!(
            Config::default().changes_needing_restart(&new),
            ["log.format", "log.access_log", "log.access_log_buffers"]
        );
    }
    #[test]
    fn proxy_protocol_keys() {
        let config =
            Config::from_toml("proxy_protocol = true\nproxy_header_timeout_ms = 250").unwrap();
        config.validate().unwrap();
        let settings = config.shard_config().proxy_protocol.expect("on");
        assert_eq!(settings.header_timeout, Duration::from_millis(250));
        assert!(Config::default().shard_config().proxy_protocol.is_none());
        let error = Config::from_toml("proxy_protocol = true\nproxy_header_timeout_ms = 0")
            .unwrap()
            .validate()
            .unwrap_err()
            .to_string();
        assert!(error.contains("proxy_header_timeout_ms"), "{error}");
        assert_eq!(
            Config::default().changes_needing_restart(&config),
            ["proxy_protocol", "proxy_header_timeout_ms"]
        );
    }
}
