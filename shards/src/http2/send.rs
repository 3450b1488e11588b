//! A [`Response`] out on an HTTP/2 stream: its head as a HEADERS frame, its
//! body as DATA frames within the client's flow-control window, its
//! trailers as a last HEADERS frame.

use std::borrow::Cow;
use std::cell::RefCell;
use std::future::poll_fn;
use std::time::Duration;

use bytes::Bytes;
use h2::server::SendResponse;
use h2::SendStream;
use http::header::{HeaderName, HeaderValue, CONTENT_LENGTH, DATE, SERVER};
use http::StatusCode;

use crate::body::{Body, BodyStream};
use crate::env::ShardEnv;
use crate::http::DATE_LEN;
use crate::response::{HeaderText, Response};

/// Bodies up to this size are handed to `h2` whole: it sends them as the
/// window allows, and a stream holds at most this much beyond the window.
/// Larger ones wait for window, piece by piece, so a reader that never
/// opens its window (a zero-window stall) holds no more than this.
const SEND_WHOLE: usize = 16 * 1024;

/// How a response went.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Sent {
    /// Sent whole: the status, and the body's length if it was known.
    Whole {
        status: StatusCode,
        body_bytes: Option<usize>,
    },
    /// The client reset the stream, or the connection ended, before the end.
    Cut,
    /// The client did not open its window within `send_timeout`.
    Stalled,
}

/// Send `response` on `respond`; `head_only`: the request was a HEAD (the
/// fields say what a GET would get, no body follows).
pub(super) async fn send_response(
    respond: &mut SendResponse<Bytes>,
    response: &mut Response,
    head_only: bool,
    env: &ShardEnv,
) -> Sent {
    let body = response.take_body();
    let status = response.status();
    let length = match &body {
        Body::File(file) => usize::try_from(file.len()).ok(),
        body => body.as_bytes().map(<[u8]>::len),
    };
    let head = match head_of(response, length, env) {
        Ok(head) => head,
        Err(field) => {
            log::error!("response field {field:?} cannot be sent over HTTP/2; answering 500");
            let mut fallback = crate::connection::internal_error();
            return Box::pin(send_response(respond, &mut fallback, head_only, env)).await;
        }
    };
    let bodiless = head_only || length == Some(0) || no_body_allowed(status);
    let Ok(mut stream) = respond.send_response(head, bodiless) else {
        return Sent::Cut;
    };
    if bodiless {
        return Sent::Whole {
            status,
            body_bytes: length,
        };
    }
    let timeout = env.limits.send_timeout;
    let sent = match body {
        Body::Empty => Ok(()),
        Body::Static(bytes) => send_bytes(&mut stream, Bytes::from_static(bytes), timeout).await,
        Body::Owned(bytes) => send_bytes(&mut stream, Bytes::from(bytes), timeout).await,
        Body::Shared(bytes) => send_bytes(&mut stream, bytes, timeout).await,
        Body::Stream(chunks) => send_stream(&mut stream, chunks, timeout).await,
        // Read a chunk at a time, each once the window took the one before.
        Body::File(file) => send_stream(&mut stream, file.into_stream(), timeout).await,
    };
    match sent {
        Ok(()) => Sent::Whole {
            status,
            body_bytes: length,
        },
        Err(cut) => {
            if cut == Sent::Stalled {
                stream.send_reset(h2::Reason::CANCEL);
            }
            cut
        }
    }
}

/// The HEADERS of `response`: its status and fields, without the ones
/// HTTP/2 forbids (connection-specific, RFC 9113 §8.2.2), with `date` and,
/// for a body of known length, `content-length`. `Err`: a field name or
/// value HTTP/2 cannot carry.
fn head_of(
    response: &Response,
    length: Option<usize>,
    env: &ShardEnv,
) -> Result<http::Response<()>, String> {
    let mut head = http::Response::new(());
    *head.status_mut() = response.status();
    let fields = head.headers_mut();
    fields.reserve(response.header_fields().size_hint().0 + 2);
    let (mut has_date, mut has_server) = (false, false);
    for (name, value) in response.header_fields() {
        if is_connection_specific(name)
            || (length.is_some() && name.eq_ignore_ascii_case("content-length"))
        {
            continue;
        }
        has_date |= name.eq_ignore_ascii_case("date");
        has_server |= name.eq_ignore_ascii_case("server");
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| name.to_string())?;
        let value = header_value(value).ok_or_else(|| name.to_string())?;
        fields.append(name, value);
    }
    if !has_server {
        // As over HTTP/1.1 (the codec writes `Server: shardd`).
        fields.insert(SERVER, HeaderValue::from_static("shardd"));
    }
    MEMO.with(|memo| {
        if !has_date {
            fields.insert(DATE, memo.date(env.date.get()));
        }
        if let Some(length) = length.filter(|_| !no_body_allowed(response.status())) {
            fields.insert(CONTENT_LENGTH, memo.length(length));
        }
    });
    Ok(head)
}

