//! Response compression negotiated from `Accept-Encoding`, and request
//! bodies sent with `Content-Encoding: gzip` decoded for apps that ask.
//!
//! Both are [`App`] decorators, so they wrap a native app, a `Router`
//! (feature `router`) or a `TowerApp` (feature `tower`, an axum app)
//! alike, over HTTP/1.1 and HTTP/2:
//!
//! ```
//! use shardd_shards::compression::CompressionSettings;
//! use shardd_shards::{app_fn, App, Response};
//!
//! let app = app_fn(|_| Response::json(r#"{"message":"Hello, World!"}"#))
//!     .compressed(CompressionSettings::on())
//!     .decompressing_requests(8 * 1024 * 1024);
//! # let _ = app;
//! ```
//!
//! # Which responses are compressed
//!
//! A response is compressed when the client accepts `zstd`, `br` or
//! `gzip` (the highest q-value wins; ties go to zstd, then br, then gzip),
//! its `Content-Type` compresses (`text/*`, JSON, JavaScript, XML, SVG,
//! WebAssembly, uncompressed fonts; not images, video, archives or gRPC),
//! and its body has at least [`min_size`](CompressionSettings::min_size)
//! bytes or is streamed. It then gets `Content-Encoding`, a weak `ETag`
//! (the bytes differ from the uncompressed ones), and, like every response
//! whose type compresses, `Vary: Accept-Encoding`.
//!
//! Never compressed: a response that already has a `Content-Encoding`
//! (tower-http's `CompressionLayer` in an axum app, precompressed files),
//! a `206` or anything with `Content-Range`, `1xx`, `204`, `304`,
//! `Cache-Control: no-transform`. A `HEAD` request gets the same header fields as a `GET`
//! would, so its body is compressed too (and then dropped).
//!
//! Files ([`Body::File`], from [`files`](crate::files)) are compressed
//! as they are read (in chunks: memory stays bounded), unless the
//! request asks for a range (ranges are of the file as it is). A
//! precompressed sibling the client accepts is sent instead, at no CPU
//! cost. A compressed file's `ETag` is weak and names the coding,
//! `W/"inode-len-mtime-gzip"`, and an `If-None-Match` naming it gets
//! `304`.
//!
//! A client that refuses the body as it is (`identity;q=0`, or `*;q=0`)
//! and accepts none of the three gets `406 Not Acceptable`.
//!
//! Streamed bodies are compressed as they stream: whatever the producer
//! has sent is flushed to the client as soon as it pauses, so a
//! server-sent-events stream arrives event by event. Each open compressed
//! stream holds its encoder's state, ~200 KiB (brotli) to ~320 KiB (gzip,
//! zstd): 1000 open event streams cost ~300 MiB.

mod encode;
mod file;
mod negotiate;
mod request;
mod settings;
mod stream;

use std::cell::RefCell;
use std::future::Future;
use std::sync::Arc;

use http::StatusCode;

pub use negotiate::{Choice, Encoding};
pub use request::RequestDecompression;
pub use settings::CompressionSettings;

use crate::app::App;
use crate::body::{Body, BodyStream};
use crate::content_stats::current_shard_stats;
use crate::request::Request;
use crate::response::Response;
use crate::stats::ShardStats;
use encode::{Encoders, StreamEncoder};
use file::FileRequest;
pub(crate) use negotiate::Accepted;
use stream::CompressedStream;

/// An app whose responses are compressed as the client accepts
/// (see the [module](self) for which). Build it with [`App::compressed`].
pub struct Compressed<A> {
    app: A,
    settings: CompressionSettings,
    /// The shard's encoders for whole bodies, reused from one response to
    /// the next (an app is built per shard, so this is never shared).
    encoders: RefCell<Encoders>,
    /// The shard's stats, where compressed responses and their bytes are
    /// counted (`None` when built outside a shard).
    stats: Option<Arc<ShardStats>>,
}

