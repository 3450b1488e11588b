//! Files compressed on the fly: a [`Body::File`] of a compressible type
//! with no precompressed sibling (the file service chose the sibling
//! first, and a sibling's `Content-Encoding` keeps it from being
//! compressed again) is compressed as it is read.
//!
//! - A file of at most [`CHUNK`] bytes is read whole and compressed with
//!   the shard's reused encoder (no encoder set-up per response), and
//!   keeps a `Content-Length` (of the compressed bytes).
//! - A larger one is read [`CHUNK`] bytes at a time through a streaming
//!   encoder: memory stays bounded whatever the file's size, and the
//!   body goes out chunked (HTTP/1.1) or in DATA frames (HTTP/2), without
//!   a `Content-Length`.
//! - A request with a `Range` field gets the file as it is (with
//!   `sendfile` over plain TCP): ranges are of the identity bytes, and a
//!   client resuming a download needs them.
//! - The compressed file's `ETag` is weak and names its coding: the
//!   file's `"inode-len-mtime"` becomes `W/"inode-len-mtime-gzip"`. Weak,
//!   because the bytes depend on the encoder's level and version; with
//!   the coding, because a weak comparison (`If-None-Match`) must not
//!   take a cached gzip body for the identity one or a brotli one. An
//!   `If-None-Match` naming that tag gets `304` here, since the file
//!   service only knows the identity tag.
//! - `Accept-Ranges` is dropped from a compressed response (as nginx's
//!   gzip does): its bytes are not the ones a range would count.

use std::os::unix::fs::FileExt;
use std::sync::Arc;

use http::StatusCode;

use super::encode::{Encoders, StreamEncoder};
use super::negotiate::Encoding;
use super::settings::CompressionSettings;
use super::stream::CompressedStream;
use crate::body::{Body, BodyStream};
use crate::file_body::{FileBody, CHUNK};
use crate::files::matches_any;
use crate::request::Request;
use crate::response::Response;
use crate::stats::ShardStats;

/// What compressing a file response needs to know of its request.
#[derive(Default)]
pub(crate) struct FileRequest {
    /// The request asked for a range: files go out as they are.
    ranged: bool,
    /// `If-None-Match`, copied only when the request has one.
    if_none_match: Option<Box<[u8]>>,
}

impl FileRequest {
    pub(crate) fn of(request: &Request<'_>) -> Self {
        FileRequest {
            ranged: request.header("range").is_some(),
            if_none_match: request.header("if-none-match").map(Box::from),
        }
    }

    /// Whether a file body of `len` bytes is worth compressing for this request.
    pub(crate) fn worth_compressing(&self, len: u64, settings: &CompressionSettings) -> bool {
        !self.ranged && len > 0 && len >= settings.min_size as u64
    }
}

/// `file` compressed with `encoding`: whole when small, else streamed;
/// `None` if it cannot be (a read or encoder failure, logged), and the
/// file is then sent as it is.
pub(crate) fn compress_file(
    file: &FileBody,
    encoding: Encoding,
    settings: &CompressionSettings,
    encoders: &mut Encoders,
    stats: Option<&Arc<ShardStats>>,
) -> Option<Body> {
    if file.len() <= CHUNK as u64 {
        let mut bytes = vec![0; file.len() as usize];
        if let Err(error) = file.file().read_exact_at(&mut bytes, file.offset()) {
            log::warn!("cannot read a file to compress it: {error}");
            return None;
        }
        let encoded = encoders.encode(encoding, &bytes)?;
        if let Some(stats) = stats {
            stats.compression.took(bytes.len());
            stats.compression.gave(encoded.len());
        }
        return Some(Body::Owned(encoded));
    }
    match StreamEncoder::new(encoding, settings) {
        Ok(encoder) => Some(Body::Stream(BodyStream::from_source(
            CompressedStream::new(file.clone().into_stream(), encoder, stats.cloned()),
        ))),
        Err(error) => {
            log::warn!("cannot start a {} encoder: {error}", encoding.token());
            None
        }
    }
}

/// The header fields of a file sent compressed: the coding, its own weak
/// `ETag`, and no `Content-Length` or `Accept-Ranges` of the file as it is.
pub(crate) fn mark_file_encoded(response: &mut Response, encoding: Encoding) {
    let headers = response.headers_mut();
    headers.retain(|(name, _)| {
        !name.eq_ignore_ascii_case("content-length") && !name.eq_ignore_ascii_case("accept-ranges")
    });
    for (name, value) in headers.iter_mut() {
        if name.eq_ignore_ascii_case("etag") {
            *value = encoded_etag(value, encoding).into();
        }
    }
    headers.push(("Content-Encoding".into(), encoding.token().into()));
}

/// `"tag"` (or `W/"tag"`) sent with `encoding`: `W/"tag-gzip"`.
fn encoded_etag(etag: &str, encoding: Encoding) -> String {
    let opaque = etag.strip_prefix("W/").unwrap_or(etag);
    let inner = opaque.trim_start_matches('"').trim_end_matches('"');
    format!("W/\"{inner}-{}\"", encoding.token())
}

/// `304 Not Modified` when the request's `If-None-Match` names the `ETag`
/// the file would have compressed with `encoding` (a weak comparison,
/// RFC 9110 §13.1.2), with the validators and caching fields of the `200`
/// it replaces: checked before compressing, so a revalidation costs no CPU.
pub(crate) fn not_modified(
    response: &Response,
    encoding: Encoding,
    request: &FileRequest,
) -> Option<Response> {
    let tags = request.if_none_match.as_deref()?;
    let etag = encoded_etag(response.header("etag")?, encoding);
    if !weakly_matches(tags, &etag) {
        return None;
    }
    let mut answer = Response::new(StatusCode::NOT_MODIFIED);
    for (name, value) in response.header_fields() {
        if name.eq_ignore_ascii_case("etag") {
            answer.push_header(name.clone(), etag.clone().into());
            continue;
        }
        let kept = ["last-modified", "cache-control", "vary", "expires"]
            .iter()
            .any(|kept| name.eq_ignore_ascii_case(kept));
        if kept {
            answer.push_header(name.clone(), value.clone());
        }
    }
    Some(answer)
}

/// Whether the entity-tag list `tags` names `etag`, weak or not (the
/// comparison `If-None-Match` uses): the file service's matcher.
fn weakly_matches(tags: &[u8], etag: &str) -> bool {
    matches_any(tags, etag.strip_prefix("W/").unwrap_or(etag), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_compressed_file_tag_is_weak_and_names_its_coding() {
        assert_eq!(
            encoded_etag("\"1-2-3\"", Encoding::Gzip),
            "W/\"1-2-3-gzip\""
        );
        assert_eq!(encoded_etag("W/\"a\"", Encoding::Brotli), "W/\"a-br\"");
    }

    #[test]
    fn if_none_match_compares_weakly() {
        assert!(weakly_matches(b"\"x\", W/\"a-gzip\"", "W/\"a-gzip\""));
        assert!(weakly_matches(b"\"a-gzip\"", "W/\"a-gzip\""));
        assert!(!weakly_matches(b"W/\"a\"", "W/\"a-gzip\""));
    }
}
