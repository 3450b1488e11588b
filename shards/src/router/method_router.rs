//! [`MethodRouter`]: the handlers of one path pattern, one per method.
//!
//! `HEAD` is served by the `GET` handler (the server sends no body for
//! `HEAD`); a method with no handler gets `405` with an `Allow` header
//! listing those that have one (`HEAD` included when `GET` is).

use http::StatusCode;

use super::handler::{boxed, BoxedHandler, Handler};
use super::into_response::IntoResponse;
use crate::request::Request;
use crate::response::Response;

/// The methods a route can name one by one, in the order `Allow` lists them.
const METHODS: [&str; 5] = ["GET", "POST", "PUT", "DELETE", "PATCH"];
const GET: usize = 0;

/// The handlers of one path pattern, by method: built with [`get`],
/// [`post`], [`put`], [`delete`], [`patch`] or [`any`], then chained
/// (`get(show).delete(remove)`).
#[derive(Default)]
pub struct MethodRouter {
    /// By index into [`METHODS`].
    by_method: [Option<Endpoint>; METHODS.len()],
    /// Every method without a handler of its own.
    any: Option<Endpoint>,
    /// Set by [`MethodRouter::body_limit`]: applies to every handler here.
    body_limit: Option<usize>,
}

/// A handler and the largest body it accepts (`usize::MAX`: no limit of its own).
struct Endpoint {
    handler: BoxedHandler,
    body_limit: usize,
}

macro_rules! method_fns {
    ($($method:ident $index:literal $name:literal;)*) => {
        $(
            #[doc = concat!("A route answering `", $name, "` with `handler`.")]
            pub fn $method<H, R>(handler: H) -> MethodRouter
            where
                H: AsyncFn(&Request<'_>) -> R + 'static,
                R: IntoResponse,
            {
                MethodRouter::default().$method(handler)
            }
        )*

        impl MethodRouter {
            $(
                #[doc = concat!("Also answer `", $name, "` with `handler`; panics if `", $name, "` has one already.")]
                pub fn $method<H, R>(self, handler: H) -> Self
                where
                    H: AsyncFn(&Request<'_>) -> R + 'static,
                    R: IntoResponse,
                {
                    self.on($index, boxed(handler))
                }
            )*
        }
    };
}

method_fns! {
    get 0 "GET";
    post 1 "POST";
    put 2 "PUT";
    delete 3 "DELETE";
    patch 4 "PATCH";
}

/// A route answering every method with `handler` (no `405`).
pub fn any<H, R>(handler: H) -> MethodRouter
where
    H: AsyncFn(&Request<'_>) -> R + 'static,
    R: IntoResponse,
{
    MethodRouter::default().any(handler)
}

impl MethodRouter {
    /// Also answer every method without a handler of its own with `handler`;
    /// panics if there is one already.
    pub fn any<H, R>(mut self, handler: H) -> Self
    where
        H: AsyncFn(&Request<'_>) -> R + 'static,
        R: IntoResponse,
    {
        assert!(self.any.is_none(), "the route has an `any` handler already");
        self.any = Some(Endpoint::new(boxed(handler)));
        self
    }

    /// Refuse bodies over `bytes` with `413` before any handler of this
    /// route runs. The server's own `max_body_bytes` applies to every route.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = Some(bytes);
        self
    }

    fn on(mut self, index: usize, handler: BoxedHandler) -> Self {
        let slot = &mut self.by_method[index];
        assert!(
            slot.is_none(),
            "the route has a {} handler already",
            METHODS[index]
        );
        *slot = Some(Endpoint::new(handler));
        self
    }

    /// Give the body limit set on this method router to each of its
    /// handlers, so that merging keeps each handler's own.
    pub(super) fn settled(mut self) -> Self {
        if let Some(limit) = self.body_limit.take() {
            for endpoint in self.by_method.iter_mut().chain([&mut self.any]).flatten() {
                endpoint.body_limit = limit;
            }
        }
        self
    }

    /// Add the handlers of `other`, the same pattern routed again; panics
    /// if both have one for the same method. Both are [`settled`](Self::settled).
    pub(super) fn merge(&mut self, other: MethodRouter) {
        for (index, endpoint) in other.by_method.into_iter().enumerate() {
            if let Some(endpoint) = endpoint {
                let slot = &mut self.by_method[index];
                assert!(
                    slot.is_none(),
                    "the route has a {} handler already",
                    METHODS[index]
                );
                *slot = Some(endpoint);
            }
        }
        if let Some(endpoint) = other.any {
            assert!(self.any.is_none(), "the route has an `any` handler already");
            self.any = Some(endpoint);
        }
    }

    /// The handler for `request`; `None` if it is [`refused`](Self::refusal).
    #[inline]
    pub(super) fn handler(&self, request: &Request<'_>) -> Option<&dyn Handler> {
        let endpoint = self.endpoint(request.parts().method)?;
        (request.body().len() <= endpoint.body_limit).then_some(&*endpoint.handler)
    }

    /// Why `request` has no [`handler`](Self::handler): `405` or `413`.
    #[cold]
    #[inline(never)]
    pub(super) fn refusal(&self, request: &Request<'_>) -> Response {
        match self.endpoint(request.parts().method) {
            Some(endpoint) => payload_too_large(endpoint.body_limit),
            None => self.method_not_allowed(),
        }
    }

    /// The handler for `method`: its own, `GET`'s for `HEAD`, else `any`.
    #[inline]
    fn endpoint(&self, method: &str) -> Option<&Endpoint> {
        // The most common method first, in a few instructions.
        if method == "GET" {
            return self.by_method[GET].as_ref().or(self.any.as_ref());
        }
        let own = match method {
            "HEAD" => &self.by_method[GET],
            "POST" => &self.by_method[1],
            "PUT" => &self.by_method[2],
            "DELETE" => &self.by_method[3],
            "PATCH" => &self.by_method[4],
            _ => &None,
        };
        own.as_ref().or(self.any.as_ref())
    }

    /// `405` with the methods that have a handler.
    fn method_not_allowed(&self) -> Response {
        let mut allow = Vec::with_capacity(METHODS.len() + 1);
        for (index, endpoint) in self.by_method.iter().enumerate() {
            if endpoint.is_some() {
                allow.push(METHODS[index]);
                if index == GET {
                    allow.push("HEAD");
                }
            }
        }
        Response::new(StatusCode::METHOD_NOT_ALLOWED)
            .with_header("Allow", allow.join(", "))
            .with_header("Content-Type", "text/plain")
            .with_body("method not allowed\n")
    }
}

impl Endpoint {
    fn new(handler: BoxedHandler) -> Self {
        Endpoint {
            handler,
            body_limit: usize::MAX,
        }
    }
}

fn payload_too_large(limit: usize) -> Response {
    Response::new(StatusCode::PAYLOAD_TOO_LARGE)
        .with_header("Content-Type", "text/plain")
        .with_body(format!(
            "request body over this route's limit of {limit} bytes\n"
        ))
}
