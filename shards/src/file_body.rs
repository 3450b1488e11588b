//! [`FileBody`]: a response body that is a range of an open file, sent
//! without passing through the server's memory where the connection allows.
//!
//! Over a plain TCP (or Unix) socket the HTTP/1.1 connection sends it with
//! `sendfile(2)`: the kernel copies from the page cache to the socket.
//! Everywhere else (TLS, HTTP/2, in-memory pipes, the tower adapter) it is
//! read in chunks of [`CHUNK`] bytes, one chunk at a time as the client
//! takes them, so a slow reader holds at most a chunk or two of it.

use std::fmt;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};

use crate::body::{BodyStream, BoxError, ChunkSource};

/// The size of a chunk when a file body is read rather than sent with
/// `sendfile` (HTTP/2's default frame size is 16 KiB: four frames).
pub(crate) const CHUNK: usize = 64 * 1024;

/// `len` bytes of an open file from `offset`: a [`Body::File`](crate::Body::File).
///
/// The file is shared (`Rc`), so a cache of open files can hand the same
/// descriptor to every response that sends it; the offset is the body's
/// own (reads and `sendfile` use positioned I/O, never the file's cursor).
#[derive(Clone)]
pub struct FileBody {
    file: Rc<File>,
    offset: u64,
    len: u64,
}

impl FileBody {
    /// `len` bytes of `file` from `offset`. The caller checked they exist:
    /// a file that turns out shorter cuts the response short (the client
    /// sees fewer bytes than `Content-Length` said, and the connection closes).
    pub fn new(file: Rc<File>, offset: u64, len: u64) -> Self {
        FileBody { file, offset, len }
    }

    /// The whole of `file`, as long as it is now.
    pub fn whole(file: File) -> io::Result<Self> {
        let len = file.metadata()?.len();
        Ok(FileBody::new(Rc::new(file), 0, len))
    }

    /// The number of bytes the body sends.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the body sends nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where in the file the body starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The open file.
    pub fn file(&self) -> &File {
        &self.file
    }

    /// Mark the first `sent` bytes as sent (the connection's `sendfile` loop).
    pub(crate) fn advance(&mut self, sent: u64) {
        let sent = sent.min(self.len);
        self.offset += sent;
        self.len -= sent;
    }

    /// The body as a stream of chunks read from the file, one read per
    /// chunk, each when the stream is polled (that is, when the client has
    /// taken the chunk before).
    pub fn into_stream(self) -> BodyStream {
        BodyStream::from_source(FileChunks(self))
    }
}

/// A [`FileBody`] read in chunks.
struct FileChunks(FileBody);

impl ChunkSource for FileChunks {
    fn poll_chunk(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BoxError>>> {
        let body = &mut self.get_mut().0;
        if body.len == 0 {
            return Poll::Ready(None);
        }
        let want = body.len.min(CHUNK as u64) as usize;
        let mut chunk = BytesMut::zeroed(want);
        let read = match body.file.read_at(&mut chunk, body.offset) {
            Ok(0) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the file is shorter than when its response began",
            )),
            other => other,
        };
        Poll::Ready(Some(match read {
            Ok(n) => {
                chunk.truncate(n);
                body.advance(n as u64);
                Ok(chunk.freeze())
            }
            Err(error) => Err(error.into()),
        }))
    }
}

impl fmt::Debug for FileBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "File({} bytes at {})", self.len, self.offset)
    }
}
