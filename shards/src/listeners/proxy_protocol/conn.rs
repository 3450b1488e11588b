//! `ProxyConn`: a connection that starts with a PROXY protocol header.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::time::Instant;

use super::header::{self, HeaderError, Parsed, Source};
use crate::listener::PeerAddr;

/// How much is asked of the socket per read of the header: a v1 line or a
/// usual v2 header (28 or 52 bytes, TLVs aside) fits, and the start of the
/// request that follows in the same packet is kept, not left for a second call.
const READ_CHUNK: usize = 1024;

/// A connection of a [`ProxyProtocol`](super::ProxyProtocol) listener.
///
/// Its header is read by [`Listener::establish`](crate::Listener::establish),
/// on the connection's own task; bytes that came in the same read as the
/// header are kept and read first. Until then every read fails, so a
/// listener stacked over [`ProxyProtocol`](super::ProxyProtocol) that does
/// not forward `establish` closes its connections instead of serving the
/// header to the HTTP parser.
#[derive(Debug)]
pub struct ProxyConn<C> {
    inner: C,
    /// The header must be complete by then (counted from accept).
    deadline: Instant,
    /// Read with the header, not yet handed out; `None` until the header is read.
    read_ahead: Option<ReadAhead>,
}

#[derive(Debug)]
struct ReadAhead {
    bytes: Vec<u8>,
    start: usize,
}

impl<C: AsyncRead + AsyncWrite + Unpin> ProxyConn<C> {
    pub(super) fn new(inner: C, deadline: Instant) -> Self {
        ProxyConn {
            inner,
            deadline,
            read_ahead: None,
        }
    }

    /// The connection underneath.
    pub fn get_ref(&self) -> &C {
        &self.inner
    }

    /// The same, mutably (for a listener's `establish` to forward to).
    pub fn get_mut(&mut self) -> &mut C {
        &mut self.inner
    }

    /// Read the header before the deadline; on success `peer` is the
    /// client it names (left alone for a health check of the balancer's).
    /// Errors: `TimedOut`, `InvalidData` (absent, malformed, too long),
    /// `UnexpectedEof` (the client closed partway through), or the
    /// socket's own. A client that closes before sending a byte is no error.
    pub(super) async fn read_header(&mut self, peer: &mut PeerAddr) -> io::Result<()> {
        let (source, read_ahead) = tokio::time::timeout_at(self.deadline, self.read_source())
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    "PROXY protocol header not complete within the header timeout",
                )
            })??;
        if let Source::Client(client) = source {
            *peer = client;
        }
        self.read_ahead = Some(read_ahead);
        Ok(())
    }

    async fn read_source(&mut self) -> io::Result<(Source, ReadAhead)> {
        let mut bytes = Vec::with_capacity(READ_CHUNK);
        loop {
            match header::parse(&bytes) {
                Ok(Parsed::Header { source, len }) => {
                    return Ok((source, ReadAhead { bytes, start: len }))
                }
                Ok(Parsed::Incomplete) => {}
                Err(error) => return Err(invalid(error)),
            }
            // The parser refuses a header past its limit, so this stays
            // below V2_MAX_LEN + READ_CHUNK.
            bytes.reserve(READ_CHUNK);
            if self.inner.read_buf(&mut bytes).await? == 0 {
                if bytes.is_empty() {
                    // Closed without a byte: a balancer's TCP health check
                    // (an AWS NLB's sends no header), not an error. The
                    // connection then ends as any that closes at once.
                    return Ok((Source::Balancer, ReadAhead { bytes, start: 0 }));
                }
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before its PROXY protocol header",
                ));
            }
        }
    }
}

fn invalid(error: HeaderError) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, error)
}

impl<C: AsyncRead + Unpin> AsyncRead for ProxyConn<C> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &mut this.read_ahead {
            None => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "PROXY protocol header not read: a listener over ProxyProtocol must forward Listener::establish",
            ))),
            Some(ahead) if ahead.start < ahead.bytes.len() => {
                let rest = &ahead.bytes[ahead.start..];
                let n = rest.len().min(buf.remaining());
                buf.put_slice(&rest[..n]);
                ahead.start += n;
                if ahead.start == ahead.bytes.len() {
                    // Served: free the buffer for the connection's lifetime.
                    ahead.bytes = Vec::new();
                    ahead.start = 0;
                }
                Poll::Ready(Ok(()))
            }
            Some(_) => Pin::new(&mut this.inner).poll_read(cx, buf),
        }
    }
}

impl<C: AsyncWrite + Unpin> AsyncWrite for ProxyConn<C> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, slices)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }
}
