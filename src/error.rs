//! `Error`: what can go wrong when configuring and starting a server.

use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;

/// An error from the `shardd` library. Every message names what it is
/// about (the setting, the file, the address) so it can be shown as is.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting has a value that parses but makes no sense.
    #[error("invalid setting: {0}")]
    InvalidSetting(&'static str),
    /// The config file could not be read.
    #[error("cannot read config file {path}: {source}")]
    ConfigFile {
        /// The file named by `--config`.
        path: PathBuf,
        /// Why it could not be read.
        source: io::Error,
    },
    /// The config text is not valid TOML for a [`Config`](crate::Config)
    /// (an unknown key, a value of the wrong type); the message names the key.
    #[error("{}{message}", in_file(.path))]
    ConfigSyntax {
        /// The file, when the text came from one.
        path: Option<PathBuf>,
        /// The parser's message, naming the key and line.
        message: String,
    },
    /// The listening address could not be bound.
    #[error("cannot bind {addr}: {source}")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why (in use, no permission, ...).
        source: io::Error,
    },
    /// The access-log file could not be opened for appending.
    #[error("cannot open the access log {path}: {source}")]
    AccessLog {
        /// The file named by `log.access_log` or `--access-log`.
        path: PathBuf,
        /// Why (no such directory, no permission, ...).
        source: io::Error,
    },
    /// A resource the server needs could not be made (a thread, an eventfd).
    #[error("cannot start the server: {0}")]
    Start(#[from] io::Error),
}

fn in_file(path: &Option<PathBuf>) -> String {
    path.as_ref()
        .map(|path| format!("in config file {}: ", path.display()))
        .unwrap_or_default()
}
