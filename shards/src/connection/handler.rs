//! Running the app for one request, with panics kept inside the request.
//!
//! A panic in a handler (while building its future or polling it) becomes
//! a 500 for that request and a close of its connection; the shard and
//! every other connection on it carry on.

use std::future::{poll_fn, Future};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::pin;
use std::task::Poll;

use crate::app::App;
use crate::request::Request;
use crate::response::Response;

/// Run the app; `None` if it panicked.
pub(crate) async fn call_app<A: App>(app: &A, request: &Request<'_>) -> Option<Response> {
    let future = catch_unwind(AssertUnwindSafe(|| app.call(request))).ok()?;
    let mut future = pin!(future);
    poll_fn(
        |cx| match catch_unwind(AssertUnwindSafe(|| future.as_mut().poll(cx))) {
            Ok(Poll::Ready(response)) => Poll::Ready(Some(response)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        },
    )
    .await
}

/// What a client gets when the handler panicked.
pub(crate) fn internal_error() -> Response {
    Response::new(http::StatusCode::INTERNAL_SERVER_ERROR)
        .with_header("Content-Type", "text/plain")
        .with_body("internal server error\n")
}
