//! [`IntoResponse`]: what a route handler may return, and [`Json`].

use http::StatusCode;
use serde::Serialize;

use crate::body::Body;
use crate::response::Response;

/// Anything a route handler may return.
///
/// A [`Response`] as it is; text as `200 OK` `text/plain`; a `StatusCode`
/// (`http::StatusCode`) alone with no body; [`Json`] serialized; `(StatusCode, text)` and
/// `(StatusCode, Json)` with that status; a [`Result`] as whichever side it holds, so a handler can
/// use `?` with an error type that is itself `IntoResponse` (a
/// [`Rejection`](crate::router::Rejection), or an app's own).
pub trait IntoResponse {
    /// Turn `self` into the response the client gets.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    #[inline]
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        (StatusCode::OK, self).into_response()
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        (StatusCode::OK, self).into_response()
    }
}

impl IntoResponse for (StatusCode, &'static str) {
    fn into_response(self) -> Response {
        text(self.0, self.1)
    }
}

impl IntoResponse for (StatusCode, String) {
    fn into_response(self) -> Response {
        text(self.0, self.1)
    }
}

fn text(status: StatusCode, body: impl Into<Body>) -> Response {
    Response::new(status)
        .with_header("Content-Type", "text/plain")
        .with_body(body)
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        Response::new(self)
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(value) => value.into_response(),
            Err(error) => error.into_response(),
        }
    }
}

/// A value served as JSON: `200 OK`, `application/json`, serialized with
/// `serde_json` when the handler returns it.
///
/// A value that cannot be serialized (a map with non-string keys, a failing
/// `Serialize` impl) becomes a `500` saying so.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Json<T>(pub T);

impl<T: Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        (StatusCode::OK, self).into_response()
    }
}

impl<T: Serialize> IntoResponse for (StatusCode, Json<T>) {
    fn into_response(self) -> Response {
        let (status, Json(value)) = self;
        match serde_json::to_vec(&value) {
            Ok(body) => Response::new(status)
                .with_header("Content-Type", "application/json")
                .with_body(body),
            Err(error) => text(
                StatusCode::INTERNAL_SERVER_ERROR,
                format!("cannot serialize the response as JSON: {error}\n"),
            ),
        }
    }
}
