//! The borrowed [`Request`] → an owned `http::Request<RequestBody>`, the
//! shape every tower service (an axum `Router` included) takes.
//!
//! The conversion is the public [`Request::to_http`]'s: the head and the
//! body are copied once, here into a per-app [`Arena`]; the URI, each
//! `HeaderValue` and the body are slices of it, and the `HeaderMap` is the
//! last response's, emptied ([`SpareHeaders`]): a request whose field names
//! are standard costs no allocation however many fields it has.

use std::cell::RefCell;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::HeaderMap;
use http_body::{Frame, SizeHint};

use futures_core::Stream;

use crate::interop::{request_to_http, HttpConversionError};
use crate::request::Request;
use crate::request_body::{BodyError, RequestBody as StreamedBody};

/// The body of a request handed to a tower service.
///
/// Over HTTP/1.1 it is the request's whole body, already read (and
/// de-chunked) by the connection, as one frame; the connection has applied
/// `limits.max_body_bytes` (a larger body got a 413 before the service ran).
///
/// Over HTTP/2 it streams: each DATA frame reaches the service as it
/// arrives, then the request's trailers, if any, as the last frame, and
/// the service may keep reading it after it has answered (from its
/// response body), so gRPC's client and bidirectional streaming work. A
/// stream is not bounded by `max_body_bytes` (a gRPC stream may carry any
/// number of messages); the service bounds what it gathers, as tonic does
/// per message (`max_decoding_message_size`, 4 MiB by default) and axum
/// per body (`DefaultBodyLimit`, 2 MB). Flow control keeps what is read
/// ahead of the service small.
///
/// It implements `http_body::Body<Data = Bytes>`, so axum's extractors
/// (`Json`, `Bytes`, `String`, `Form`, ...) and tonic's servers read it
/// as they would read hyper's `Incoming`. Its error, only ever from a
/// stream, says the client reset the stream or stopped sending.
#[derive(Debug, Default)]
pub struct RequestBody {
    kind: Kind,
}

#[derive(Debug)]
enum Kind {
    /// Read whole: the one frame, until it is taken.
    Whole(Option<Bytes>),
    /// Read as it arrives; `ended` once its last frame is out.
    Streaming { body: StreamedBody, ended: bool },
}

impl Default for Kind {
    fn default() -> Self {
        Kind::Whole(None)
    }
}

impl RequestBody {
    /// A body of these bytes.
    pub fn new(data: Bytes) -> Self {
        RequestBody {
            kind: Kind::Whole((!data.is_empty()).then_some(data)),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        RequestBody::default()
    }

    /// A body read as it arrives ([`Request::body_stream`]), its trailers last.
    pub fn streaming(body: StreamedBody) -> Self {
        RequestBody {
            kind: Kind::Streaming { body, ended: false },
        }
    }
}

impl From<Bytes> for RequestBody {
    fn from(data: Bytes) -> Self {
        RequestBody::new(data)
    }
}

impl From<Vec<u8>> for RequestBody {
    fn from(data: Vec<u8>) -> Self {
        RequestBody::new(Bytes::from(data))
    }
}

impl From<&'static str> for RequestBody {
    fn from(text: &'static str) -> Self {
        RequestBody::new(Bytes::from_static(text.as_bytes()))
    }
}

impl From<StreamedBody> for RequestBody {
    fn from(body: StreamedBody) -> Self {
        RequestBody::streaming(body)
    }
}

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = BodyError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BodyError>>> {
        match &mut self.get_mut().kind {
            Kind::Whole(data) => Poll::Ready(data.take().map(|data| Ok(Frame::data(data)))),
            Kind::Streaming { ended: true, .. } => Poll::Ready(None),
            Kind::Streaming { body, ended } => match Pin::new(&mut *body).poll_next(cx) {
                Poll::Ready(Some(Ok(data))) => Poll::Ready(Some(Ok(Frame::data(data)))),
                Poll::Ready(Some(Err(error))) => {
                    *ended = true;
                    Poll::Ready(Some(Err(error)))
                }
                Poll::Ready(None) => {
                    *ended = true;
                    Poll::Ready(
                        body.trailers()
                            .map(|trailers| Ok(Frame::trailers(trailers))),
                    )
                }
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Whole(data) => data.is_none(),
            Kind::Streaming { ended, .. } => *ended,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Whole(data) => {
                SizeHint::with_exact(data.as_ref().map_or(0, |data| data.len() as u64))
            }
            Kind::Streaming { .. } => SizeHint::default(),
        }
    }
}

