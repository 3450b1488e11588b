//! The raw HTTP/1.1 client over an in-memory pipe: the same [`RawClient`]
//! as over TCP, on our end of a tokio `duplex` whose other end a
//! [`MemoryListener`](super::MemoryListener) hands the server.

use std::io::{self, ErrorKind};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};
use tokio::runtime::Runtime;

use super::client::{RawClient, Transport, READ_TIMEOUT};

/// How many bytes a pipe holds in each direction before a write waits.
const PIPE_CAPACITY: usize = 64 * 1024;

/// Our end of an in-memory pipe, read and written blocking: each call runs
/// on a runtime of the client's own, so the server's end may be served on
/// any other thread (a shard's).
pub struct MemoryPipe {
    runtime: Runtime,
    stream: DuplexStream,
}

impl Transport for MemoryPipe {
    fn read_within(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        let MemoryPipe { runtime, stream } = self;
        runtime
            .block_on(async { tokio::time::timeout(timeout, stream.read(buf)).await })
            .unwrap_or_else(|_| Err(ErrorKind::TimedOut.into()))
    }

    fn write_all_within_timeout(&mut self, bytes: &[u8]) -> io::Result<()> {
        let MemoryPipe { runtime, stream } = self;
        runtime
            .block_on(async { tokio::time::timeout(READ_TIMEOUT, stream.write_all(bytes)).await })
            .unwrap_or_else(|_| Err(ErrorKind::TimedOut.into()))
    }
}

/// The client over an in-memory pipe.
pub type MemoryClient = RawClient<MemoryPipe>;

impl MemoryClient {
    /// A new pipe: the client on our end, and the server's end to hand a
    /// [`MemoryListener`](super::MemoryListener). Not for use inside an
    /// async test: the client blocks on a runtime of its own.
    pub fn pipe() -> (MemoryClient, DuplexStream) {
        let (ours, theirs) = tokio::io::duplex(PIPE_CAPACITY);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime for the client's end of the pipe");
        let pipe = MemoryPipe {
            runtime,
            stream: ours,
        };
        (RawClient::new(pipe), theirs)
    }
}