impl<A: App> Compressed<A> {
    /// `app` with its responses compressed per `settings` (when
    /// `settings.enabled` is false, responses pass through unchanged).
    pub fn new(app: A, settings: CompressionSettings) -> Self {
        Compressed {
            app,
            encoders: RefCell::new(Encoders::new(settings.clone())),
            settings,
            stats: current_shard_stats(),
        }
    }

    /// The app inside.
    pub fn inner(&self) -> &A {
        &self.app
    }

    fn compress(
        &self,
        mut response: Response,
        accepted: Accepted,
        request: FileRequest,
    ) -> Response {
        if !self.settings.enabled || !may_transform(&response) {
            return response;
        }
        let compressible = response.header("content-type").is_some_and(compresses);
        let body = response.take_body();
        let worth_it = match &body {
            Body::Stream(_) => compressible,
            Body::File(file) => {
                compressible && request.worth_compressing(file.len(), &self.settings)
            }
            other => match other.as_bytes() {
                Some(bytes) if !bytes.is_empty() => {
                    compressible && bytes.len() >= self.settings.min_size
                }
                // Empty.
                _ => {
                    response.set_body(body);
                    return response;
                }
            },
        };
        let choice = if worth_it {
            accepted.choose()
        } else {
            accepted.choose_uncompressed()
        };
        if compressible || choice != Choice::Identity {
            add_vary(&mut response);
        }
        let encoding = match choice {
            Choice::Identity => {
                response.set_body(body);
                return response;
            }
            Choice::NotAcceptable => return not_acceptable(),
            Choice::Encode(encoding) => encoding,
        };
        let encoded = match body {
            Body::File(file) => {
                if let Some(not_modified) = file::not_modified(&response, encoding, &request) {
                    return not_modified;
                }
                let encoded = file::compress_file(
                    &file,
                    encoding,
                    &self.settings,
                    &mut self.encoders.borrow_mut(),
                    self.stats.as_ref(),
                );
                let Some(encoded) = encoded else {
                    response.set_body(Body::File(file));
                    return response;
                };
                file::mark_file_encoded(&mut response, encoding);
                self.count(encoding);
                response.set_body(encoded);
                return response;
            }
            Body::Stream(stream) => match StreamEncoder::new(encoding, &self.settings) {
                Ok(encoder) => Body::Stream(BodyStream::from_source(CompressedStream::new(
                    stream,
                    encoder,
                    self.stats.clone(),
                ))),
                Err(error) => {
                    log::warn!("cannot start a {} encoder: {error}", encoding.token());
                    response.set_body(Body::Stream(stream));
                    return response;
                }
            },
            bytes => {
                let input = bytes.as_bytes().unwrap_or_default();
                let encoded = self.encoders.borrow_mut().encode(encoding, input);
                match encoded {
                    Some(encoded) => {
                        if let Some(stats) = &self.stats {
                            stats.compression.took(input.len());
                            stats.compression.gave(encoded.len());
                        }
                        Body::Owned(encoded)
                    }
                    None => {
                        log::warn!("the {} encoder failed", encoding.token());
                        response.set_body(bytes);
                        return response;
                    }
                }
            }
        };
        mark_encoded(&mut response, encoding);
        self.count(encoding);
        response.set_body(encoded);
        response
    }

    /// Count a response sent compressed with `encoding`.
    fn count(&self, encoding: Encoding) {
        if let Some(stats) = &self.stats {
            stats.compression.compressed(encoding.token());
        }
    }
}

impl<A: App> App for Compressed<A> {
    fn call(&self, request: &Request<'_>) -> impl Future<Output = Response> {
        let accepted = Accepted::parse(request.header("accept-encoding"));
        let file_request = FileRequest::of(request);
        let response = self.app.call(request);
        async move { self.compress(response.await, accepted, file_request) }
    }

    fn streams_body(&self, head: &Request<'_>) -> bool {
        self.app.streams_body(head)
    }
}

