//! Taking over a connection after `101 Switching Protocols` (WebSockets).
//!
//! A handler answers `101` with [`Response::on_upgrade`](crate::Response::on_upgrade);
//! once the response is written, the connection stops speaking HTTP and the
//! upgrade handler gets the raw stream as an [`Upgraded`], including any
//! bytes the client already sent after its request. It runs on the shard,
//! as the connection's task, and the connection ends when it returns.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection's byte stream, of whatever type its listener produces.
trait Stream: AsyncRead + AsyncWrite + Unpin {}
impl<T: AsyncRead + AsyncWrite + Unpin> Stream for T {}

/// The raw connection after an upgrade.
pub struct Upgraded {
    io: Box<dyn Stream>,
    /// Bytes read from the client after its upgrade request, served first.
    read_ahead: Vec<u8>,
    served: usize,
}

impl Upgraded {
    pub(crate) fn new<C: AsyncRead + AsyncWrite + Unpin + 'static>(
        io: C,
        read_ahead: Vec<u8>,
    ) -> Self {
        Upgraded {
            io: Box::new(io),
            read_ahead,
            served: 0,
        }
    }
}

impl std::fmt::Debug for Upgraded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Upgraded")
            .field("read_ahead", &(self.read_ahead.len() - self.served))
            .finish_non_exhaustive()
    }
}

impl AsyncRead for Upgraded {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.served < this.read_ahead.len() {
            let ahead = &this.read_ahead[this.served..];
            let n = ahead.len().min(buf.remaining());
            buf.put_slice(&ahead[..n]);
            this.served += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl AsyncWrite for Upgraded {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, data)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// What runs on the connection after the upgrade.
pub(crate) type OnUpgrade = Box<dyn FnOnce(Upgraded) -> Pin<Box<dyn Future<Output = ()>>>>;