/// Where the requests of one app (one shard) are copied: chunks of
/// [`ARENA_CHUNK`] bytes, each shared by the requests copied into it and
/// reused once they are all dropped, so a request costs no allocation for
/// its bytes. A handler that keeps request bytes (a header value, the body)
/// after its response keeps their chunk alive, as with hyper's read buffer.
#[derive(Debug, Default)]
pub(crate) struct Arena(RefCell<BytesMut>);

/// A `HeaderMap` kept from the last response for the next request, so
/// that neither allocates its tables (the service drops the request's map,
/// the adapter keeps the response's). One per app, so per shard.
#[derive(Debug, Default)]
pub(crate) struct SpareHeaders(pub(super) RefCell<Option<HeaderMap>>);

impl SpareHeaders {
    /// An empty map: the kept one, if any.
    fn take(&self) -> HeaderMap {
        self.0.borrow_mut().take().unwrap_or_default()
    }

    /// Keep `headers`, emptied, for the next request.
    pub(crate) fn keep(&self, mut headers: HeaderMap) {
        headers.clear();
        *self.0.borrow_mut() = Some(headers);
    }
}

/// One arena chunk.
const ARENA_CHUNK: usize = 16 * 1024;

/// Below this much room a chunk is reclaimed or replaced before a request.
const ARENA_ROOM: usize = 4 * 1024;

/// A body larger than this gets a buffer of its own, so that a chunk stays small.
const ARENA_BODY: usize = 2 * 1024;

