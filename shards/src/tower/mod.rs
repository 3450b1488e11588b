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
//! the service sees the request (an HTTP/1.1 body arrives whole), a panic while the
//! service runs is a 500 and a close, a drain lets the request finish and
//! answers it with `Connection: close`.
//!
//! What differs from hyper:
//! - An HTTP/1.1 request body is already read: [`RequestBody`] is one
//!   frame. An HTTP/2 one streams as it arrives, its trailers last, and
//!   is not bounded by `max_body_bytes`: the service bounds it (axum's
//!   `DefaultBodyLimit`, tonic's message size limits).
//! - A response body that is complete at once goes out with a
//!   `Content-Length` and no copy; any other is streamed frame by frame
//!   (chunked over HTTP/1.1), polled only as fast as the client reads.
//!   Trailers go out over HTTP/2 and are dropped over HTTP/1.1.
//! - Header text must be UTF-8: a response with a value that is not (the
//!   `http` crate allows obsolete Latin-1 bytes) becomes a 500.
//! - No upgrades through the service (axum's `WebSocketUpgrade` answers
//!   that the connection cannot be upgraded); a native app can take the
//!   connection over with [`Response::on_upgrade`].
//! - A service error (axum's `Router` has none) is a 500 and a close.
//! - The client's address is an extension only if asked for
//!   ([`TowerApp::with_peer_addr`]), as axum's `ConnectInfo` is.
//!
//! # gRPC
//!
//! A tonic service (`tonic::service::Routes`, or one generated server) is
//! a tower service like any other: serve it with [`serve_tower`] and
//! clients reach it over HTTP/2, cleartext with prior knowledge or TLS
//! with ALPN `h2`. Unary, server, client and bidirectional streaming all
//! work: request bodies stream, response trailers carry the status. Two
//! things `tonic::transport::Server` does, and tonic's generated servers
//! do not, the adapter does for any request with a gRPC content type:
//! - it honours the client's deadline (`grpc-timeout`): when it passes,
//!   the handler is dropped (cancelled), and the call ends with
//!   `DEADLINE_EXCEEDED`, before or during its response;
//! - it answers a gRPC call over HTTP/1.x with `505 HTTP Version Not
//!   Supported` (gRPC's status travels in trailers, which shardd sends
//!   only over HTTP/2); gRPC-Web is left to the service.
//!
//! A client that cancels its call resets the stream, which drops the
//! handler's future, or its response stream if it has answered.

mod grpc;
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
use grpc::{DeadlineBody, GrpcCall};

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
            // Only a POST is looked at further: the fast path pays one comparison.
            let mut deadline = match grpc::inspect(request) {
                GrpcCall::No | GrpcCall::Http2 { timeout: None } => None,
                GrpcCall::OverHttp1 => return grpc::over_http1(),
                GrpcCall::Http2 {
                    timeout: Some(timeout),
                } => Some(grpc::deadline(timeout)),
            };
            let ready = poll_fn(|cx| {
                if passed(&mut deadline, cx) {
                    return Poll::Ready(None);
                }
                service.poll_ready(cx).map(Some)
            })
            .await;
            match ready {
                None => return grpc::deadline_exceeded(),
                Some(Err(error)) => return service_failed(error.into()),
                Some(Ok(())) => {}
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
            poll_fn(|cx| {
                if passed(&mut deadline, cx) {
                    // Dropping the service's future cancels the handler.
                    return Poll::Ready(grpc::deadline_exceeded());
                }
                let answer = match answer.as_mut().poll(cx) {
                    Poll::Ready(Ok(answer)) => answer,
                    Poll::Ready(Err(error)) => return Poll::Ready(service_failed(error.into())),
                    Poll::Pending => return Poll::Pending,
                };
                let headers = &self.spare_headers;
                Poll::Ready(match deadline.take() {
                    None => response::from_http(answer, cx, &self.spare_body, headers),
                    // The deadline goes on while the body streams. Its own
                    // spare box: the app's keeps the plain bodies' type.
                    Some(deadline) => response::from_http(
                        answer.map(|body| DeadlineBody::new(body, deadline)),
                        cx,
                        &response::SpareBody::default(),
                        headers,
                    ),
                })
            })
            .await
        }
    }

    /// HTTP/2 request bodies stream to the service, so that gRPC's client
    /// and bidirectional streaming work; HTTP/1.1 bodies arrive whole.
    fn streams_body(&self, head: &Request<'_>) -> bool {
        head.version() == http::Version::HTTP_2
    }
}

/// Whether the gRPC deadline, if there is one, has passed (if not, `cx`
/// is woken when it does).
fn passed(
    deadline: &mut Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    cx: &mut std::task::Context<'_>,
) -> bool {
    deadline
        .as_mut()
        .is_some_and(|deadline| deadline.as_mut().poll(cx).is_ready())
}

/// A service error: a 500, and the connection closes, as hyper would close it.
fn service_failed(error: BoxError) -> Response {
    log::error!("tower service failed: {error}");
    response::invalid_response().close_connection()
}
