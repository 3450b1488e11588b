//! Matching and method dispatch, without a server.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use http::StatusCode;

use super::*;
use crate::listener::PeerAddr;

/// Answer `method target` (with `body`): every handler here is ready at once.
fn answer(router: &Router, method: &str, target: &str, body: &[u8]) -> Response {
    let peer = PeerAddr::Unknown;
    let request = Request::new(method, target, http::Version::HTTP_11, body, &peer);
    let mut future = pin!(router.call(&request));
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(response) => response,
        Poll::Pending => panic!("{method} {target}: the handler did not answer at once"),
    }
}

fn body(response: &Response) -> &str {
    std::str::from_utf8(response.body().as_bytes().expect("a body in memory")).unwrap()
}

/// Answers with the route's name and its parameters, as `name a=1 b=2`.
fn named(name: &'static str) -> MethodRouter {
    any(async move |req| {
        let mut text = name.to_string();
        for (key, value) in req.params() {
            text += &format!(" {key}={value}");
        }
        text
    })
}

fn users() -> Router {
    Router::new()
        .route("/", named("root"))
        .route("/users", named("users"))
        .route("/users/me", named("me"))
        .route("/users/{id}", named("user"))
        .route("/users/{id}/posts/{post}", named("post"))
        .route("/static/{*path}", named("static"))
}

#[test]
fn static_segments_parameters_and_catch_all() {
    let router = users();
    let route = |target| body(&answer(&router, "GET", target, b"")).to_string();
    let boxed_before = inline_future::BOXED.with(|boxed| boxed.get());
    assert_eq!(route("/"), "root");
    assert_eq!(route("/users"), "users");
    assert_eq!(
        route("/users/me"),
        "me",
        "a static segment wins over a parameter"
    );
    assert_eq!(route("/users/42"), "user id=42");
    assert_eq!(
        route("/users/42?x=1"),
        "user id=42",
        "the query is not matched"
    );
    assert_eq!(route("/users/7/posts/9"), "post id=7 post=9");
    assert_eq!(route("/static/css/site.css"), "static path=css/site.css");
    assert_eq!(route("http://example.com/users/5"), "user id=5");
    let boxed = inline_future::BOXED.with(|boxed| boxed.get()) - boxed_before;
    assert_eq!(boxed, 0, "the handlers' futures fit in place");
}

#[test]
fn no_route_is_404() {
    let router = users();
    for target in ["/nope", "/users/", "/users/1/posts", "/static/", "*"] {
        let response = answer(&router, "GET", target, b"");
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{target}");
        assert_eq!(body(&response), "not found\n");
    }
    assert_eq!(answer(&Router::new(), "GET", "/", b"").status(), 404);
}

#[test]
fn other_method_is_405_with_allow() {
    let router = Router::new()
        .route("/items", get(async |_| "list").post(async |_| "made"))
        .route("/items/{id}", delete(async |_| "gone"));
    let response = answer(&router, "PUT", "/items", b"");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.header("Allow"), Some("GET, HEAD, POST"));
    assert_eq!(body(&response), "method not allowed\n");
    let response = answer(&router, "GET", "/items/1", b"");
    assert_eq!(
        response.header("Allow"),
        Some("DELETE"),
        "no HEAD without GET"
    );
    let response = answer(&router, "HEAD", "/items/1", b"");
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(answer(&router, "OPTIONS", "/items", b"").status(), 405);
    assert_eq!(body(&answer(&router, "POST", "/items", b"")), "made");
}

#[test]
fn head_is_served_by_get_unless_any_or_nothing() {
    let router = Router::new()
        .route("/a", get(async |req| req.method().to_string()))
        .route("/b", any(async |req| req.method().to_string()));
    assert_eq!(body(&answer(&router, "HEAD", "/a", b"")), "HEAD");
    assert_eq!(body(&answer(&router, "HEAD", "/b", b"")), "HEAD");
    assert_eq!(body(&answer(&router, "BREW", "/b", b"")), "BREW");
}

