//! How a route handler is stored and called.
//!
//! A handler is an async closure or an `async fn` over `&Request<'_>` that
//! returns anything [`IntoResponse`]. Handlers of many types share one
//! table, so each is stored behind `dyn Handler`, and writes the future of
//! a call into a [`RoomFuture`] (no allocation once the router has rooms).

use smallvec::SmallVec;

use super::into_response::IntoResponse;
use std::pin::Pin;

use super::inline_future::InlineFuture;
use crate::request::Request;

/// The path parameters of a route that matched, in the order of its pattern.
pub(crate) type Params<'a> = SmallVec<[(&'a str, &'a str); 4]>;

/// A handler with its types erased.
pub(crate) trait Handler {
    /// Start answering `request`: put the future that answers it in `answer`.
    fn call<'a>(&'a self, request: &'a Request<'a>, answer: Pin<&mut InlineFuture<'a>>);

    /// Start answering `request` with these path parameters.
    fn call_with_params<'a>(
        &'a self,
        request: &'a Request<'a>,
        params: Params<'a>,
        answer: Pin<&mut InlineFuture<'a>>,
    );
}

impl<F, R> Handler for F
where
    F: AsyncFn(&Request<'_>) -> R,
    R: IntoResponse,
{
    fn call<'a>(&'a self, request: &'a Request<'a>, answer: Pin<&mut InlineFuture<'a>>) {
        answer.set(async move { self(request).await.into_response() });
    }

    fn call_with_params<'a>(
        &'a self,
        request: &'a Request<'a>,
        params: Params<'a>,
        answer: Pin<&mut InlineFuture<'a>>,
    ) {
        // The parameters live in the future, beside the request that borrows them.
        answer.set(async move {
            let request = request.with_params(&params);
            self(&request).await.into_response()
        });
    }
}

/// A stored handler.
pub(crate) type BoxedHandler = Box<dyn Handler>;

/// Store `handler`.
pub(crate) fn boxed<H, R>(handler: H) -> BoxedHandler
where
    H: AsyncFn(&Request<'_>) -> R + 'static,
    R: IntoResponse,
{
    Box::new(handler)
}