/// `request` as an `http::Request`: [`Request::to_http`], with the
/// request's bytes copied into the app's [`Arena`] (a large body into a
/// buffer of its own), the map kept in [`SpareHeaders`] filled, and, with
/// `peer`, the [`PeerAddr`](crate::PeerAddr) as an extension.
#[inline(never)] // one frame in profiles: what the adapter costs on the way in
pub(crate) fn to_http(
    request: &Request<'_>,
    peer: bool,
    arena: &Arena,
    spare: &SpareHeaders,
) -> Result<http::Request<RequestBody>, HttpConversionError> {
    let body = request.body();
    let inline = body.len() <= ARENA_BODY;
    let (mut parts, data) = {
        let mut buf = arena.0.borrow_mut();
        if buf.capacity() < ARENA_ROOM {
            // Reclaims the chunk if no request holds it any more, else starts another.
            buf.reserve(ARENA_CHUNK);
        }
        request_to_http(request, &mut buf, spare.take(), inline)?
    };
    let data = if inline {
        data
    } else {
        Bytes::copy_from_slice(body)
    };
    if peer {
        parts.extensions.insert(request.peer().clone());
    }
    let body = match request.body_stream() {
        Some(streamed) => RequestBody::streaming(streamed),
        None => RequestBody::new(data),
    };
    Ok(http::Request::from_parts(parts, body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::PeerAddr;
    use http_body::Body as _;

    #[test]
    fn body_is_one_frame_then_the_end() {
        let mut body = RequestBody::from("hello");
        assert_eq!(body.size_hint().exact(), Some(5));
        assert!(!body.is_end_stream());
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut body).poll_frame(&mut cx) else {
            panic!("one data frame expected");
        };
        assert_eq!(frame.into_data().unwrap(), "hello");
        assert!(body.is_end_stream());
        assert!(matches!(
            Pin::new(&mut body).poll_frame(&mut cx),
            Poll::Ready(None)
        ));
        assert!(RequestBody::from(Vec::new()).is_end_stream());
    }

    #[test]
    fn a_streamed_body_gives_its_chunks_as_they_come_then_its_trailers() {
        let pipe = std::sync::Arc::new(crate::request_body::Pipe::default());
        let mut body = RequestBody::streaming(StreamedBody { pipe: pipe.clone() });
        assert_eq!(body.size_hint().exact(), None);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let mut poll = |body: &mut RequestBody| Pin::new(body).poll_frame(&mut cx);
        assert!(poll(&mut body).is_pending());
        pipe.push(Bytes::from_static(b"one"));
        let Poll::Ready(Some(Ok(frame))) = poll(&mut body) else {
            panic!("a data frame expected");
        };
        assert_eq!(frame.into_data().unwrap(), "one");
        assert!(poll(&mut body).is_pending());
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", http::HeaderValue::from_static("0"));
        pipe.set_trailers(trailers);
        pipe.finish(Ok(()));
        let Poll::Ready(Some(Ok(frame))) = poll(&mut body) else {
            panic!("the trailers frame expected");
        };
        assert_eq!(frame.into_trailers().unwrap()["grpc-status"], "0");
        assert!(body.is_end_stream());
        assert!(matches!(poll(&mut body), Poll::Ready(None)));
    }

    /// Where the request's path bytes are.
    fn path_at(request: &http::Request<RequestBody>) -> usize {
        request.uri().path().as_ptr() as usize
    }

    #[test]
    fn requests_share_an_arena_chunk_reclaimed_once_dropped() {
        let peer = PeerAddr::Unknown;
        let arena = Arena::default();
        let body = vec![b'x'; 1024];
        let convert = || {
            let request = Request::new("POST", "/p", http::Version::HTTP_11, &body, &peer);
            to_http(&request, false, &arena, &SpareHeaders::default()).expect("a URI")
        };
        let first = convert();
        let start = path_at(&first);
        let second = convert();
        // Copied right behind the first request: target, then body.
        assert_eq!(path_at(&second), start + 2 + 1024);
        drop((first, second));
        // Dropped requests' room is reclaimed: the chunk comes round again.
        let mut seen = Vec::new();
        for _ in 0..40 {
            let at = path_at(&convert());
            assert!(
                (start..start + ARENA_CHUNK).contains(&at),
                "{at:#x} outside"
            );
            seen.push(at);
        }
        assert!(seen.contains(&start), "the chunk was not reclaimed");
        // A request still held keeps its chunk: the next ones go to another.
        let held = convert();
        let moved = (0..40).any(|_| !(start..start + ARENA_CHUNK).contains(&path_at(&convert())));
        assert!(moved, "a held chunk was written over");
        assert_eq!(held.body().size_hint().exact(), Some(1024));
    }

    #[test]
    fn a_large_body_gets_a_buffer_of_its_own() {
        let peer = PeerAddr::Unknown;
        let arena = Arena::default();
        let body = vec![b'y'; ARENA_BODY + 1];
        let request = Request::new("POST", "/big", http::Version::HTTP_11, &body, &peer);
        let mut converted = to_http(&request, false, &arena, &SpareHeaders::default()).unwrap();
        let path = path_at(&converted);
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let Poll::Ready(Some(Ok(frame))) = Pin::new(converted.body_mut()).poll_frame(&mut cx)
        else {
            panic!("one data frame expected");
        };
        let data = frame.into_data().unwrap();
        assert_eq!(data, body);
        assert!(!(path..path + ARENA_CHUNK).contains(&(data.as_ptr() as usize)));
    }

    #[test]
    fn absolute_form_targets_and_star_are_uris() {
        let peer = PeerAddr::Unknown;
        for target in ["/a/b?x=1", "http://example.com/p?q", "*"] {
            let request = Request::new("OPTIONS", target, http::Version::HTTP_11, b"", &peer);
            let converted = to_http(&request, false, &Arena::default(), &SpareHeaders::default())
                .expect("a URI");
            assert_eq!(converted.uri().to_string(), target);
            assert!(converted.body().is_end_stream());
        }
    }
}
