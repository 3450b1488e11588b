//! The application API: an async handler over a borrowed [`Request`] that
//! returns an owned [`Response`].
//!
//! A server builds one app per shard through a factory
//! (`Fn(&ShardInfo) -> impl App`), so an app may hold `!Send` shard-local
//! state. Requests borrow the connection's read buffer: nothing is copied or
//! allocated to hand one to the app.

use std::future::Future;

use crate::compression::{Compressed, CompressionSettings, RequestDecompression};
use crate::request::Request;
use crate::response::Response;

/// An HTTP application served on every shard.
pub trait App: 'static {
    /// Answer one request. The future runs on the shard's thread and need not be `Send`.
    fn call(&self, request: &Request<'_>) -> impl Future<Output = Response>;

    /// Whether this request's body should reach the app as it arrives
    /// ([`Request::body_stream`]) instead of buffered whole first. Asked
    /// once the head of a request with a body has arrived (`head.body()` is
    /// empty); then `call` runs while the body is still coming, and
    /// `max_body_bytes` does not apply. By default every body is buffered.
    fn streams_body(&self, head: &Request<'_>) -> bool {
        let _ = head;
        false
    }

    /// This app with its responses compressed as each client accepts
    /// (gzip, brotli, zstd; see [`compression`](crate::compression)).
    fn compressed(self, settings: CompressionSettings) -> Compressed<Self>
    where
        Self: Sized,
    {
        Compressed::new(self, settings)
    }

    /// This app with `Content-Encoding: gzip` request bodies decoded
    /// before it sees them, up to `max_decoded_bytes` (more: 413); see
    /// [`RequestDecompression`].
    fn decompressing_requests(self, max_decoded_bytes: usize) -> RequestDecompression<Self>
    where
        Self: Sized,
    {
        RequestDecompression::new(self, max_decoded_bytes)
    }
}

/// Wrap a synchronous function as an [`App`].
///
/// ```
/// use shardd_shards::{app_fn, Response};
/// let app = app_fn(|req| match req.path() {
///     "/" => Response::text("hi"),
///     _ => Response::not_found(),
/// });
/// # let _ = app;
/// ```
pub fn app_fn<F>(handler: F) -> FnApp<F>
where
    F: Fn(&Request<'_>) -> Response + 'static,
{
    FnApp(handler)
}

/// An [`App`] made from a synchronous function; see [`app_fn`].
pub struct FnApp<F>(F);

impl<F> App for FnApp<F>
where
    F: Fn(&Request<'_>) -> Response + 'static,
{
    fn call(&self, request: &Request<'_>) -> impl Future<Output = Response> {
        std::future::ready((self.0)(request))
    }
}
