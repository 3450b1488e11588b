//! An `http::Response<B>` from a tower service → a shardd [`Response`].
//!
//! The status and the header fields are copied over; the body is looked at
//! once: if it is already complete (a `Full`, a `String`, axum's `Json`),
//! it goes out as [`Body::Shared`] with a `Content-Length`, copying
//! nothing; otherwise it is forwarded frame by frame as [`Body::Stream`]
//! (chunked, with the connection's backpressure). Trailers are kept: HTTP/2
//! sends them (gRPC's status travels in them), HTTP/1.1 drops them.

use std::any::Any;
use std::cell::RefCell;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_core::Stream;
use http::StatusCode;
use http_body::Frame;

use crate::body::{Body, BodyStream, BoxError, ChunkSource};
use crate::interop::response_from_http;
use crate::response::Response;
use crate::tower::request::SpareHeaders;

/// `response` as a shardd [`Response`]; `cx` is the task's, for the one
/// look at the body.
///
/// The head is converted as by [`Response::from_http`] (framing fields
/// are the connection's, `Connection: close` becomes
/// [`Response::close_connection`]); a header value that is not UTF-8
/// cannot be sent as shardd header text, so the response becomes a 500, as
/// the encoder does for any field it cannot send safely. The service's
/// `HeaderMap` is kept, emptied, for the next request.
#[inline(never)] // one frame in profiles: what the adapter costs on the way out
pub(crate) fn from_http<B>(
    response: http::Response<B>,
    cx: &mut Context<'_>,
    spare: &SpareBody,
    spare_headers: &SpareHeaders,
) -> Response
where
    B: http_body::Body + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    let (parts, body) = response.into_parts();
    let body = match into_body(body, cx, spare) {
        Ok(body) => body,
        Err(error) => {
            log::error!("tower service: the response body failed before its first byte: {error}");
            return invalid_response();
        }
    };
    let converted = response_from_http(&parts, body);
    spare_headers.keep(parts.headers);
    converted.unwrap_or_else(|error| {
        log::error!("tower service: {error}; answering 500");
        invalid_response()
    })
}

impl Body {
    /// A body from any `http_body::Body` (feature `tower`): a hyper or axum
    /// body, `http_body_util::Full`, a stream of frames.
    ///
    /// Looked at once, as the tower adapter looks at a service's: a body
    /// that is complete at once becomes [`Body::Shared`] (sent with a
    /// `Content-Length`, nothing copied), an empty one [`Body::Empty`], any
    /// other a [`Body::Stream`] of its data frames (trailers dropped),
    /// polled when it is sent. The look uses a waker that does nothing; a
    /// body not ready then registers the connection's waker when the
    /// stream is polled. A body that fails at that first look becomes a
    /// stream that fails, so the connection is closed without a complete
    /// response, as for any failing stream.
    ///
    /// With [`Response::from_http`]:
    ///
    /// ```
    /// use shardd_shards::{Body, Response};
    ///
    /// let answer = http::Response::new(axum_like_body("hello"));
    /// let response = Response::from_http(answer.map(Body::from_http_body))?;
    /// assert_eq!(response.body().as_bytes(), Some(&b"hello"[..]));
    /// # fn axum_like_body(text: &'static str) -> impl http_body::Body<Data = bytes::Bytes, Error = shardd_shards::BodyError> {
    /// #     shardd_shards::tower::RequestBody::from(text)
    /// # }
    /// # Ok::<(), shardd_shards::HttpConversionError>(())
    /// ```
    pub fn from_http_body<B>(body: B) -> Body
    where
        B: http_body::Body + 'static,
        B::Data: Buf,
        B::Error: Into<BoxError>,
    {
        let mut cx = Context::from_waker(std::task::Waker::noop());
        into_body(body, &mut cx, &SpareBody::default())
            .unwrap_or_else(|error| Body::stream(Failed(Some(error))))
    }
}

/// A stream that fails at once with the error it holds.
struct Failed(Option<BoxError>);

impl Stream for Failed {
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Poll::Ready(self.get_mut().0.take().map(Err))
    }
}

