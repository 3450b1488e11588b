//! What the tower adapter does for gRPC calls (a `POST` whose content type
//! is `application/grpc`, `application/grpc+proto`, ...), which tonic's
//! generated servers leave to `tonic::transport::Server` and so would not
//! get on shardd:
//! - the client's deadline (`grpc-timeout`) is honoured: when it passes,
//!   the service's future, or its response body if the answer has begun
//!   (a server-streaming handler), is dropped, which cancels the handler,
//!   and the call ends with status `DEADLINE_EXCEEDED` (4);
//! - a call over HTTP/1.x is refused with `505 HTTP Version Not
//!   Supported`: gRPC needs HTTP/2's trailers, which HTTP/1.1 responses
//!   cannot carry here. gRPC-Web (`application/grpc-web...`), made for
//!   HTTP/1.1, is left alone.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderMap, HeaderValue, StatusCode};
use http_body::{Frame, SizeHint};
use tokio::time::Sleep;

use crate::request::Request;
use crate::response::Response;

/// What a request asks of the adapter as a gRPC call.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum GrpcCall {
    /// Not a gRPC call (or gRPC-Web): served as any request.
    No,
    /// A gRPC call over HTTP/1.x: refused.
    OverHttp1,
    /// A gRPC call over HTTP/2, with the client's deadline if it sent one.
    Http2 { timeout: Option<Duration> },
}

/// Whether `request` is a gRPC call, and its deadline.
pub(crate) fn inspect(request: &Request<'_>) -> GrpcCall {
    if request.method_str() != "POST" {
        return GrpcCall::No;
    }
    classify(
        request.version(),
        request.header("content-type"),
        request.header("grpc-timeout"),
    )
}

/// [`inspect`] from the version and the two fields that matter.
fn classify(
    version: http::Version,
    content_type: Option<&[u8]>,
    timeout: Option<&[u8]>,
) -> GrpcCall {
    let grpc = content_type.is_some_and(|value| {
        let value = value.to_ascii_lowercase();
        value.starts_with(b"application/grpc") && !value.starts_with(b"application/grpc-web")
    });
    if !grpc {
        return GrpcCall::No;
    }
    if version < http::Version::HTTP_2 {
        return GrpcCall::OverHttp1;
    }
    GrpcCall::Http2 {
        timeout: timeout.and_then(parse_timeout),
    }
}

/// A `grpc-timeout` value: at most 8 digits and a unit (`H`, `M`, `S`,
/// `m`, `u`, `n`); anything else is no deadline, as gRPC's servers treat it.
fn parse_timeout(value: &[u8]) -> Option<Duration> {
    let (&unit, digits) = value.split_last()?;
    if digits.is_empty() || digits.len() > 8 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let amount: u64 = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some(match unit {
        b'H' => Duration::from_secs(amount * 3600),
        b'M' => Duration::from_secs(amount * 60),
        b'S' => Duration::from_secs(amount),
        b'm' => Duration::from_millis(amount),
        b'u' => Duration::from_micros(amount),
        b'n' => Duration::from_nanos(amount),
        _ => return None,
    })
}

/// The answer to a gRPC call over HTTP/1.x.
pub(crate) fn over_http1() -> Response {
    Response::new(StatusCode::HTTP_VERSION_NOT_SUPPORTED)
        .with_header("Content-Type", "text/plain")
        .with_body("gRPC needs HTTP/2 (cleartext with prior knowledge, or TLS with ALPN h2)\n")
}

/// `DEADLINE_EXCEEDED` as gRPC's status fields.
fn deadline_fields() -> HeaderMap {
    let mut fields = HeaderMap::with_capacity(2);
    fields.insert("grpc-status", HeaderValue::from_static("4"));
    fields.insert("grpc-message", HeaderValue::from_static("Deadline expired"));
    fields
}

/// The call's deadline passed before the service answered: a
/// "trailers-only" response, the status in the head and no body.
pub(crate) fn deadline_exceeded() -> Response {
    Response::new(StatusCode::OK)
        .with_header("Content-Type", "application/grpc")
        .with_header("grpc-status", "4")
        .with_header("grpc-message", "Deadline expired")
}

/// The timer of a call's deadline.
pub(crate) fn deadline(timeout: Duration) -> Pin<Box<Sleep>> {
    Box::pin(tokio::time::sleep(timeout))
}

/// A service's response body, cut at the call's deadline: the body is
/// dropped (cancelling a streaming handler) and `DEADLINE_EXCEEDED`
/// trailers end the response.
pub(crate) struct DeadlineBody<B> {
    /// `None` once it has ended, or been cut.
    body: Option<Pin<Box<B>>>,
    deadline: Pin<Box<Sleep>>,
}

impl<B> DeadlineBody<B> {
    pub(crate) fn new(body: B, deadline: Pin<Box<Sleep>>) -> Self {
        DeadlineBody {
            body: Some(Box::pin(body)),
            deadline,
        }
    }
}

impl<B: http_body::Body> http_body::Body for DeadlineBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        let this = self.get_mut();
        let Some(body) = this.body.as_mut() else {
            return Poll::Ready(None);
        };
        if this.deadline.as_mut().poll(cx).is_ready() {
            this.body = None;
            return Poll::Ready(Some(Ok(Frame::trailers(deadline_fields()))));
        }
        let polled = body.as_mut().poll_frame(cx);
        let ended = match &polled {
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => true,
            Poll::Ready(Some(Ok(frame))) => frame.is_trailers(),
            Poll::Pending => false,
        };
        if ended {
            this.body = None;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(|body| body.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        // Not the body's exact size: the deadline may add trailers.
        SizeHint::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_parse_as_grpc_defines_them() {
        assert_eq!(parse_timeout(b"1H"), Some(Duration::from_secs(3600)));
        assert_eq!(parse_timeout(b"2M"), Some(Duration::from_secs(120)));
        assert_eq!(parse_timeout(b"3S"), Some(Duration::from_secs(3)));
        assert_eq!(parse_timeout(b"250m"), Some(Duration::from_millis(250)));
        assert_eq!(
            parse_timeout(b"99999999u"),
            Some(Duration::from_micros(99_999_999))
        );
        assert_eq!(parse_timeout(b"5n"), Some(Duration::from_nanos(5)));
        for bad in [
            &b""[..],
            b"S",
            b"5",
            b"5s",
            b"-5S",
            b"123456789S",
            b"1.5S",
            b" 5S",
        ] {
            assert_eq!(
                parse_timeout(bad),
                None,
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn grpc_calls_are_told_from_other_requests() {
        use http::Version;
        let grpc = Some(&b"application/grpc"[..]);
        assert_eq!(
            classify(Version::HTTP_2, grpc, Some(b"100m")),
            GrpcCall::Http2 {
                timeout: Some(Duration::from_millis(100))
            }
        );
        assert_eq!(
            classify(Version::HTTP_2, Some(b"Application/gRPC+proto"), None),
            GrpcCall::Http2 { timeout: None }
        );
        assert_eq!(classify(Version::HTTP_11, grpc, None), GrpcCall::OverHttp1);
        assert_eq!(classify(Version::HTTP_10, grpc, None), GrpcCall::OverHttp1);
        let web = Some(&b"application/grpc-web+proto"[..]);
        assert_eq!(classify(Version::HTTP_11, web, None), GrpcCall::No);
        let json = Some(&b"application/json"[..]);
        assert_eq!(classify(Version::HTTP_2, json, None), GrpcCall::No);
        assert_eq!(classify(Version::HTTP_2, None, None), GrpcCall::No);
    }
}
