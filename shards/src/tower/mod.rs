//! Serving a tower `Service` — an axum `Router` included — on the shards
//! (feature `tower`).
//!
//! [`TowerApp`] is an [`App`]: for each request it builds an
//! `http::Request<`[`RequestBody`]`>` from the borrowed [`Request`], calls
//! a clone of the service (`poll_ready`, then `call`), and turns the
//! `http::Response<B>` it answers into a [`Response`]. Both conversions are
//! the public ones ([`Request::to_http`], [`Response::from_http`],
//! [`Body::from_http_body`](crate::Body::from_http_body)), with buffers
//! the adapter keeps between requests. Build the
//! service in the app factory, so that each shard has its own
//! (`serve(|shard| serve_tower(make_router(shard)))`): then nothing a
//! request touches is shared with another core, not even a reference count.
//!
//! Per request the adapter allocates only for a custom field name and for
//! response header text that is not one of the common values it knows as
//! static text: the request's bytes are copied into a per-shard arena that
//! is reused, its `HeaderMap` is the last response's, emptied, and a
//! response body is looked at in a box kept from the previous response.
//!
//! The service's futures run on the shard's thread, inside the connection's
//! task: they may be `Send`, nothing requires it. Everything the connection
//! does for a native app it does here too: limits and timeouts apply before
//! the service sees the request (the body arrives whole), a panic while the
//! service runs is a 500 and a close, a drain lets the request finish and
//! answers it with `Connection: close`.
//!
//! What differs from hyper:
//! - The request body is already read: [`RequestBody`] is one frame.
//! - A response body that is complete at once goes out with a
//!   `Content-Length` and no copy; any other is streamed frame by frame with
//!   chunked coding, polled only as fast as the client reads. Trailers are
//!   dropped.
//! - Header text must be UTF-8: a response with a value that is not (the
//!   `http` crate allows obsolete Latin-1 bytes) becomes a 500.
//! - No upgrades through the service (axum's `WebSocketUpgrade` answers
//!   that the connection cannot be upgraded); a native app can take the
//!   connection over with [`Response::on_upgrade`].
//! - A service error (axum's `Router` has none) is a 500 and a close.
//! - The client's address is an extension only if asked for
//!   ([`TowerApp::with_peer_addr`]), as axum's `ConnectInfo` is.

mod request;
mod response;

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::task::Poll;

use bytes::Buf;
use http::StatusCode;
use tower_service::Service;

use crate::app::App;
use crate::body::BoxError;
use crate::request::Request;
use crate::response::Response;

pub use request::RequestBody;

/// An [`App`] that answers every request with a tower service.
///
/// With axum: `serve(|_shard| serve_tower(Router::new().route(...)))`.
/// Any service that is `Clone` will do; here a hand-written one:
///
/// ```
/// use std::convert::Infallible;
/// use std::future::{ready, Ready};
/// use std::task::{Context, Poll};
///
/// use shardd_shards::tower::{serve_tower, RequestBody};
///
/// #[derive(Clone)]
/// struct Hello;
///
/// impl tower_service::Service<http::Request<RequestBody>> for Hello {
///     type Response = http::Response<String>;
///     type Error = Infallible;
///     type Future = Ready<Result<Self::Response, Infallible>>;
///
///     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
///         Poll::Ready(Ok(()))
///     }
///
///     fn call(&mut self, request: http::Request<RequestBody>) -> Self::Future {
///         ready(Ok(http::Response::new(format!("you asked for {}\n", request.uri()))))
///     }
/// }
///
/// let app = serve_tower(Hello); // an `App`, for `Server::serve(|_shard| serve_tower(Hello))`
/// # let _ = app;
/// ```
#[derive(Debug)]
pub struct TowerApp<S> {
    service: S,
    peer_addr: bool,
    /// Where requests are copied (see [`request::Arena`]).
    arena: request::Arena,
    /// A response body's box, reused (see [`response::SpareBody`]).
    spare_body: response::SpareBody,
    /// A response's `HeaderMap`, reused for a request (see [`request::SpareHeaders`]).
    spare_headers: request::SpareHeaders,
}

impl<S: Clone> Clone for TowerApp<S> {
    /// The same service and settings, with buffers of its own.
    fn clone(&self) -> Self {
        TowerApp {
            service: self.service.clone(),
            peer_addr: self.peer_addr,
            arena: request::Arena::default(),
            spare_body: response::SpareBody::default(),
            spare_headers: request::SpareHeaders::default(),
        }
    }
}

/// Serve `service` with a [`TowerApp`]; call it in the app factory, once per shard.
pub fn serve_tower<S>(service: S) -> TowerApp<S> {
    TowerApp::new(service)
}

impl<S> TowerApp<S> {
    /// Serve `service`.
    pub fn new(service: S) -> Self {
        TowerApp {
            service,
            peer_addr: false,
            arena: request::Arena::default(),
            spare_body: response::SpareBody::default(),
            spare_headers: request::SpareHeaders::default(),
        }
    }

    /// Give every request the client's [`PeerAddr`](crate::PeerAddr) as an
    /// extension (in axum: `Extension<shardd::PeerAddr>`). Off by default,
    /// as in `axum::serve` without connect info: it costs a few allocations
    /// per request.
    pub fn with_peer_addr(mut self) -> Self {
        self.peer_addr = true;
        self
    }

    /// The service.
    pub fn service(&self) -> &S {
        &self.service
    }
}

impl<S, B> App for TowerApp<S>
where
    S: Service<http::Request<RequestBody>, Response = http::Response<B>> + Clone + 'static,
    S::Error: Into<BoxError>,
    B: http_body::Body + 'static,
    B::Data: Buf,
    B::Error: Into<BoxError>,
{
    fn call(&self, request: &Request<'_>) -> impl Future<Output = Response> {
        // tower's contract: readiness belongs to one caller, so each request
        // drives a clone of its own (for a `Router`, an `Arc` count on this
        // shard's own Router). Measured against calling the shard's instance
        // directly while it is ready: that costs more (the bigger futures it
        // moves around) than the two uncontended atomic operations it saves.
        let mut service = self.service.clone();
        async move {
            if let Err(error) = poll_fn(|cx| service.poll_ready(cx)).await {
                return service_failed(error.into());
            }
            let converted =
                match request::to_http(request, self.peer_addr, &self.arena, &self.spare_headers) {
                    Ok(converted) => converted,
                    // What httparse accepts and `http` refuses: some targets.
                    Err(error) => {
                        log::debug!("tower adapter: {error}; answering 400");
                        return Response::new(StatusCode::BAD_REQUEST)
                            .with_header("Content-Type", "text/plain")
                            .with_body("invalid request target\n");
                    }
                };
            let mut answer = pin!(service.call(converted));
            // Converted in the poll that brings the answer, with its waker
            // for the first look at the body.
            poll_fn(|cx| match answer.as_mut().poll(cx) {
                Poll::Ready(Ok(answer)) => Poll::Ready(response::from_http(
                    answer,
                    cx,
                    &self.spare_body,
                    &self.spare_headers,
                )),
                Poll::Ready(Err(error)) => Poll::Ready(service_failed(error.into())),
                Poll::Pending => Poll::Pending,
            })
            .await
        }
    }
}

/// A service error: a 500, and the connection closes, as hyper would close it.
fn service_failed(error: BoxError) -> Response {
    log::error!("tower service failed: {error}");
    response::invalid_response().close_connection()
}
