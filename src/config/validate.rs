//! Checking a [`Config`] beyond what parsing checks: values that parse
//! but make no sense, and which changes a running server cannot take.

use super::{Config, ListenerMode};
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
    pub fn changes_needing_restart(&self, new: &Config) -> Vec<&'static str> {
        let (a, b) = (&self.admission, &new.admission);
        [
            (self.bind != new.bind, "bind"),
            (self.unix_mode != new.unix_mode, "unix_mode"),
            (self.shards != new.shards, "shards"),
            (self.listener != new.listener, "listener"),
            (self.pin != new.pin, "pin"),
            (
                self.batch_scheduling != new.batch_scheduling,
                "batch_scheduling",
            ),
            (self.defer_accept != new.defer_accept, "defer_accept"),
            (self.backlog != new.backlog, "backlog"),
            (
                self.channel_capacity != new.channel_capacity,
                "channel_capacity",
            ),
            (
                self.drain_timeout_ms != new.drain_timeout_ms,
                "drain_timeout_ms",
            ),
            (
                a.max_connections_per_shard != b.max_connections_per_shard,
                "admission.max_connections_per_shard",
            ),
            (a.max_pending != b.max_pending, "admission.max_pending"),
            (self.admin != new.admin, "admin"),
            // The files are re-read on SIGHUP; other paths need an upgrade.
            (self.tls != new.tls, "tls"),
            (self.proxy_protocol != new.proxy_protocol, "proxy_protocol"),
            (self.http2 != new.http2, "http2"),
            (
                self.proxy_header_timeout_ms != new.proxy_header_timeout_ms,
                "proxy_header_timeout_ms",
            ),
            (a.overload != b.overload, "admission.overload"),
            (a.dispatch != b.dispatch, "admission.dispatch"),
            (
                a.retry_after_secs != b.retry_after_secs,
                "admission.retry_after_secs",
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
