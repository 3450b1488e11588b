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
            message: single_table_for_array(text)
                .unwrap_or_else(|| error.to_string().trim_end().to_owned()),
        })
    }
}

/// The settings that are arrays of tables (`[[static]]`, one table each).
const ARRAY_TABLES: &[&str] = &["static"];

/// When `text` writes one of [`ARRAY_TABLES`] as a single table
/// (`[static]`): a message that says to double the brackets, instead of
/// serde's "invalid type: map, expected a sequence".
fn single_table_for_array(text: &str) -> Option<String> {
    let table: toml::Table = toml::from_str(text).ok()?;
    let name = ARRAY_TABLES
        .iter()
        .find(|name| matches!(table.get(**name), Some(toml::Value::Table(_))))?;
    let line = text.lines().position(|line| {
        let line = line.trim();
        !line.starts_with("[[")
            && line
                .strip_prefix('[')
                .and_then(|rest| rest.split_once(']'))
                .is_some_and(|(inside, _)| inside.trim() == *name)
    });
    let at = line.map_or(String::new(), |index| format!(" (line {})", index + 1));
    Some(format!(
        "[{name}]{at} must be written [[{name}]], with double brackets: \
         it is an array of tables, one [[{name}]] per entry"
    ))
}

#[cfg(test)]
mod tests {
    use serde::de::Visitor;
    use serde::{Deserialize, Deserializer};
    use shardd_shards::compression::CompressionSettings;
    use shardd_shards::files::StaticSettings;
    use shardd_shards::{Http2Settings, Limits};

    use crate::bind_addr::{BindAddr, UnixMode};
    use crate::config::{AccessLogTarget, Admission, Config, ListenerMode, Logging, TlsConfig};

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
    /// The names serde reads for `T`'s fields, as the config file spells
    /// them: its derived `Deserialize` hands them to `deserialize_struct`,
    /// which is all this deserializer answers.
    fn field_names<T: for<'de> Deserialize<'de>>() -> &'static [&'static str] {
        struct Names<'a>(&'a mut &'static [&'static str]);
        impl<'de> Deserializer<'de> for Names<'_> {
            type Error = serde::de::value::Error;
            fn deserialize_struct<V: Visitor<'de>>(
                self,
                _name: &'static str,
                fields: &'static [&'static str],
                _visitor: V,
            ) -> Result<V::Value, Self::Error> {
                *self.0 = fields;
                Err(serde::de::Error::custom("only the names were wanted"))
            }
            fn deserialize_any<V: Visitor<'de>>(
                self,
                _visitor: V,
            ) -> Result<V::Value, Self::Error> {
                Err(serde::de::Error::custom("not a struct"))
            }
            serde::forward_to_deserialize_any! {
                bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
                bytes byte_buf option unit unit_struct newtype_struct seq tuple
                tuple_struct map enum identifier ignored_any
            }
        }
        let mut names: &'static [&'static str] = &[];
        let _ = T::deserialize(Names(&mut names));
        assert!(
            !names.is_empty(),
            "{} has no fields",
            std::any::type_name::<T>()
        );
        names
    }

    /// The keys `config/shardd.toml` shows, set or commented out
    /// (`key = ...` or `# key = ...`), with the table they are in
    /// (`""` for the top level; a table counts as a top-level key).
    fn documented_keys() -> Vec<(String, String)> {
        let mut table = String::new();
        let mut keys = Vec::new();
        for line in include_str!("../../config/shardd.toml").lines() {
            let line = line.strip_prefix("# ").unwrap_or(line);
            // `[name]`, or `[[name]]` for an array of tables.
            let line = line
                .strip_prefix("[[")
                .and_then(|l| l.strip_suffix("]]"))
                .map_or(line.to_owned(), |name| format!("[{name}]"));
            let line = line.as_str();
            if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                keys.push((String::new(), name.to_owned()));
                table = name.to_owned();
            } else if let Some((key, _)) = line.split_once(" = ") {
                if key.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                    keys.push((table.clone(), key.to_owned()));
                }
            }
        }
        keys
    }

    #[test]
    fn the_example_documents_every_setting() {
        let documented = documented_keys();
        let tables = [
            ("", field_names::<Config>()),
            ("admission", field_names::<Admission>()),
            ("limits", field_names::<Limits>()),
            ("http2", field_names::<Http2Settings>()),
            ("compression", field_names::<CompressionSettings>()),
            ("tls", field_names::<TlsConfig>()),
            ("log", field_names::<Logging>()),
            ("static", field_names::<StaticSettings>()),
            (
                "database",
                field_names::<shardd_shards::database::DatabaseSettings>(),
            ),
        ];
        for (table, names) in tables {
            for name in names {
                assert!(
                    documented.contains(&(table.to_owned(), (*name).to_owned())),
                    "config/shardd.toml does not show {name:?} in table {table:?}: \
                     document the new setting there, with its default"
                );
            }
        }
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
