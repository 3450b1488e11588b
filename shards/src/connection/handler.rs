//! Running the app for one request, with panics kept inside the request.
//!
//! A panic in a handler (while building its future or polling it) becomes
//! a 500 for that request and a close of its connection; the shard and
//! every other connection on it carry on.

use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::pin::Pin;
use std::task::{Context, Poll};

use crate::app::App;
use crate::request::Request;
use crate::response::Response;

/// Run the app; `None` if it panicked.
#[inline(always)]
pub(crate) fn call_app<'a, A: App>(
    app: &'a A,
    request: &'a Request<'_>,
) -> CallApp<impl Future<Output = Response> + 'a> {
    CallApp {
        future: catch_unwind(AssertUnwindSafe(|| app.call(request))).ok(),
    }
}

/// The app's future, polled with panics caught. A plain struct rather than
/// an `async fn`, so that its `poll` can be inlined into the connection's
/// (an extra state machine per request costs ~150 instructions and a copy
/// of the response).
pub(crate) struct CallApp<F> {
    /// `None`: building the future panicked.
    future: Option<F>,
}

impl<F: Future<Output = Response>> Future for CallApp<F> {
    type Output = Option<Response>;

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        // SAFETY: `future` is never moved out of the pinned struct; it is
        // only polled in place (structural pinning of the one field).
        let future = unsafe { self.map_unchecked_mut(|this| &mut this.future) };
        let Some(future) = Option::as_pin_mut(future) else {
            return Poll::Ready(None);
        };
        match catch_unwind(AssertUnwindSafe(|| future.poll(cx))) {
            Ok(Poll::Ready(response)) => Poll::Ready(Some(response)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(None),
        }
    }
}

/// What a client gets when the handler panicked.
pub(crate) fn internal_error() -> Response {
    Response::new(http::StatusCode::INTERNAL_SERVER_ERROR)
        .with_header("Content-Type", "text/plain")
        .with_body("internal server error\n")
}
