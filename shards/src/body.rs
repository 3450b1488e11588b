//! [`Body`]: what a response carries — nothing, bytes (static, owned or
//! shared), or a stream of chunks produced while the response is sent.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures_core::Stream;
use http::HeaderMap;

use crate::file_body::FileBody;
use crate::message::BodyContent;

/// The error a body stream may end with; the connection is then closed
/// without finishing the body, so the client sees the response was cut.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// A response body.
#[derive(Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// Bytes that live as long as the program.
    Static(&'static [u8]),
    /// Bytes the response owns.
    Owned(Vec<u8>),
    /// Bytes shared with others (a cache, a file read once): sending them
    /// copies nothing.
    Shared(Bytes),
    /// Chunks produced while the response is sent, of a length not known
    /// up front: sent with chunked coding (to HTTP/1.0 clients: until the
    /// connection closes). The shard polls the stream only when the client
    /// has read what was sent before, so a slow reader slows the stream.
    Stream(BodyStream),
    /// A range of an open file, of a length known up front (sent with a
    /// `Content-Length`): with `sendfile(2)` over a plain TCP connection,
    /// read in chunks as the client takes them everywhere else.
    File(FileBody),
}

/// A body stream, boxed; it runs on the shard and need not be `Send`.
pub struct BodyStream(Pin<Box<dyn ChunkSource>>);

/// One piece of a streamed body with trailers ([`Body::stream_with_trailers`]).
#[derive(Debug)]
pub enum BodyFrame {
    /// Bytes of the body.
    Data(Bytes),
    /// Header fields sent after the body (gRPC's `grpc-status`); the last
    /// frame of the stream.
    Trailers(HeaderMap),
}

/// What a [`BodyStream`] reads from: chunks, then, once they end, maybe
/// trailers. One trait object, so a stream with trailers costs a body
/// without them nothing (the `Response` stays the same size).
pub(crate) trait ChunkSource {
    /// The next chunk; `None` at the end of the body.
    fn poll_chunk(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BoxError>>>;

    /// The trailers, once `poll_chunk` has returned `None`.
    fn take_trailers(self: Pin<&mut Self>) -> Option<HeaderMap> {
        None
    }
}

impl BodyStream {
    /// A stream over `source`.
    pub(crate) fn from_source(source: impl ChunkSource + 'static) -> Self {
        BodyStream(Box::pin(source))
    }

    /// Poll for the next chunk; `None` once the body is complete.
    pub fn poll_next(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        self.0.as_mut().poll_chunk(cx)
    }

    /// The trailers that followed the last chunk, if the body has any: ask
    /// after [`poll_next`](Self::poll_next) returned `None`. HTTP/2 sends
    /// them; HTTP/1.1 drops them (its clients rarely accept them).
    pub fn take_trailers(&mut self) -> Option<HeaderMap> {
        self.0.as_mut().take_trailers()
    }
}

impl Body {
    /// A body streamed from `chunks`.
    pub fn stream<S, E>(chunks: S) -> Body
    where
        S: Stream<Item = Result<Bytes, E>> + 'static,
        E: Into<BoxError>,
    {
        Body::Stream(BodyStream::from_source(MapErr(chunks)))
    }

    /// A body streamed from `frames`: data, then optionally one
    /// [`BodyFrame::Trailers`] as the last frame (what a gRPC response
    /// ends with). Over HTTP/1.1 the trailers are dropped.
    pub fn stream_with_trailers<S, E>(frames: S) -> Body
    where
        S: Stream<Item = Result<BodyFrame, E>> + 'static,
        E: Into<BoxError>,
    {
        Body::Stream(BodyStream::from_source(WithTrailers {
            frames,
            trailers: None,
        }))
    }

