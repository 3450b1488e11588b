//! The raw HTTP/1.1 client over a Unix domain socket, for `unix:` servers:
//! the same [`RawClient`] as over TCP, on a [`UnixStream`].

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::Duration;

use super::client::{RawClient, Transport, READ_TIMEOUT};

impl Transport for UnixStream {
    fn read_within(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        // A zero timeout would mean "block forever".
        self.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        self.read(buf)
    }

    fn write_all_within_timeout(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }
}

/// The client over one connection to a Unix socket file.
pub type UnixClient = RawClient<UnixStream>;

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
        RawClient::new(stream)
    }
}
