//! Reading a [`Config`] from a TOML file (`config/shardd.toml` documents
//! every setting): unknown keys and bad values are errors that name the setting.

use std::path::Path;

use super::Config;
use crate::error::Error;

impl Config {
    /// Read a TOML file; settings it leaves out keep their defaults.
    pub fn from_file(path: &Path) -> Result<Config, Error> {
        let text = std::fs::read_to_string(path).map_err(|source| Error::ConfigFile {
            path: path.to_owned(),
            source,
        })?;
        Self::from_toml(&text).map_err(|error| match error {
            Error::ConfigSyntax { message, .. } => Error::ConfigSyntax {
                path: Some(path.to_owned()),
                message,
            },
            other => other,
        })
    }

    /// Parse TOML text; settings it leaves out keep their defaults.
    pub fn from_toml(text: &str) -> Result<Config, Error> {
        toml::from_str(text).map_err(|error| Error::ConfigSyntax {
            path: None,
            message: error.to_string().trim_end().to_owned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::bind_addr::{BindAddr, UnixMode};
    use crate::config::{AccessLogTarget, Config, ListenerMode, TlsConfig};

    #[test]
    fn example_config_parses_and_matches_defaults() {
        let text = include_str!("../../config/shardd.toml");
        let config = Config::from_toml(text).expect("config/shardd.toml parses");
        config.validate().unwrap();
        assert_eq!(
            config,
            Config::default(),
            "the example documents the defaults"
        );
    }
    #[test]
    fn access_log_target_from_text() {
        let parse = |text: &str| {
            Config::from_toml(&format!("[log]\naccess_log = {text:?}"))
                .unwrap()
                .log
                .access_log
        };
        assert_eq!(parse(""), AccessLogTarget::Off);
        assert_eq!(parse("-"), AccessLogTarget::Stdout);
        assert_eq!(
            parse("/var/log/shardd.log"),
            AccessLogTarget::File("/var/log/shardd.log".into())
        );
    }
    #[test]
    fn unknown_key_is_named() {
        let error = Config::from_toml("shardz = 4").unwrap_err().to_string();
        assert!(error.contains("shardz"), "{error}");
    }
    #[test]
    fn bad_value_is_named() {
        let error = Config::from_toml("[limits]\nmax_headers = \"lots\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("max_headers"), "{error}");
        let error = Config::from_toml("[log]\naccess_log_format = \"apache\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("apache"), "{error}");
        let error = Config::from_toml("listener = \"carrier-pigeon\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("carrier-pigeon"), "{error}");
        let error = Config::from_toml("bind = \"localhost\"")
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("bind") && error.contains("unix:/path"),
            "{error}"
        );
        let error = Config::from_toml("unix_mode = \"rw\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("unix_mode"), "{error}");
        let mut config = Config::default();
        config.limits.max_headers = 1000;
        assert!(config
            .validate()
            .unwrap_err()
            .to_string()
            .contains("limits.max_headers"));
    }
    #[test]
    fn unix_bind_and_mode_parse() {
        let config =
            Config::from_toml("bind = \"unix:/run/shardd.sock\"\nunix_mode = \"0660\"").unwrap();
        assert_eq!(config.bind, BindAddr::Unix("/run/shardd.sock".into()));
        assert_eq!(config.unix_mode.map(UnixMode::bits), Some(0o660));
        config.validate().unwrap();
        let reuseport = Config {
            listener: ListenerMode::Reuseport,
            ..config
        };
        let error = reuseport.validate().unwrap_err().to_string();
        assert!(error.contains("reuseport"), "{error}");
    }
    #[test]
    fn tls_table() {
        let config = Config::from_toml("[tls]\ncert = \"a.pem\"\nkey = \"k.pem\"").unwrap();
        assert_eq!(config.tls, Some(TlsConfig::new("a.pem", "k.pem")));
        let error = Config::from_toml("[tls]\ncert = \"a.pem\"")
            .unwrap_err()
            .to_string();
        assert!(error.contains("key"), "{error}");
        let config = Config {
            tls: Some(TlsConfig {
                handshake_timeout_ms: 0,
                ..TlsConfig::new("a.pem", "k.pem")
            }),
            ..Config::default()
        };
        let error = config.validate().unwrap_err().to_string();
        assert!(error.contains("tls.handshake_timeout_ms"), "{error}");
    }
}
