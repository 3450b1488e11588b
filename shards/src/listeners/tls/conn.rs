//! `TlsConn`: a TLS stream whose handshake runs on its connection's own
//! task, the first time the connection reads or writes.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};
use tokio_rustls::server::TlsStream;
use tokio_rustls::{Accept, TlsAcceptor};

use crate::stats::ShardStats;

/// What a shard's TLS connections share: where they count their handshakes.
#[derive(Debug, Default)]
pub(crate) struct HandshakeStats {
    /// `None` for a listener built outside a shard's runtime (nothing reads it then).
    pub(crate) stats: Option<Arc<ShardStats>>,
}

impl HandshakeStats {
    fn count(&self, outcome: Outcome) {
        let Some(stats) = &self.stats else { return };
        let counter = match outcome {
            Outcome::Done => &stats.tls_handshakes,
            Outcome::Failed => &stats.tls_handshake_failures,
            Outcome::TimedOut => &stats.tls_handshake_timeouts,
        };
        counter.fetch_add(1, Relaxed);
    }
}

enum Outcome {
    Done,
    Failed,
    TimedOut,
}

/// A connection of a [`TlsListener`](super::TlsListener).
///
/// The listener hands it out at once, before any TLS byte has moved; the
/// handshake runs on the first read or write, that is on the connection's
/// own task, so handshakes never hold up the shard's accept loop and spread
/// over the shards like any other work. A handshake that is not done within
/// the handshake timeout (counted from accept) fails the read or write with
/// `TimedOut`, and one the client gets wrong (garbage, plain HTTP, an
/// unsupported version, a closed socket) fails it with the TLS error: either
/// way the connection loop closes the connection and the shard counts it.
/// After the handshake, reads and writes go through rustls.
pub struct TlsConn<C> {
    state: State<C>,
    stats: Rc<HandshakeStats>,
}

enum State<C> {
    Handshaking {
        accept: Accept<C>,
        deadline: Instant,
        /// Armed the first time the handshake has to wait.
        timer: Option<Pin<Box<Sleep>>>,
    },
    Open(TlsStream<C>),
    /// The handshake failed or timed out; every call fails.
    Failed,
}

impl<C: AsyncRead + AsyncWrite + Unpin> TlsConn<C> {
    /// A connection that will shake hands over `io` with `config`; it has
    /// until `deadline` to finish.
    pub(crate) fn new(
        io: C,
        config: Arc<ServerConfig>,
        deadline: Instant,
        stats: Rc<HandshakeStats>,
    ) -> Self {
        TlsConn {
            state: State::Handshaking {
                accept: TlsAcceptor::from(config).accept(io),
                deadline,
                timer: None,
            },
            stats,
        }
    }

    /// Whether the handshake has completed.
    pub fn is_open(&self) -> bool {
        matches!(self.state, State::Open(_))
    }

    /// The underlying connection, unless the handshake failed.
    pub fn get_ref(&self) -> Option<&C> {
        match &self.state {
            State::Handshaking { accept, .. } => accept.get_ref(),
            State::Open(stream) => Some(stream.get_ref().0),
            State::Failed => None,
        }
    }

    /// The underlying connection, mutably, while the handshake has not
    /// started (for the inner listener's `establish`).
    pub(crate) fn get_mut(&mut self) -> Option<&mut C> {
        match &mut self.state {
            State::Handshaking { accept, .. } => accept.get_mut(),
            _ => None,
        }
    }

    /// The protocol agreed by ALPN (`http/1.1`), once open, if the client asked for one.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        match &self.state {
            State::Open(stream) => stream.get_ref().1.alpn_protocol(),
            _ => None,
        }
    }

    /// Drive the handshake; the open stream once it is done.
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<&mut TlsStream<C>>> {
        if let State::Handshaking {
            accept,
            deadline,
            timer,
        } = &mut self.state
        {
            let result = match Pin::new(accept).poll(cx) {
                Poll::Ready(result) => result,
                Poll::Pending => {
                    let timer =
                        timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(*deadline)));
                    if timer.as_mut().poll(cx).is_pending() {
                        return Poll::Pending;
                    }
                    Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        "TLS handshake timed out",
                    ))
                }
            };
            match result {
                Ok(stream) => {
                    self.stats.count(Outcome::Done);
                    self.state = State::Open(stream);
                }
                Err(error) => {
                    let outcome = if error.kind() == io::ErrorKind::TimedOut {
                        Outcome::TimedOut
                    } else {
                        Outcome::Failed
                    };
                    self.stats.count(outcome);
                    log::debug!("TLS handshake failed: {error}");
                    self.state = State::Failed;
                    return Poll::Ready(Err(error));
                }
            }
        }
        match &mut self.state {
            State::Open(stream) => Poll::Ready(Ok(stream)),
            _ => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::NotConnected,
                "TLS handshake failed",
            ))),
        }
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin> AsyncRead for TlsConn<C> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let stream = ready!(self.get_mut().poll_open(cx))?;
        Pin::new(stream).poll_read(cx, buf)
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin> AsyncWrite for TlsConn<C> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let stream = ready!(self.get_mut().poll_open(cx))?;
        Pin::new(stream).poll_write(cx, data)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        slices: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let stream = ready!(self.get_mut().poll_open(cx))?;
        Pin::new(stream).poll_write_vectored(cx, slices)
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let stream = ready!(self.get_mut().poll_open(cx))?;
        Pin::new(stream).poll_flush(cx)
    }

    /// Sends `close_notify`, then shuts the connection's write side. A
    /// connection still shaking hands is not worth finishing the handshake
    /// for: it just reports success and is closed when dropped.
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().state {
            State::Open(stream) => Pin::new(stream).poll_shutdown(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}
