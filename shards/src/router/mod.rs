//! A router: method and path patterns to handlers, built once per shard.
//!
//! Patterns are [matchit](https://docs.rs/matchit) patterns: static
//! segments, `{name}` parameters (one segment) and a final `{*name}`
//! catch-all (the rest of the path, at least one byte); a static segment
//! wins over a parameter. No route for the path is a `404`; a route without
//! a handler for the method is a `405` with `Allow`; `HEAD` is served by
//! `GET`. A handler is an async closure or `async fn` over `&Request<'_>`
//! returning anything [`IntoResponse`] — a `Result` whose error is a
//! [`Rejection`] or an app's own error type, so extraction can use `?`:
//! [`Request::param`], [`Request::query_as`], [`Request::json`].
//!
//! ```
//! use serde::Deserialize;
//! use http::StatusCode;
//! use shardd_shards::router::{get, post, IntoResponse, Json, Rejection, Router};
//! use shardd_shards::{Request, Response};
//!
//! #[derive(Deserialize)]
//! struct Page {
//!     limit: Option<u32>,
//! }
//!
//! #[derive(Deserialize)]
//! struct NewUser {
//!     name: String,
//! }
//!
//! /// The app's own error: anything that can go wrong in a handler.
//! enum ApiError {
//!     NoSuchUser(u64),
//!     Rejected(Rejection),
//! }
//!
//! impl From<Rejection> for ApiError {
//!     fn from(rejection: Rejection) -> Self {
//!         ApiError::Rejected(rejection)
//!     }
//! }
//!
//! impl IntoResponse for ApiError {
//!     fn into_response(self) -> Response {
//!         match self {
//!             ApiError::NoSuchUser(id) => (StatusCode::NOT_FOUND, format!("no user {id}\n")).into_response(),
//!             ApiError::Rejected(rejection) => rejection.into_response(),
//!         }
//!     }
//! }
//!
//! async fn show_user(req: &Request<'_>) -> Result<String, ApiError> {
//!     let id: u64 = req.param("id")?; // "abc" → 400
//!     if id != 1 {
//!         return Err(ApiError::NoSuchUser(id));
//!     }
//!     Ok(format!("user {id}\n"))
//! }
//!
//! let app = Router::new()
//!     .route("/users/{id}", get(show_user))
//!     .route("/users", get(async |req| {
//!         let page: Page = req.query_as()?; // ?limit=x → 400
//!         Ok::<_, Rejection>(format!("first {} users\n", page.limit.unwrap_or(10)))
//!     }))
//!     .route("/users", post(async |req| {
//!         let user: NewUser = req.json()?; // not JSON → 415, malformed → 400
//!         Ok::<_, Rejection>((StatusCode::CREATED, Json(format!("hello, {}", user.name))))
//!     }).body_limit(4096)) // bigger → 413
//!     .route("/static/{*path}", get(async |req| {
//!         let path: String = req.param("path")?; // percent-decoded
//!         Ok::<_, Rejection>(format!("file {path}\n"))
//!     }));
//! # let _: &dyn std::any::Any = &app;
//! ```
//!
//! Serve it with `Server::bind(config)?.serve(|_shard| make_router())`: the
//! factory builds one router per shard, so handlers may capture shard-local
//! (`!Send`) state.

mod extract;
mod handler;
mod inline_future;
mod into_response;
mod method_router;
mod static_paths;

use std::pin::{pin, Pin};

use self::inline_future::InlineFuture;
use self::static_paths::StaticPaths;

pub use self::extract::Rejection;
pub use self::into_response::{IntoResponse, Json};
pub use self::method_router::{any, delete, get, patch, post, put, MethodRouter};

use crate::app::App;
use crate::request::Request;
use crate::response::Response;

/// Routes from path patterns to [`MethodRouter`]s; an [`App`].
#[derive(Default)]
pub struct Router {
    /// Every pattern → index into `routes`.
    matcher: matchit::Router<usize>,
    /// The patterns without parameters, looked up before `matcher`.
    static_paths: StaticPaths,
    /// The handlers of each pattern, and the pattern as given.
    routes: Vec<(String, MethodRouter)>,
}

impl Router {
    /// A router with no routes: every request is a `404`.
    pub fn new() -> Self {
        Router::default()
    }

    /// Serve `pattern` with `methods`; routing the same pattern again adds
    /// its methods. Panics if the pattern is invalid or conflicts with
    /// another (`/{a}` and `/{b}`), or a method is routed twice.
    pub fn route(mut self, pattern: &str, methods: MethodRouter) -> Self {
        let methods = methods.settled();
        if let Some((_, existing)) = self.routes.iter_mut().find(|(known, _)| known == pattern) {
            existing.merge(methods);
            return self;
        }
        let index = self.routes.len();
        if let Err(error) = self.matcher.insert(pattern, index) {
            panic!("cannot route {pattern:?}: {error}");
        }
        self.static_paths.insert(pattern, index);
        self.routes.push((pattern.to_owned(), methods));
        self
    }

    /// Find the route for `request` and put the future that answers it in `answer`.
    #[inline]
    fn start<'a>(&'a self, request: &'a Request<'a>, answer: Pin<&mut InlineFuture<'a>>) {
        let path = request.path();
        if let Some(index) = self.static_paths.get(path) {
            let methods = &self.routes[index].1;
            return match methods.handler(request) {
                Some(handler) => handler.call(request, answer),
                None => answer.set_ready(methods.refusal(request)),
            };
        }
        let Ok(found) = self.matcher.at(path) else {
            return answer.set_ready(not_found());
        };
        let methods = &self.routes[*found.value].1;
        match methods.handler(request) {
            Some(handler) => {
                handler.call_with_params(request, found.params.iter().collect(), answer)
            }
            None => answer.set_ready(methods.refusal(request)),
        }
    }
}

/// No route for the path.
#[cold]
#[inline(never)]
fn not_found() -> Response {
    Response::not_found()
}

impl App for Router {
    // The handler writes its future into `answer`, pinned in this one, and
    // it is awaited here: no allocation, and one `async` layer between the
    // handler and the connection (each layer copies the 176-byte response).
    async fn call(&self, request: &Request<'_>) -> Response {
        let mut answer = pin!(InlineFuture::empty());
        self.start(request, answer.as_mut());
        answer.await
    }
}

impl std::fmt::Debug for Router {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Router")
            .field(
                "patterns",
                &self.routes.iter().map(|(p, _)| p).collect::<Vec<_>>(),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests;