    /// The bytes, unless the body is a stream.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match self {
            Body::Empty => Some(&[]),
            Body::Static(bytes) => Some(bytes),
            Body::Owned(bytes) => Some(bytes),
            Body::Shared(bytes) => Some(bytes),
            Body::Stream(_) | Body::File(_) => None,
        }
    }

    /// Whether the body is a stream.
    pub fn is_stream(&self) -> bool {
        matches!(self, Body::Stream(_))
    }

    /// What a codec is told of this body (see [`BodyContent`]).
    #[inline(always)]
    pub fn content(&self) -> BodyContent<'_> {
        match self {
            Body::Empty => BodyContent::Static(&[]),
            Body::Static(bytes) => BodyContent::Static(bytes),
            Body::Owned(bytes) => BodyContent::Bytes(bytes),
            Body::Shared(bytes) => BodyContent::Bytes(bytes),
            Body::Stream(_) => BodyContent::Stream,
            Body::File(file) => BodyContent::Sized(file.len()),
        }
    }
}

impl AsRef<[u8]> for Body {
    /// The bytes; empty for a stream.
    fn as_ref(&self) -> &[u8] {
        self.as_bytes().unwrap_or_default()
    }
}

/// Turns a stream's error into a [`BoxError`].
struct MapErr<S>(S);

impl<S, E> ChunkSource for MapErr<S>
where
    S: Stream<Item = Result<Bytes, E>>,
    E: Into<BoxError>,
{
    fn poll_chunk(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BoxError>>> {
        // SAFETY: `MapErr` is a plain wrapper: the stream is never moved
        // out of it, so pinning the wrapper pins the stream (structural).
        let inner = unsafe { self.map_unchecked_mut(|this| &mut this.0) };
        inner
            .poll_next(cx)
            .map(|item| item.map(|chunk| chunk.map_err(Into::into)))
    }
}

/// Frames with trailers as chunks, the trailers kept for the end.
struct WithTrailers<S> {
    frames: S,
    trailers: Option<HeaderMap>,
}

impl<S, E> ChunkSource for WithTrailers<S>
where
    S: Stream<Item = Result<BodyFrame, E>>,
    E: Into<BoxError>,
{
    fn poll_chunk(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BoxError>>> {
        // SAFETY: `frames` is never moved out of the pinned struct
        // (structural pinning of that field); `trailers` is not pinned.
        let this = unsafe { self.get_unchecked_mut() };
        // SAFETY: as above.
        let mut frames = unsafe { Pin::new_unchecked(&mut this.frames) };
        loop {
            return match frames.as_mut().poll_next(cx) {
                Poll::Ready(Some(Ok(BodyFrame::Data(chunk)))) => Poll::Ready(Some(Ok(chunk))),
                Poll::Ready(Some(Ok(BodyFrame::Trailers(trailers)))) => {
                    this.trailers = Some(trailers);
                    continue; // the stream should end here; read on to see it does
                }
                Poll::Ready(Some(Err(error))) => Poll::Ready(Some(Err(error.into()))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            };
        }
    }

    fn take_trailers(self: Pin<&mut Self>) -> Option<HeaderMap> {
        // SAFETY: only the unpinned `trailers` field is touched.
        unsafe { self.get_unchecked_mut() }.trailers.take()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Body::Empty => f.write_str("Empty"),
            Body::Static(bytes) => write!(f, "Static({} bytes)", bytes.len()),
            Body::Owned(bytes) => write!(f, "Owned({} bytes)", bytes.len()),
            Body::Shared(bytes) => write!(f, "Shared({} bytes)", bytes.len()),
            Body::Stream(_) => f.write_str("Stream"),
            Body::File(file) => write!(f, "{file:?}"),
        }
    }
}

impl From<&'static str> for Body {
    fn from(text: &'static str) -> Self {
        Body::Static(text.as_bytes())
    }
}

impl From<&'static [u8]> for Body {
    fn from(bytes: &'static [u8]) -> Self {
        Body::Static(bytes)
    }
}

impl From<String> for Body {
    fn from(text: String) -> Self {
        Body::Owned(text.into_bytes())
    }
}

impl From<Vec<u8>> for Body {
    fn from(bytes: Vec<u8>) -> Self {
        Body::Owned(bytes)
    }
}

impl From<FileBody> for Body {
    fn from(file: FileBody) -> Self {
        Body::File(file)
    }
}

impl From<Bytes> for Body {
    fn from(bytes: Bytes) -> Self {
        Body::Shared(bytes)
    }
}