/// Feature `tower`: shardd's body is an `http_body::Body`, so an
/// `http::Response<Body>` ([`Response::into_http`]) can be handed to code
/// written for the `http` types, or be a tower service's answer.
///
/// Bytes are one data frame; a stream, its chunks; a stream's error ends
/// the body with that error.
impl http_body::Body for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.get_mut();
        let data = match std::mem::take(this) {
            Body::Empty => return Poll::Ready(None),
            Body::Static(bytes) => Bytes::from_static(bytes),
            Body::Owned(bytes) => Bytes::from(bytes),
            Body::Shared(bytes) => bytes,
            Body::File(file) => {
                *this = Body::Stream(file.into_stream());
                return Pin::new(this).poll_frame(cx);
            }
            Body::Stream(mut stream) => {
                let polled = stream.poll_next(cx);
                if let Poll::Ready(None) = polled {
                    return Poll::Ready(stream.take_trailers().map(|t| Ok(Frame::trailers(t))));
                }
                *this = Body::Stream(stream);
                return polled.map(|chunk| chunk.map(|chunk| chunk.map(Frame::data)));
            }
        };
        Poll::Ready((!data.is_empty()).then(|| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.as_bytes().is_some_and(<[u8]>::is_empty)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        if let Body::File(file) = self {
            return http_body::SizeHint::with_exact(file.len());
        }
        match self.as_bytes() {
            Some(bytes) => http_body::SizeHint::with_exact(bytes.len() as u64),
            None => http_body::SizeHint::default(),
        }
    }
}

/// What a client gets when the service failed or answered something that
/// cannot be sent.
pub(crate) fn invalid_response() -> Response {
    Response::new(StatusCode::INTERNAL_SERVER_ERROR)
        .with_header("Content-Type", "text/plain")
        .with_body("internal server error\n")
}

/// A box that held a response body, kept for the next one (one per app,
/// so per shard): a body that is complete at once is looked at in it and
/// costs no allocation. Type-erased because the app's type does not name
/// its service's body type; it holds an `Option<Pin<Box<B>>>`.
#[derive(Default)]
pub(crate) struct SpareBody(RefCell<Option<Box<dyn Any>>>);

impl fmt::Debug for SpareBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SpareBody")
    }
}

impl SpareBody {
    /// `body` in a pinned box: the spare one if there is one.
    fn boxed<B: 'static>(&self, body: B) -> Pin<Box<B>> {
        let spare = self
            .0
            .borrow_mut()
            .as_mut()
            .and_then(|any| any.downcast_mut::<Option<Pin<Box<B>>>>())
            .and_then(Option::take);
        match spare {
            Some(mut boxed) => {
                // Drops the body it held, a spent one, in place.
                boxed.as_mut().set(body);
                boxed
            }
            None => Box::pin(body),
        }
    }

    /// Keep `boxed` (its body spent) for the next response.
    fn keep<B: 'static>(&self, boxed: Pin<Box<B>>) {
        let mut slot = self.0.borrow_mut();
        match slot
            .as_mut()
            .and_then(|any| any.downcast_mut::<Option<Pin<Box<B>>>>())
        {
            Some(spare) => *spare = Some(boxed),
            None => *slot = Some(Box::new(Some(boxed))),
        }
    }
}

/// The body, whole if its first frame completes it, else a stream.
///
/// One look, with the task's waker: a body that is not ready at once is
/// streamed, and the connection polls it again when it sends it.
fn into_body<B>(body: B, cx: &mut Context<'_>, spare: &SpareBody) -> Result<Body, BoxError>
where
    B: http_body::Body + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    if body.is_end_stream() {
        return Ok(Body::Empty);
    }
    let exact = body.size_hint().exact();
    let mut chunks = Chunks {
        first: None,
        body: spare.boxed(body),
        trailers: None,
        ended: false,
    };
    let first = chunks.poll_chunk(cx);
    let whole = matches!(&first, Poll::Ready(Some(Ok(chunk)))
        if chunks.body.is_end_stream() || exact == Some(chunk.len() as u64));
    match first {
        Poll::Ready(Some(Ok(chunk))) if whole => {
            spare.keep(chunks.body);
            Ok(Body::Shared(chunk))
        }
        // Trailers and no data (a gRPC stream of no messages: its status
        // is all it sends) still go out as a stream, to carry them.
        Poll::Ready(None) if chunks.trailers.is_some() => {
            Ok(Body::Stream(BodyStream::from_source(chunks)))
        }
        Poll::Ready(None) => {
            spare.keep(chunks.body);
            Ok(Body::Empty)
        }
        Poll::Ready(Some(Err(error))) => Err(error),
        Poll::Ready(Some(Ok(chunk))) => {
            chunks.first = Some(chunk);
            Ok(Body::Stream(BodyStream::from_source(chunks)))
        }
        Poll::Pending => Ok(Body::Stream(BodyStream::from_source(chunks))),
    }
}

/// A response body as a stream of non-empty chunks, then its trailers.
struct Chunks<B> {
    /// A chunk taken to look at, sent first.
    first: Option<Bytes>,
    body: Pin<Box<B>>,
    /// The trailers frame, once the body has sent it.
    trailers: Option<http::HeaderMap>,
    /// The body has ended: it is not polled again.
    ended: bool,
}

