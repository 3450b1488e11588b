//! An HTTP/2 request head as the app sees it: the same [`Request`] an
//! HTTP/1.1 request is, its fields laid out once in one buffer.

use http::request::Parts;
use http::StatusCode;

use crate::http::{path_len, HeaderSpan, RequestParts, Version};
use crate::listener::PeerAddr;
use crate::request::Request;
use crate::request_body::Pipe;
use std::sync::Arc;

/// A stream's request head, owned: the method and target, and every field
/// name and value copied into one buffer that `spans` point into (one
/// allocation, the layout the HTTP/1 reader gives the app).
pub(super) struct StreamHead {
    method: http::Method,
    target: String,
    fields: Vec<u8>,
    spans: Vec<HeaderSpan>,
}

impl StreamHead {
    /// The head of `parts`; `:authority` becomes a `host` field (last) when the
    /// client sent none (apps and the router look for `Host`). The `h2`
    /// crate has already refused malformed heads (pseudo-fields out of
    /// place, connection-specific fields).
    pub(super) fn new(parts: &Parts) -> Result<Self, StatusCode> {
        let target = match parts.uri.path_and_query() {
            Some(path) => path.as_str().to_owned(),
            // CONNECT names an authority, not a path.
            None => parts
                .uri
                .authority()
                .map(|a| a.as_str().to_owned())
                .unwrap_or_default(),
        };
        let size: usize = parts
            .headers
            .iter()
            .map(|(name, value)| name.as_str().len() + value.len())
            .sum();
        let mut head = StreamHead {
            method: parts.method.clone(),
            target,
            fields: Vec::with_capacity(size + 64),
            spans: Vec::with_capacity(parts.headers.len() + 1),
        };
        let mut has_host = false;
        for (name, value) in &parts.headers {
            has_host |= name == http::header::HOST;
            head.push(name.as_str(), value.as_bytes())?;
        }
        if let (false, Some(authority)) = (has_host, parts.uri.authority()) {
            head.push("host", authority.as_str().as_bytes())?;
        }
        Ok(head)
    }

    fn push(&mut self, name: &str, value: &[u8]) -> Result<(), StatusCode> {
        let at = |offset: usize, len: usize| -> Result<(u32, u32), StatusCode> {
            let too_large = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
            Ok((
                u32::try_from(offset).map_err(|_| too_large)?,
                u32::try_from(len).map_err(|_| too_large)?,
            ))
        };
        let name_at = at(self.fields.len(), name.len())?;
        self.fields.extend_from_slice(name.as_bytes());
        let value_at = at(self.fields.len(), value.len())?;
        self.fields.extend_from_slice(value);
        self.spans.push(HeaderSpan {
            name: name_at,
            value: value_at,
        });
        Ok(())
    }

    /// The request the app is called with: this head, a buffered `body`,
    /// or a streamed one (`upload`).
    pub(super) fn request<'a>(
        &'a self,
        body: &'a [u8],
        peer: &'a PeerAddr,
        upload: Option<&'a Arc<Pipe>>,
    ) -> Request<'a> {
        let parts = RequestParts {
            method: self.method.as_str(),
            target: &self.target,
            path_len: path_len(self.target.as_bytes()),
            version: Version::Http2,
            keep_alive: true,
            head_bytes: &self.fields,
            spans: &self.spans,
            body,
        };
        match upload {
            Some(pipe) => Request::with_upload(parts, peer, pipe),
            None => Request::from_parts(parts, peer),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_app_sees_method_path_query_fields_and_authority_as_host() {
        let (parts, ()) = http::Request::builder()
            .method("POST")
            .uri("https://example.com:8443/items/7?full=1")
            .header("content-type", "application/json")
            .header("x-trace", "abc")
            .body(())
            .unwrap()
            .into_parts();
        let head = StreamHead::new(&parts).unwrap();
        let peer = PeerAddr::Unknown;
        let request = head.request(b"{}", &peer, None);
        assert_eq!(request.method(), http::Method::POST);
        assert_eq!(request.path(), "/items/7");
        assert_eq!(request.query(), Some("full=1"));
        assert_eq!(request.version(), http::Version::HTTP_2);
        assert_eq!(request.header("Host"), Some(&b"example.com:8443"[..]));
        assert_eq!(request.header("X-Trace"), Some(&b"abc"[..]));
        assert_eq!(request.body(), b"{}");
        let names: Vec<_> = request.headers().map(|(name, _)| name).collect();
        assert_eq!(names, ["content-type", "x-trace", "host"]);
    }
}
