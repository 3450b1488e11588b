//! The borrowed [`Request`] → an owned `http::Request<RequestBody>`, the
//! shape every tower service (an axum `Router` included) takes.
//!
//! The target, every header value and the body are copied once, into a
//! per-app [`Arena`]; the URI, each `HeaderValue` and the body are slices
//! of it, and the `HeaderMap` is the last response's, emptied
//! ([`SpareHeaders`]): a request whose field names are standard costs no
//! allocation however many fields it has.

use std::cell::RefCell;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::Uri;
use http_body::{Frame, SizeHint};
use smallvec::SmallVec;

use crate::request::Request;

/// The body of a request handed to a tower service: the request's whole
/// body, already read (and de-chunked) by the connection, as one frame.
///
/// It implements `http_body::Body<Data = Bytes, Error = Infallible>`, so
/// axum's extractors (`Json`, `Bytes`, `String`, `Form`, ...) read it as
/// they would read hyper's `Incoming`. The connection has already applied
/// `limits.max_body_bytes` (a larger body got a 413 before the service ran).
#[derive(Debug, Default)]
pub struct RequestBody {
    data: Option<Bytes>,
}

impl RequestBody {
    /// A body of these bytes.
    pub fn new(data: Bytes) -> Self {
        RequestBody {
            data: (!data.is_empty()).then_some(data),
        }
    }

    /// An empty body.
    pub fn empty() -> Self {
        RequestBody::default()
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

impl http_body::Body for RequestBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        Poll::Ready(self.get_mut().data.take().map(|data| Ok(Frame::data(data))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |data| data.len() as u64))
    }
}

/// Fields a request may have before the list spills to the heap.
const INLINE_FIELDS: usize = 16;

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
    /// An empty map with room for `fields` fields: the kept one, if any.
    fn take(&self, fields: usize) -> HeaderMap {
        match self.0.borrow_mut().take() {
            Some(mut headers) => {
                headers.reserve(fields);
                headers
            }
            None => HeaderMap::with_capacity(fields),
        }
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

/// `request` as an `http::Request`, or `None` if its target is not a URI
/// the `http` crate accepts (the caller answers 400).
///
/// Method, URI (the target as sent: origin-form, absolute-form or `*`),
/// version, every header field in order, and the body; with `peer`, the
/// [`PeerAddr`](crate::PeerAddr) as an extension. A field name the `http`
/// crate would refuse (the reader lets none through) is left out rather
/// than failing the request.
#[inline(never)] // one frame in profiles: what the adapter costs on the way in
pub(crate) fn to_http(
    request: &Request<'_>,
    peer: bool,
    arena: &Arena,
    spare: &SpareHeaders,
) -> Option<http::Request<RequestBody>> {
    let target = request.target();
    let body = request.body();
    let mut fields: SmallVec<[(HeaderName, usize); INLINE_FIELDS]> = SmallVec::new();
    let (buf, body) = {
        let mut buf = arena.0.borrow_mut();
        if buf.capacity() < ARENA_ROOM {
            // Reclaims the chunk if no request holds it any more, else starts another.
            buf.reserve(ARENA_CHUNK);
        }
        buf.extend_from_slice(target.as_bytes());
        // One pass over the fields (each costs a UTF-8 check of its name):
        // values into the arena, names parsed, lengths noted.
        for (name, value) in request.headers() {
            if let Some(name) = header_name(name) {
                buf.extend_from_slice(value);
                fields.push((name, value.len()));
            }
        }
        let body = if body.len() <= ARENA_BODY {
            buf.extend_from_slice(body);
            None
        } else {
            Some(Bytes::copy_from_slice(body))
        };
        (buf.split().freeze(), body)
    };

    let uri = Uri::from_maybe_shared(buf.slice(..target.len())).ok()?;
    let mut headers = spare.take(fields.len());
    let mut at = target.len();
    for (name, len) in fields.drain(..) {
        let value = buf.slice(at..at + len);
        at += len;
        // SAFETY (an invariant of `HeaderValue`, not memory safety: `http`
        // checks bytes again wherever it relies on them, e.g. in `to_str`):
        // the reader (httparse) refuses every byte `HeaderValue` refuses in
        // a value, the control bytes but HTAB, and DEL; hyper trusts
        // httparse's values the same way. Debug builds check again.
        headers.append(name, unsafe {
            HeaderValue::from_maybe_shared_unchecked(value)
        });
    }
    let body = body.unwrap_or_else(|| buf.slice(at..));

    let mut converted = http::Request::new(RequestBody::new(body));
    *converted.method_mut() = request.method();
    *converted.uri_mut() = uri;
    *converted.version_mut() = request.version();
    *converted.headers_mut() = headers;
    if peer {
        converted.extensions_mut().insert(request.peer().clone());
    }
    Some(converted)
}

/// The field name: a common one as most clients spell it is matched as
/// bytes (a few instructions); any other is parsed by the `http` crate.
fn header_name(name: &str) -> Option<HeaderName> {
    let known = match name.as_bytes() {
        b"Host" | b"host" => header::HOST,
        b"Accept" | b"accept" => header::ACCEPT,
        b"Connection" | b"connection" => header::CONNECTION,
        b"User-Agent" | b"user-agent" => header::USER_AGENT,
        b"Accept-Encoding" | b"accept-encoding" => header::ACCEPT_ENCODING,
        b"Accept-Language" | b"accept-language" => header::ACCEPT_LANGUAGE,
        b"Content-Type" | b"content-type" => header::CONTENT_TYPE,
        b"Content-Length" | b"content-length" => header::CONTENT_LENGTH,
        b"Cookie" | b"cookie" => header::COOKIE,
        b"Referer" | b"referer" => header::REFERER,
        b"Origin" | b"origin" => header::ORIGIN,
        b"Authorization" | b"authorization" => header::AUTHORIZATION,
        b"Cache-Control" | b"cache-control" => header::CACHE_CONTROL,
        b"If-None-Match" | b"if-none-match" => header::IF_NONE_MATCH,
        b"Transfer-Encoding" | b"transfer-encoding" => header::TRANSFER_ENCODING,
        other => return HeaderName::from_bytes(other).ok(),
    };
    Some(known)
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
    fn field_names_in_any_case() {
        assert_eq!(header_name("Host"), Some(header::HOST));
        assert_eq!(header_name("cOnNeCtIoN"), Some(header::CONNECTION));
        assert_eq!(header_name("Accept-Charset"), Some(header::ACCEPT_CHARSET));
        assert_eq!(
            header_name("X-Request-Id"),
            Some(HeaderName::from_static("x-request-id"))
        );
        assert_eq!(header_name("bad name"), None);
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
