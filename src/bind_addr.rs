//! `BindAddr` (where to listen: `IP:PORT` or `unix:/path`) and `UnixMode`
//! (the permissions of a Unix socket file), as written in the config file
//! and on the command line.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::error::Error;

/// Where a server listens: a TCP address, or a Unix domain socket file.
///
/// Written `127.0.0.1:8080`, `[::1]:8080` or `unix:/run/shardd.sock`:
///
/// ```
/// use shardd::BindAddr;
///
/// let tcp: BindAddr = "127.0.0.1:8080".parse()?;
/// let unix: BindAddr = "unix:/run/shardd/http.sock".parse()?;
/// assert_eq!(unix.to_string(), "unix:/run/shardd/http.sock");
/// # Ok::<(), shardd::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum BindAddr {
    /// A TCP address and port (port 0: any free port).
    Tcp(SocketAddr),
    /// The path of a Unix domain socket file. A stale file left by a dead
    /// process is replaced; one a live process listens on is an error.
    Unix(PathBuf),
}

impl BindAddr {
    /// The TCP address, if this is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            BindAddr::Tcp(addr) => Some(*addr),
            BindAddr::Unix(_) => None,
        }
    }
}

impl From<SocketAddr> for BindAddr {
    fn from(addr: SocketAddr) -> Self {
        BindAddr::Tcp(addr)
    }
}

impl FromStr for BindAddr {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidBind(text.to_owned());
        match text.strip_prefix("unix:") {
            Some("") => Err(invalid()),
            Some(path) => Ok(BindAddr::Unix(PathBuf::from(path))),
            None => text.parse().map(BindAddr::Tcp).map_err(|_| invalid()),
        }
    }
}

/// `127.0.0.1:8080` or `unix:/path`, as parsed.
impl fmt::Display for BindAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BindAddr::Tcp(addr) => write!(f, "{addr}"),
            BindAddr::Unix(path) => write!(f, "unix:{}", path.display()),
        }
    }
}

impl<'de> Deserialize<'de> for BindAddr {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Permission bits of a Unix socket file, written in octal (`"0660"`);
/// connecting needs write permission on the file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixMode(u32);

impl UnixMode {
    /// The permission bits (at most `0o777`).
    pub fn bits(self) -> u32 {
        self.0
    }
}

impl FromStr for UnixMode {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        match u32::from_str_radix(text, 8) {
            Ok(bits) if bits <= 0o777 && !text.starts_with('+') => Ok(UnixMode(bits)),
            _ => Err(Error::InvalidUnixMode(text.to_owned())),
        }
    }
}

/// Four octal digits: `0660`.
impl fmt::Display for UnixMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04o}", self.0)
    }
}

impl<'de> Deserialize<'de> for UnixMode {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_tcp_and_unix_addresses() {
        assert_eq!(
            "127.0.0.1:8080".parse::<BindAddr>().unwrap(),
            BindAddr::Tcp("127.0.0.1:8080".parse().unwrap())
        );
        assert_eq!(
            "[::1]:0".parse::<BindAddr>().unwrap().tcp(),
            Some("[::1]:0".parse().unwrap())
        );
        let unix: BindAddr = "unix:/run/x.sock".parse().unwrap();
        assert_eq!(unix, BindAddr::Unix("/run/x.sock".into()));
        assert_eq!(unix.to_string(), "unix:/run/x.sock");
        assert_eq!(unix.tcp(), None);
        for bad in ["unix:", "localhost", "127.0.0.1", "/run/x.sock", ""] {
            let error = bad.parse::<BindAddr>().unwrap_err().to_string();
            assert!(error.contains("unix:/path"), "{bad:?}: {error}");
        }
    }

    #[test]
    fn parses_octal_modes() {
        assert_eq!("0660".parse::<UnixMode>().unwrap().bits(), 0o660);
        assert_eq!("600".parse::<UnixMode>().unwrap().bits(), 0o600);
        assert_eq!("0777".parse::<UnixMode>().unwrap().to_string(), "0777");
        for bad in ["0800", "1777", "rw-rw----", "", "+660"] {
            assert!(bad.parse::<UnixMode>().is_err(), "{bad:?}");
        }
    }
}
