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

/// Run the app, putting its response in `answer` (`None` if it panicked).
///
/// The response is written where the connection keeps it rather than
/// returned: a `Response` is 150 bytes, and each layer it would be returned
/// through (the app's future, `catch_unwind`, this future) costs a copy.
#[inline(always)]
pub(crate) fn call_app<'a, A: App>(
    app: &'a A,
    request: &'a Request<'_>,
    answer: &'a mut Option<Response>,
) -> CallApp<'a, impl Future<Output = Response> + 'a> {
    *answer = None;
    CallApp {
        future: catch_unwind(AssertUnwindSafe(|| app.call(request))).ok(),
        answer,
    }
}

/// The app's future, polled with panics caught. A plain struct rather than
/// an `async fn`, so that its `poll` can be inlined into the connection's
/// (an extra state machine per request costs ~150 instructions and a copy
/// of the response).
pub(crate) struct CallApp<'a, F> {
    /// `None`: building the future panicked.
    future: Option<F>,
    /// Where the response goes; left `None` if the app panicked.
    answer: &'a mut Option<Response>,
}

impl<F: Future<Output = Response>> Future for CallApp<'_, F> {
    type Output = ();

    #[inline(always)]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        // SAFETY: `future` is never moved out of the pinned struct; it is
        // only polled in place (structural pinning of that one field; the
        // `answer` reference is not pinned and only written through).
        let this = unsafe { self.get_unchecked_mut() };
        let Some(future) = this.future.as_mut() else {
            return Poll::Ready(());
        };
        // SAFETY: as above, `future` stays where it is until dropped.
        let future = unsafe { Pin::new_unchecked(future) };
        let answer = &mut *this.answer;
        let polled = catch_unwind(AssertUnwindSafe(|| match future.poll(cx) {
            Poll::Ready(response) => {
                *answer = Some(response);
                true
            }
            Poll::Pending => false,
        }));
        match polled {
            Ok(false) => Poll::Pending,
            Ok(true) | Err(_) => Poll::Ready(()),
        }
    }
}

/// What a client gets when the handler panicked.
pub(crate) fn internal_error() -> Response {
    Response::new(http::StatusCode::INTERNAL_SERVER_ERROR)
        .with_header("Content-Type", "text/plain")
        .with_body("internal server error\n")
}
