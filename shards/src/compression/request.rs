//! Request bodies sent with `Content-Encoding: gzip`, decoded before the
//! app sees them, within a limit on the decoded size.

use std::future::Future;
use std::io::Read;

use http::StatusCode;

use crate::app::App;
use crate::http::HeaderSpan;
use crate::request::Request;
use crate::response::Response;

/// An app that gets gzip-encoded request bodies decoded: its
/// [`Request::body`] is the decoded body, and the `Content-Encoding` and
/// `Content-Length` fields that described the encoded one are gone. Build
/// it with [`App::decompressing_requests`].
///
/// A body that decodes to more than the limit gets `413 Content Too
/// Large` as soon as the limit is passed (a zip bomb costs the limit, not
/// the memory it expands to); a body that is not valid gzip gets `400`;
/// another coding (`br`, `deflate`...) gets `415` with `Accept-Encoding:
/// gzip` (RFC 9110 §15.5.16). The encoded body counts against
/// `max_body_bytes` as any body does. A body the app reads as a stream
/// ([`App::streams_body`]) reaches it as sent.
pub struct RequestDecompression<A> {
    app: A,
    max_decoded_bytes: usize,
}

impl<A: App> RequestDecompression<A> {
    /// `app`, with gzip request bodies decoded up to `max_decoded_bytes`.
    pub fn new(app: A, max_decoded_bytes: usize) -> Self {
        RequestDecompression {
            app,
            max_decoded_bytes,
        }
    }
}

/// What to do with a request's body.
enum Plan {
    AsSent,
    Gunzip,
    Refuse(Response),
}

fn plan(request: &Request<'_>) -> Plan {
    let Some(coding) = request.header("content-encoding") else {
        return Plan::AsSent;
    };
    let coding = coding.trim_ascii();
    if coding.eq_ignore_ascii_case(b"identity") || request.body().is_empty() {
        Plan::AsSent
    } else if coding.eq_ignore_ascii_case(b"gzip") || coding.eq_ignore_ascii_case(b"x-gzip") {
        Plan::Gunzip
    } else {
        Plan::Refuse(
            refusal(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported Content-Encoding: send gzip\n",
            )
            .with_header("Accept-Encoding", "gzip"),
        )
    }
}

/// Why a body could not be decoded: the status and a short text.
type Refusal = (StatusCode, &'static str);

/// `body` gunzipped (every member, as `gzip -d` does), or why not.
fn gunzip(body: &[u8], max_decoded_bytes: usize) -> Result<Vec<u8>, Refusal> {
    let mut decoded = Vec::with_capacity((body.len() * 4).min(max_decoded_bytes));
    let decoder = flate2::read::MultiGzDecoder::new(body);
    // One byte past the limit is enough to know the body is over it.
    let limit = u64::try_from(max_decoded_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    match decoder.take(limit).read_to_end(&mut decoded) {
        Ok(_) if decoded.len() > max_decoded_bytes => Err((
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large once decoded\n",
        )),
        Ok(_) => Ok(decoded),
        Err(_) => Err((StatusCode::BAD_REQUEST, "request body is not valid gzip\n")),
    }
}

fn refusal(status: StatusCode, text: &'static str) -> Response {
    Response::new(status)
        .with_header("Content-Type", "text/plain")
        .with_body(text)
}

impl<A: App> App for RequestDecompression<A> {
    fn call(&self, request: &Request<'_>) -> impl Future<Output = Response> {
        let plan = if request.body_stream().is_some() {
            Plan::AsSent
        } else {
            plan(request)
        };
        async move {
            match plan {
                Plan::AsSent => self.app.call(request).await,
                Plan::Refuse(response) => response,
                Plan::Gunzip => {
                    let decoded = match gunzip(request.body(), self.max_decoded_bytes) {
                        Ok(decoded) => decoded,
                        Err((status, text)) => return refusal(status, text),
                    };
                    let spans: Vec<HeaderSpan> = request
                        .header_spans()
                        .filter(|(name, _)| {
                            !name.eq_ignore_ascii_case("content-encoding")
                                && !name.eq_ignore_ascii_case("content-length")
                        })
                        .map(|(_, span)| *span)
                        .collect();
                    let decoded_request = request.with_decoded_body(&decoded, &spans);
                    self.app.call(&decoded_request).await
                }
            }
        }
    }

    fn streams_body(&self, head: &Request<'_>) -> bool {
        self.app.streams_body(head)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn a_body_over_the_limit_once_decoded_is_refused_with_413() {
        let bomb = gzip(&vec![0; 10 << 20]);
        assert!(bomb.len() < 20 * 1024, "{} bytes", bomb.len());
        let (status, _) = gunzip(&bomb, 1 << 20).unwrap_err();
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(gunzip(&gzip(b"hello"), 5).unwrap(), b"hello");
        assert_eq!(
            gunzip(b"not gzip", 100).unwrap_err().0,
            StatusCode::BAD_REQUEST
        );
    }
}
