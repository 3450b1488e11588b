//! An `http::Response<B>` from a tower service → a shardd [`Response`].
//!
//! The status and the header fields are copied over; the body is looked at
//! once: if it is already complete (a `Full`, a `String`, axum's `Json`),
//! it goes out as [`Body::Shared`] with a `Content-Length`, copying
//! nothing; otherwise it is forwarded frame by frame as [`Body::Stream`]
//! (chunked, with the connection's backpressure). Trailers are dropped.

use std::any::Any;
use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes};
use futures_core::Stream;
use http::header::{self, HeaderName, HeaderValue};
use http::StatusCode;
use http_body::Frame;

use crate::body::{Body, BoxError};
use crate::response::{HeaderText, Response};
use crate::tower::request::SpareHeaders;

/// `response` as a shardd [`Response`]; `cx` is the task's, for the one
/// look at the body.
///
/// Framing is the connection's job: `Content-Length` and
/// `Transfer-Encoding` are not copied (a `Content-Length` is kept only on a
/// response without a body, so a `HEAD` answer states the length its `GET`
/// would have), and `Connection: close` becomes
/// [`Response::close_connection`]. A header value that is not UTF-8 cannot
/// be sent as shardd header text: the response becomes a 500, as the
/// encoder does for any field it cannot send safely.
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
    let bodyless = matches!(body, Body::Empty);
    let mut converted = Response::new(parts.status);
    for (name, value) in &parts.headers {
        if *name == header::CONTENT_LENGTH && !bodyless || *name == header::TRANSFER_ENCODING {
            continue;
        }
        if *name == header::CONNECTION {
            if has_close(value) {
                converted = converted.close_connection();
            }
            continue;
        }
        let Some(value) = value_text(value) else {
            log::error!("tower service: the value of {name} is not UTF-8; answering 500");
            return invalid_response();
        };
        converted = converted.with_header(name_text(name), value);
    }
    spare_headers.keep(parts.headers);
    converted.with_body(body)
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
    };
    let first = chunks.poll_chunk(cx);
    let whole = matches!(&first, Poll::Ready(Some(Ok(chunk)))
        if chunks.body.is_end_stream() || exact == Some(chunk.len() as u64));
    match first {
        Poll::Ready(Some(Ok(chunk))) if whole => {
            spare.keep(chunks.body);
            Ok(Body::Shared(chunk))
        }
        Poll::Ready(None) => {
            spare.keep(chunks.body);
            Ok(Body::Empty)
        }
        Poll::Ready(Some(Err(error))) => Err(error),
        Poll::Ready(Some(Ok(chunk))) => {
            chunks.first = Some(chunk);
            Ok(Body::stream(chunks))
        }
        Poll::Pending => Ok(Body::stream(chunks)),
    }
}

/// A response body as a stream of non-empty chunks (trailers dropped).
struct Chunks<B> {
    /// A chunk taken to look at, sent first.
    first: Option<Bytes>,
    body: Pin<Box<B>>,
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
        loop {
            let frame = match self.body.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => frame,
                Poll::Ready(Some(Err(error))) => return Poll::Ready(Some(Err(error.into()))),
                Poll::Ready(None) => return Poll::Ready(None),
                Poll::Pending => return Poll::Pending,
            };
            if let Some(chunk) = data(frame) {
                return Poll::Ready(Some(Ok(chunk)));
            }
        }
    }
}

impl<B> Stream for Chunks<B>
where
    B: http_body::Body,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    type Item = Result<Bytes, BoxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        // Chunks is Unpin: the body is behind its own pinned box.
        self.get_mut().poll_chunk(cx)
    }
}

/// A data frame's bytes (`None` for trailers and empty data); free for `Bytes`.
fn data<D: Buf>(frame: Frame<D>) -> Option<Bytes> {
    let mut data = frame.into_data().ok()?;
    let bytes = data.copy_to_bytes(data.remaining());
    (!bytes.is_empty()).then_some(bytes)
}

/// Whether a `Connection` value lists `close`.
fn has_close(value: &HeaderValue) -> bool {
    value
        .as_bytes()
        .split(|&b| b == b',')
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// Header names apps commonly send, so that theirs cost no allocation.
static KNOWN_NAMES: [HeaderName; 28] = [
    header::CONTENT_TYPE,
    header::SERVER,
    header::DATE,
    header::CACHE_CONTROL,
    header::CONTENT_ENCODING,
    header::VARY,
    header::LOCATION,
    header::SET_COOKIE,
    header::ETAG,
    header::LAST_MODIFIED,
    header::ALLOW,
    header::EXPIRES,
    header::CONTENT_DISPOSITION,
    header::CONTENT_LANGUAGE,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::AGE,
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
    header::STRICT_TRANSPORT_SECURITY,
    header::X_CONTENT_TYPE_OPTIONS,
    header::X_FRAME_OPTIONS,
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_ALLOW_METHODS,
    header::ACCESS_CONTROL_ALLOW_HEADERS,
    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::ACCESS_CONTROL_MAX_AGE,
];

/// Header values apps commonly send (axum's and tower-http's defaults).
static KNOWN_VALUES: [&str; 12] = [
    "text/plain; charset=utf-8",
    "application/json",
    "text/html; charset=utf-8",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "gzip",
    "br",
    "zstd",
    "deflate",
    "accept-encoding",
    "no-cache",
];

/// The name as header text: static for a common name, else owned.
fn name_text(name: &HeaderName) -> HeaderText {
    match KNOWN_NAMES.iter().find(|known| *known == name) {
        Some(known) => Cow::Borrowed(known.as_str()),
        None => Cow::Owned(name.as_str().to_owned()),
    }
}

/// The value as header text, `None` if it is not UTF-8.
fn value_text(value: &HeaderValue) -> Option<HeaderText> {
    let bytes = value.as_bytes();
    if let Some(known) = KNOWN_VALUES.iter().find(|known| known.as_bytes() == bytes) {
        return Some(Cow::Borrowed(known));
    }
    std::str::from_utf8(bytes)
        .ok()
        .map(|text| Cow::Owned(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_names_and_values_are_static() {
        assert!(matches!(
            name_text(&header::CONTENT_TYPE),
            Cow::Borrowed("content-type")
        ));
        assert!(matches!(
            name_text(&HeaderName::from_static("x-custom")),
            Cow::Owned(ref name) if name == "x-custom"
        ));
        assert!(matches!(
            value_text(&HeaderValue::from_static("application/json")),
            Some(Cow::Borrowed("application/json"))
        ));
        let utf8 = HeaderValue::from_bytes("café".as_bytes()).unwrap();
        assert_eq!(value_text(&utf8).as_deref(), Some("café"));
        let latin1 = HeaderValue::from_bytes(b"caf\xe9").unwrap();
        assert_eq!(value_text(&latin1), None);
    }

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

    #[test]
    fn connection_close_is_found_in_a_list() {
        assert!(has_close(&HeaderValue::from_static("keep-alive, Close")));
        assert!(!has_close(&HeaderValue::from_static("keep-alive")));
    }
}
