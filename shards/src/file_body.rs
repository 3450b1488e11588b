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
use std::os::fd::AsRawFd;
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
        BodyStream::from_source(FileChunks {
            body: self,
            buffer: BytesMut::new(),
        })
    }
}

/// A [`FileBody`] read in chunks.
struct FileChunks {
    body: FileBody,
    /// Where chunks are read: once the chunk before has been sent (its
    /// `Bytes` dropped), the next one reuses its memory. A fresh 64 KiB
    /// per chunk cost a page fault per 4 KiB (glibc gives the freed top
    /// of a thread's heap back to the kernel): 1 MiB over TLS spent ~15%
    /// of its CPU faulting and zeroing pages.
    buffer: BytesMut,
}

impl ChunkSource for FileChunks {
    fn poll_chunk(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BoxError>>> {
        let FileChunks { body, buffer } = self.get_mut();
        if body.len == 0 {
            return Poll::Ready(None);
        }
        let want = body.len.min(CHUNK as u64) as usize;
        buffer.clear();
        buffer.reserve(want);
        Poll::Ready(Some(
            match read_into_spare(&body.file, buffer, want, body.offset) {
                Ok(0) => Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the file is shorter than when its response began",
                )
                .into()),
                Ok(n) => {
                    body.advance(n as u64);
                    Ok(buffer.split().freeze())
                }
                Err(error) => Err(error.into()),
            },
        ))
    }
}

/// Read up to `want` bytes of `file` at `offset` into `buffer`'s spare
/// capacity (at least `want`), without zeroing it first; the bytes read
/// become the buffer's contents.
fn read_into_spare(
    file: &File,
    buffer: &mut BytesMut,
    want: usize,
    offset: u64,
) -> io::Result<usize> {
    debug_assert!(buffer.is_empty() && buffer.capacity() >= want);
    let offset = libc::off_t::try_from(offset).map_err(|_| io::ErrorKind::InvalidInput)?;
    let spare = buffer.spare_capacity_mut();
    // SAFETY: `spare` is writable memory of at least `want` bytes (reserved
    // by the caller) that nothing else refers to; `pread` writes into it,
    // never reads it, and the descriptor is open for as long as `file` lives.
    let read = unsafe { libc::pread(file.as_raw_fd(), spare.as_mut_ptr().cast(), want, offset) };
    if read < 0 {
        return Err(io::Error::last_os_error());
    }
    let read = read as usize;
    // SAFETY: `pread` initialised the first `read` (≤ `want`) bytes.
    unsafe { buffer.set_len(read) };
    Ok(read)
}

impl fmt::Debug for FileBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "File({} bytes at {})", self.len, self.offset)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::task::Waker;

    fn next(stream: &mut BodyStream) -> Option<Bytes> {
        let mut cx = Context::from_waker(Waker::noop());
        match stream.poll_next(&mut cx) {
            Poll::Ready(Some(Ok(chunk))) => Some(chunk),
            Poll::Ready(None) => None,
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn chunks_read_the_range_whether_the_chunk_before_is_held_or_sent() {
        let bytes: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut file = tempfile_in_target();
        file.write_all(&bytes).unwrap();
        let body = FileBody::new(Rc::new(file), 100, 250_000);
        let mut stream = body.into_stream();
        let mut read = Vec::new();
        // The first chunk is still held (unsent) while the second is read;
        // later ones are dropped first, so their memory is reused.
        let first = next(&mut stream).unwrap();
        let second = next(&mut stream).unwrap();
        read.extend_from_slice(&first);
        read.extend_from_slice(&second);
        drop((first, second));
        while let Some(chunk) = next(&mut stream) {
            assert!(chunk.len() <= CHUNK);
            read.extend_from_slice(&chunk);
        }
        assert!(read == bytes[100..250_100], "the bytes read differ");
    }

    /// An unnamed temporary file (gone when closed).
    fn tempfile_in_target() -> File {
        let path = std::env::temp_dir().join(format!("shardd-file-body-{}", std::process::id()));
        let file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(&path)
            .unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }
}