#[test]
fn routing_a_pattern_again_adds_methods() {
    let router = Router::new()
        .route("/x", get(async |_| "got"))
        .route("/x", post(async |_| "posted").body_limit(2));
    assert_eq!(body(&answer(&router, "GET", "/x", b"long body")), "got");
    assert_eq!(body(&answer(&router, "POST", "/x", b"ok")), "posted");
    let response = answer(&router, "POST", "/x", b"too long");
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(
        body(&response),
        "request body over this route's limit of 2 bytes\n"
    );
}

#[test]
#[should_panic(expected = "the route has a GET handler already")]
fn a_method_routed_twice_panics() {
    let _ = Router::new()
        .route("/x", get(async |_| "one"))
        .route("/x", get(async |_| "two"));
}

#[test]
#[should_panic(expected = "cannot route \"/{b}\"")]
fn conflicting_patterns_panic() {
    let _ = Router::new()
        .route("/{a}", named("a"))
        .route("/{b}", named("b"));
}

#[test]
fn params_are_percent_decoded_and_parsed() {
    let router = Router::new().route(
        "/n/{n}/{word}",
        get(async |req| {
            let n: i64 = req.param("n")?;
            let word: String = req.param("word")?;
            Ok::<_, Rejection>(format!("{n} {word}"))
        }),
    );
    assert_eq!(body(&answer(&router, "GET", "/n/-3/a%20b", b"")), "-3 a b");
    let response = answer(&router, "GET", "/n/x/y", b"");
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        body(&response),
        "invalid path parameter `n`: invalid digit found in string\n"
    );
    let response = answer(&router, "GET", "/n/1/%FF", b"");
    assert_eq!(body(&response), "path parameter `word` is not UTF-8\n");
}

#[test]
fn a_parameter_the_route_lacks_is_a_500() {
    let router = Router::new().route(
        "/x",
        get(async |req| req.param::<u32>("id").map(|id| id.to_string())),
    );
    let response = answer(&router, "GET", "/x", b"");
    assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(body(&response), "the route has no path parameter `id`\n");
}

#[test]
fn handlers_may_be_async_fns_and_closures_that_capture_state() {
    async fn hello(_: &Request<'_>) -> &'static str {
        "hello"
    }
    let counter = std::rc::Rc::new(std::cell::Cell::new(0));
    let router = Router::new().route("/hello", get(hello)).route(
        "/count",
        post(async move |_| {
            counter.set(counter.get() + 1);
            counter.get().to_string()
        }),
    );
    assert_eq!(body(&answer(&router, "GET", "/hello", b"")), "hello");
    assert_eq!(body(&answer(&router, "POST", "/count", b"")), "1");
    assert_eq!(body(&answer(&router, "POST", "/count", b"")), "2");
}

#[test]
fn what_handlers_return() {
    let router = Router::new()
        .route("/status", get(async |_| StatusCode::NO_CONTENT))
        .route("/created", get(async |_| (StatusCode::CREATED, "made")))
        .route("/json", get(async |_| Json([1, 2])))
        .route(
            "/err",
            get(async |_| {
                Err::<&str, _>(Rejection::new(StatusCode::IM_A_TEAPOT, "short and stout"))
            }),
        );
    assert_eq!(answer(&router, "GET", "/status", b"").status(), 204);
    let created = answer(&router, "GET", "/created", b"");
    assert_eq!(
        (created.status(), body(&created)),
        (StatusCode::CREATED, "made")
    );
    assert_eq!(created.header("Content-Type"), Some("text/plain"));
    let json = answer(&router, "GET", "/json", b"");
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    assert_eq!(body(&json), "[1,2]");
    let err = answer(&router, "GET", "/err", b"");
    assert_eq!(
        (err.status(), body(&err)),
        (StatusCode::IM_A_TEAPOT, "short and stout\n")
    );
}