/// A field value as `http` holds it: a `'static` text is used in place (no
/// copy, the common case: `with_header("Content-Type", "text/plain")`).
fn header_value(value: &HeaderText) -> Option<HeaderValue> {
    match value {
        // `from_static` accepts exactly these bytes (and panics on others).
        Cow::Borrowed(text)
            if text
                .bytes()
                .all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) =>
        {
            Some(HeaderValue::from_static(text))
        }
        text => HeaderValue::from_str(text).ok(),
    }
}

thread_local! {
    /// This thread's last `date` and `content-length` values: a response
    /// usually repeats the one before (the second has not turned, the body
    /// is the same size), and a clone of a `HeaderValue` is a reference
    /// count, where a new one is an allocation. Keyed by value, so any
    /// runtime on the thread may share it.
    static MEMO: ValueMemo = ValueMemo::default();
}

#[derive(Default)]
struct ValueMemo {
    date: RefCell<Option<([u8; DATE_LEN], HeaderValue)>>,
    length: RefCell<Option<(usize, HeaderValue)>>,
}

impl ValueMemo {
    fn date(&self, now: [u8; DATE_LEN]) -> HeaderValue {
        let mut memo = self.date.borrow_mut();
        match &*memo {
            Some((text, value)) if *text == now => value.clone(),
            _ => {
                let value = HeaderValue::from_bytes(&now).unwrap_or(HeaderValue::from_static(""));
                *memo = Some((now, value.clone()));
                value
            }
        }
    }

    fn length(&self, length: usize) -> HeaderValue {
        let mut memo = self.length.borrow_mut();
        match &*memo {
            Some((known, value)) if *known == length => value.clone(),
            _ => {
                let value = HeaderValue::from(length);
                *memo = Some((length, value.clone()));
                value
            }
        }
    }
}

fn is_connection_specific(name: &str) -> bool {
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "transfer-encoding",
        "upgrade",
    ]
    .iter()
    .any(|forbidden| name.eq_ignore_ascii_case(forbidden))
}

fn no_body_allowed(status: StatusCode) -> bool {
    status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
}

/// A body held in memory: small ones in one go, large ones as the window opens.
async fn send_bytes(
    stream: &mut SendStream<Bytes>,
    bytes: Bytes,
    timeout: Duration,
) -> Result<(), Sent> {
    if bytes.len() <= SEND_WHOLE {
        return stream.send_data(bytes, true).map_err(|_| Sent::Cut);
    }
    send_within_window(stream, bytes, timeout).await?;
    stream.send_data(Bytes::new(), true).map_err(|_| Sent::Cut)
}

/// A streamed body: each chunk as the window opens (the stream is polled
/// for its next chunk only once the last is on its way: a slow reader slows
/// the producer), then the trailers, if it has any.
async fn send_stream(
    stream: &mut SendStream<Bytes>,
    mut chunks: BodyStream,
    timeout: Duration,
) -> Result<(), Sent> {
    loop {
        let next = poll_fn(|cx| {
            // A reset while the app produces the next chunk ends the wait.
            if stream.poll_reset(cx).is_ready() {
                return std::task::Poll::Ready(None);
            }
            chunks.poll_next(cx).map(Some)
        })
        .await;
        match next {
            None => return Err(Sent::Cut),
            Some(Some(Ok(chunk))) => send_within_window(stream, chunk, timeout).await?,
            Some(Some(Err(error))) => {
                log::warn!("response body stream failed: {error}; resetting the stream");
                stream.send_reset(h2::Reason::INTERNAL_ERROR);
                return Err(Sent::Cut);
            }
            Some(None) => break,
        }
    }
    match chunks.take_trailers() {
        Some(trailers) => stream.send_trailers(trailers),
        None => stream.send_data(Bytes::new(), true),
    }
    .map_err(|_| Sent::Cut)
}

/// Send `bytes` no faster than the client's window opens; `Stalled` if it
/// stays shut for `timeout`.
async fn send_within_window(
    stream: &mut SendStream<Bytes>,
    mut bytes: Bytes,
    timeout: Duration,
) -> Result<(), Sent> {
    while !bytes.is_empty() {
        stream.reserve_capacity(bytes.len());
        let capacity = tokio::time::timeout(timeout, poll_fn(|cx| stream.poll_capacity(cx))).await;
        match capacity {
            Err(_) => return Err(Sent::Stalled),
            Ok(Some(Ok(0))) => continue,
            Ok(Some(Ok(room))) => {
                let piece = bytes.split_to(room.min(bytes.len()));
                stream.send_data(piece, false).map_err(|_| Sent::Cut)?;
            }
            Ok(Some(Err(_)) | None) => return Err(Sent::Cut),
        }
    }
    Ok(())
}
