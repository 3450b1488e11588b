//! A request body the app reads as it arrives, for uploads it would rather
//! not have buffered whole (or that are larger than `max_body_bytes`).
//!
//! An app opts in per request with [`App::streams_body`](crate::App::streams_body);
//! the connection then calls the app as soon as the head has arrived and
//! feeds the body through a small pipe while the app runs. The pipe holds
//! at most [`WINDOW`] bytes the app has not taken yet; beyond that the
//! connection stops reading, and TCP flow control slows the client.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use bytes::Bytes;
use futures_core::Stream;
use http::HeaderMap;

use crate::http::HttpError;

/// Body bytes read ahead of the app: a few socket reads' worth, so the app
/// rarely waits on the connection, and memory per upload stays small.
pub(crate) const WINDOW: usize = 64 * 1024;

/// Between the connection (writing) and the app (reading).
///
/// Behind a mutex, not a `RefCell`, so that the app's end is `Send`: tower
/// services (axum's `Router`, tonic's servers) require a `Send` request
/// body, even though shardd polls it on the shard's own thread. The lock is
/// never contended there and is taken once per chunk.
#[derive(Debug, Default)]
pub(crate) struct Pipe {
    state: Mutex<PipeState>,
}

#[derive(Debug, Default)]
struct PipeState {
    chunks: VecDeque<Bytes>,
    queued: usize,
    /// Set once: the body ended (`Ok`) or failed.
    end: Option<Result<(), HttpError>>,
    /// The app, waiting for a chunk.
    app: Option<Waker>,
    /// The connection, waiting for room.
    connection: Option<Waker>,
    /// The trailers that ended the body (HTTP/2).
    trailers: Option<HeaderMap>,
}

impl Pipe {
    /// The state; a panic while it was held (none can happen in these
    /// short sections) leaves it usable.
    fn state(&self) -> MutexGuard<'_, PipeState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    pub(crate) fn push(&self, chunk: Bytes) {
        let mut state = self.state();
        state.queued += chunk.len();
        state.chunks.push_back(chunk);
        if let Some(app) = state.app.take() {
            app.wake();
        }
    }

    pub(crate) fn finish(&self, end: Result<(), HttpError>) {
        let mut state = self.state();
        state.end.get_or_insert(end);
        if let Some(app) = state.app.take() {
            app.wake();
        }
    }

    /// Keep the trailers that ended the body, for the app to ask for.
    pub(crate) fn set_trailers(&self, trailers: HeaderMap) {
        self.state().trailers = Some(trailers);
    }

    /// The body ended whole.
    pub(crate) fn is_complete(&self) -> bool {
        matches!(self.state().end, Some(Ok(())))
    }

    /// Whether the body has ended, whole or not.
    pub(crate) fn is_finished(&self) -> bool {
        self.state().end.is_some()
    }

    /// Whether the pipe has room, without waiting for it.
    pub(crate) fn has_room(&self) -> bool {
        self.state().queued < WINDOW
    }

    /// Whether the app has taken enough that the connection may read on;
    /// if not, the connection is woken when it has.
    pub(crate) fn poll_room(&self, cx: &mut Context<'_>) -> bool {
        let mut state = self.state();
        if state.queued < WINDOW {
            return true;
        }
        state.connection = Some(cx.waker().clone());
        false
    }

    fn poll_chunk(&self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BodyError>>> {
        let mut state = self.state();
        if let Some(chunk) = state.chunks.pop_front() {
            state.queued -= chunk.len();
            if let Some(connection) = state.connection.take() {
                connection.wake();
            }
            return Poll::Ready(Some(Ok(chunk)));
        }
        match state.end {
            Some(Ok(())) => Poll::Ready(None),
            Some(Err(error)) => Poll::Ready(Some(Err(BodyError(error)))),
            None => {
                state.app = Some(cx.waker().clone());
                Poll::Pending
            }
        }
    }
}

/// Why a streamed body ended early: the client stopped sending (408 or a
/// close mid-body) or broke the chunked framing. The connection closes
/// after the app's response.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("request body: {0}")]
pub struct BodyError(HttpError);

/// A request body as it arrives: the chunks in order, then `None`.
///
/// It owns its end of the pipe, so an app may keep reading it after it has
/// answered, from its response body: over HTTP/2 a bidirectional stream
/// (gRPC) reads requests while it sends responses.
#[derive(Debug, Clone)]
pub struct RequestBody {
    pub(crate) pipe: Arc<Pipe>,
}

impl RequestBody {
    /// The next chunk; `None` at the end of the body.
    pub async fn chunk(&mut self) -> Option<Result<Bytes, BodyError>> {
        poll_fn(|cx| self.pipe.poll_chunk(cx)).await
    }

    /// The trailers that followed the body (HTTP/2 only; HTTP/1.1 chunked
    /// trailers are read and dropped), once [`chunk`](Self::chunk) has
    /// returned `None`.
    pub fn trailers(&self) -> Option<HeaderMap> {
        self.pipe.state().trailers.take()
    }
}

impl Stream for RequestBody {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.pipe.poll_chunk(cx)
    }
}