/// Whether compressing would change what the response means: a range
/// is a range of the bytes as they are, an encoded body is encoded
/// already, and some statuses have no body.
fn may_transform(response: &Response) -> bool {
    let status = response.status();
    if status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
        || status == StatusCode::PARTIAL_CONTENT
        || response.upgrades()
    {
        return false;
    }
    !response.headers().any(|(name, value)| {
        name.eq_ignore_ascii_case("content-encoding")
            || name.eq_ignore_ascii_case("content-range")
            || (name.eq_ignore_ascii_case("cache-control")
                && value
                    .split(',')
                    .any(|directive| directive.trim().eq_ignore_ascii_case("no-transform")))
    })
}

/// Whether a body of this `Content-Type` compresses: text, and the
/// structured formats made of text; not formats compressed already
/// (images but SVG, audio, video, archives, woff fonts) or gRPC (which has
/// its own `grpc-encoding`).
fn compresses(content_type: &str) -> bool {
    let media_type = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let Some((kind, subtype)) = media_type.split_once('/') else {
        return false;
    };
    match kind {
        "text" => true,
        "application" => {
            matches!(
                subtype,
                "json"
                    | "javascript"
                    | "ecmascript"
                    | "xml"
                    | "wasm"
                    | "x-ndjson"
                    | "graphql"
                    | "x-javascript"
                    | "xhtml+xml"
                    | "rss+xml"
                    | "atom+xml"
                    | "vnd.ms-fontobject"
                    | "x-font-ttf"
                    | "yaml"
                    | "toml"
                    | "csv"
            ) || subtype.ends_with("+json")
                || subtype.ends_with("+xml")
        }
        "image" => matches!(subtype, "svg+xml" | "x-icon" | "vnd.microsoft.icon" | "bmp"),
        "font" => matches!(subtype, "ttf" | "otf" | "collection"),
        _ => false,
    }
}

/// `Vary: Accept-Encoding`, unless the response varies on it already
/// (or on everything).
fn add_vary(response: &mut Response) {
    let varies = response.headers().any(|(name, value)| {
        name.eq_ignore_ascii_case("vary")
            && value.split(',').any(|field| {
                let field = field.trim();
                field == "*" || field.eq_ignore_ascii_case("accept-encoding")
            })
    });
    if !varies {
        response.push_header("Vary".into(), "Accept-Encoding".into());
    }
}

/// `Content-Encoding`, a weak `ETag` (RFC 9110 §8.8.3: a strong one names
/// exact bytes), and no `Content-Length` the app stated for the body as
/// it was.
fn mark_encoded(response: &mut Response, encoding: Encoding) {
    let headers = response.headers_mut();
    headers.retain(|(name, _)| !name.eq_ignore_ascii_case("content-length"));
    for (name, value) in headers.iter_mut() {
        if name.eq_ignore_ascii_case("etag") && value.starts_with('"') {
            *value = format!("W/{value}").into();
        }
    }
    headers.push(("Content-Encoding".into(), encoding.token().into()));
}

/// `406`: the client refuses the body as it is and every coding on offer
/// (also what static files answer, so both say the same).
pub(crate) fn not_acceptable() -> Response {
    Response::new(StatusCode::NOT_ACCEPTABLE)
        .with_header("Content-Type", "text/plain")
        .with_header("Vary", "Accept-Encoding")
        .with_body("no acceptable content coding: send identity, gzip, br or zstd\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_structured_text_compress_and_compressed_formats_do_not() {
        for yes in [
            "text/html; charset=utf-8",
            "text/event-stream",
            "application/json",
            "application/problem+json",
            "Application/JavaScript",
            "image/svg+xml",
            "application/atom+xml",
        ] {
            assert!(compresses(yes), "{yes}");
        }
        for no in [
            "image/png",
            "application/grpc",
            "application/octet-stream",
            "video/mp4",
            "font/woff2",
            "application/zip",
            "nonsense",
        ] {
            assert!(!compresses(no), "{no}");
        }
    }
}
