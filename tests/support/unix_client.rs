//! A raw HTTP/1.1 client over a Unix domain socket, for `unix:` servers;
//! responses go through the same [`parse_response`] as TCP ones.

use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use super::client::READ_TIMEOUT;
use super::response::{parse_response, HttpResponse};

/// One connection to a Unix socket file.
pub struct UnixClient {
    stream: UnixStream,
    buf: Vec<u8>,
    eof: bool,
}

impl UnixClient {
    /// Connects to the socket file `path`; panics if it cannot.
    pub fn connect(path: &Path) -> UnixClient {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("connect to {}: {e}", path.display()));
        UnixClient::from_stream(stream)
    }

    /// Wraps a connected stream (one bound to a path of its own, say).
    pub fn from_stream(stream: UnixStream) -> UnixClient {
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        UnixClient {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// Writes all of `bytes`; panics if the write fails.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("send");
    }

    /// Sends `GET path` and returns its response; panics if none arrives.
    pub fn get(&mut self, path: &str) -> HttpResponse {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"));
        self.response()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Reads the next response, waiting at most [`READ_TIMEOUT`].
    pub fn response(&mut self) -> io::Result<HttpResponse> {
        let until = Instant::now() + READ_TIMEOUT;
        loop {
            if let Some((response, used)) = parse_response(&self.buf, "GET", self.eof)? {
                self.buf.drain(..used);
                return Ok(response);
            }
            if self.eof {
                return Err(io::Error::new(
                    ErrorKind::UnexpectedEof,
                    format!(
                        "closed before a complete response: {:?}",
                        String::from_utf8_lossy(&self.buf)
                    ),
                ));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::Error::new(
                    ErrorKind::TimedOut,
                    "no complete response in time",
                ));
            }
            self.fill(left)?;
        }
    }

    /// Reads until the server closes, at most `within`; returns whether it did.
    pub fn closes_within(&mut self, within: Duration) -> bool {
        let until = Instant::now() + within;
        while !self.eof {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            match self.fill(left) {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(_) => return true,
            }
        }
        true
    }

    fn fill(&mut self, timeout: Duration) -> io::Result<usize> {
        self.stream
            .set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match self.stream.read(&mut chunk) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.buf.extend_from_slice(&chunk[..n]);
        self.eof |= n == 0;
        Ok(n)
    }
}