impl<B> Chunks<B>
where
    B: http_body::Body,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    fn poll_chunk(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Bytes, BoxError>>> {
        if let Some(first) = self.first.take() {
            return Poll::Ready(Some(Ok(first)));
        }
        if self.ended {
            return Poll::Ready(None);
        }
        loop {
            let frame = match self.body.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
                Poll::Ready(None) => {
                    self.ended = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => return Poll::Pending,
            };
            match frame.into_data() {
                Ok(mut data) => {
                    let chunk = data.copy_to_bytes(data.remaining());
                    if !chunk.is_empty() {
                        return Poll::Ready(Some(Ok(chunk)));
                    }
                }
                Err(frame) => {
                    if let Ok(trailers) = frame.into_trailers() {
                        self.trailers = Some(trailers);
                    }
                }
            }
        }
    }
}

impl<B> ChunkSource for Chunks<B>
where
    B: http_body::Body,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    fn poll_chunk(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BoxError>>> {
        // Chunks is Unpin: the body is behind its own pinned box.
        Chunks::poll_chunk(self.get_mut(), cx)
    }

    fn take_trailers(self: Pin<&mut Self>) -> Option<http::HeaderMap> {
        self.get_mut().trailers.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Where the spare box's body is, if there is one for `B`.
    fn spare_at<B: 'static>(spare: &SpareBody) -> Option<usize> {
        let slot = spare.0.borrow();
        let boxed = slot.as_ref()?.downcast_ref::<Option<Pin<Box<B>>>>()?;
        boxed.as_ref().map(|b| &**b as *const B as usize)
    }

    #[test]
    fn a_complete_body_is_shared_and_its_box_reused() {
        let spare = SpareBody::default();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let answer = |text: &str| {
            http::Response::builder()
                .header("content-type", "text/plain")
                .header("content-length", "999")
                .body(text.to_owned())
                .unwrap()
        };
        let headers = SpareHeaders::default();
        let response = from_http(answer("hello"), &mut cx, &spare, &headers);
        assert!(matches!(response.body(), Body::Shared(bytes) if bytes == "hello"));
        assert_eq!(response.header("content-type"), Some("text/plain"));
        assert_eq!(response.header("content-length"), None);
        let kept = spare_at::<String>(&spare).expect("the box is kept");
        // The response's HeaderMap is kept, emptied, for the next request.
        assert!(headers
            .0
            .borrow()
            .as_ref()
            .is_some_and(|map| map.is_empty()));
        let response = from_http(answer("again"), &mut cx, &spare, &headers);
        assert!(matches!(response.body(), Body::Shared(bytes) if bytes == "again"));
        assert_eq!(spare_at::<String>(&spare), Some(kept));
        // Without a body, the stated length stays (for HEAD and 304).
        let response = from_http(answer(""), &mut cx, &spare, &headers);
        assert!(matches!(response.body(), Body::Empty));
        assert_eq!(response.header("content-length"), Some("999"));
    }

    /// Two chunks, the second not ready at first.
    struct Slow(u8);

    impl http_body::Body for Slow {
        type Data = Bytes;
        type Error = std::io::Error;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            cx: &mut Context<'_>,
        ) -> Poll<Option<Result<Frame<Bytes>, std::io::Error>>> {
            self.0 += 1;
            match self.0 {
                1 => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"one;"))))),
                2 => {
                    cx.waker().wake_by_ref();
                    Poll::Pending
                }
                3 => Poll::Ready(Some(Ok(Frame::trailers(http::HeaderMap::new())))),
                4 => Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"two;"))))),
                _ => Poll::Ready(None),
            }
        }
    }

    #[test]
    fn an_unfinished_body_is_streamed_frame_by_frame_without_trailers() {
        let spare = SpareBody::default();
        let waker = std::task::Waker::noop();
        let mut cx = Context::from_waker(waker);
        let headers = SpareHeaders::default();
        let mut response = from_http(http::Response::new(Slow(0)), &mut cx, &spare, &headers);
        let Body::Stream(mut stream) = response.take_body() else {
            panic!("a stream expected");
        };
        let mut got = Vec::new();
        loop {
            match stream.poll_next(&mut cx) {
                Poll::Ready(Some(chunk)) => got.push(chunk.unwrap()),
                Poll::Ready(None) => break,
                Poll::Pending => got.push(Bytes::from_static(b"|")),
            }
        }
        assert_eq!(got.concat(), b"one;|two;");
    }
}
