//! Apps built on `shardd::router::Router`, over real TCP connections:
//! matching, 404 and 405, HEAD through GET, typed extraction and its
//! refusals, handler errors and panics, and the routed TechEmpower app.

mod support;

use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shardd::http::StatusCode;
use shardd::router::{get, post, IntoResponse, Json, Rejection, Router};
use shardd::{techempower_router, Request, Response, TechEmpower};
use support::{config, poll_until, Client, HttpResponse, TestServer};

#[derive(Deserialize)]
struct Search {
    q: String,
    limit: u32,
}

#[derive(Deserialize)]
struct NewUser {
    name: String,
    age: u8,
}

#[derive(Serialize)]
struct User {
    id: u64,
    name: String,
    age: u8,
}

/// The app's own error type, as a real app would have one.
enum ApiError {
    Teapot,
    Rejected(Rejection),
}

impl From<Rejection> for ApiError {
    fn from(rejection: Rejection) -> Self {
        ApiError::Rejected(rejection)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        match self {
            ApiError::Teapot => (StatusCode::IM_A_TEAPOT, "no coffee here\n").into_response(),
            ApiError::Rejected(rejection) => rejection.into_response(),
        }
    }
}

async fn show_user(req: &Request<'_>) -> Result<String, ApiError> {
    let id: u64 = req.param("id")?;
    Ok(format!("user {id}"))
}

async fn create_user(req: &Request<'_>) -> Result<(StatusCode, Json<User>), ApiError> {
    let new: NewUser = req.json()?;
    let user = User {
        id: 7,
        name: new.name,
        age: new.age,
    };
    Ok((StatusCode::CREATED, Json(user)))
}

/// The app under test, built once per shard.
fn app() -> Router {
    Router::new()
        .route("/users/{id}", get(show_user))
        .route("/users", post(create_user).body_limit(64))
        .route(
            "/static/{*path}",
            get(async |req| {
                req.param::<String>("path")
                    .map(|path| format!("file {path}"))
            }),
        )
        .route(
            "/items",
            get(async |_| "all items").post(async |_| (StatusCode::CREATED, "made")),
        )
        .route(
            "/search",
            get(async |req| {
                let search: Search = req.query_as()?;
                Ok::<_, Rejection>(format!("{} x{}", search.q, search.limit))
            }),
        )
        .route("/teapot", get(async |_| Err::<String, _>(ApiError::Teapot)))
        .route(
            "/panic",
            get(async |_| -> &'static str { panic!("handler panic requested by test") }),
        )
}

fn start() -> TestServer {
    TestServer::start_with(config(2), |_| app())
}

/// Send `raw` and read its response.
fn exchange(client: &mut Client, raw: &str) -> HttpResponse {
    client.send(raw);
    client.response().unwrap_or_else(|e| panic!("{raw:?}: {e}"))
}

/// A `POST /users` with this content type (none if `None`) and body.
fn post_users(client: &mut Client, content_type: Option<&str>, body: &str) -> HttpResponse {
    let content_type = content_type
        .map(|value| format!("Content-Type: {value}\r\n"))
        .unwrap_or_default();
    exchange(
        client,
        &format!(
            "POST /users HTTP/1.1\r\nHost: t\r\n{content_type}Content-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    )
}

#[test]
fn path_parameters_and_catch_all_reach_the_handler() {
    let server = start();
    let mut client = server.connect();
    assert_eq!(client.get("/users/42").body_str(), "user 42");
    assert_eq!(
        client.get("/static/css/site%20main.css").body_str(),
        "file css/site main.css"
    );
    let bad = client.get("/users/forty-two");
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body_str(),
        "invalid path parameter `id`: invalid digit found in string\n"
    );
    assert_eq!(bad.header("Content-Type"), Some("text/plain"));
}

#[test]
fn no_route_is_404_and_the_connection_goes_on() {
    let server = start();
    let mut client = server.connect();
    for path in ["/nope", "/users/", "/users/1/more", "/static/"] {
        let response = client.get(path);
        assert_eq!(response.status, 404, "{path}");
        assert_eq!(response.body_str(), "not found\n");
        assert!(!response.closes());
    }
    assert_eq!(client.get("/items").body_str(), "all items");
}

#[test]
fn another_method_is_405_with_allow() {
    let server = start();
    let mut client = server.connect();
    let response = exchange(&mut client, "DELETE /items HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("Allow"), Some("GET, HEAD, POST"));
    assert_eq!(response.body_str(), "method not allowed\n");
    let response = exchange(&mut client, "GET /users HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(response.status, 405);
    assert_eq!(response.header("Allow"), Some("POST"));
    let made = exchange(
        &mut client,
        "POST /items HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!((made.status, made.body_str()), (201, "made"));
}

#[test]
fn head_is_served_by_get_without_a_body() {
    let server = start();
    let mut client = server.connect();
    let got = client.get("/users/12345");
    client.send("HEAD /users/12345 HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = client.response_to_head().expect("a response to HEAD");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(head.header("Content-Length"), got.header("Content-Length"));
    assert_eq!(head.header("Content-Length"), Some("10"));
    // Nothing of a body followed: the next response parses.
    assert_eq!(client.get("/items").body_str(), "all items");
}

#[test]
fn query_string_is_extracted_or_refused_with_400() {
    let server = start();
    let mut client = server.connect();
    assert_eq!(
        client.get("/search?q=big%20cats&limit=3").body_str(),
        "big cats x3"
    );
    let bad = client.get("/search?q=cats&limit=many");
    assert_eq!(bad.status, 400);
    assert_eq!(
        bad.body_str(),
        "invalid query string: invalid digit found in string\n"
    );
    let missing = client.get("/search?q=cats");
    assert_eq!(missing.status, 400);
    assert_eq!(
        missing.body_str(),
        "invalid query string: missing field `limit`\n"
    );
}

#[test]
fn json_body_is_extracted() {
    let server = start();
    let mut client = server.connect();
    let created = post_users(
        &mut client,
        Some("application/json; charset=utf-8"),
        r#"{"name":"Ada","age":36}"#,
    );
    assert_eq!(created.status, 201);
    assert_eq!(created.header("Content-Type"), Some("application/json"));
    assert_eq!(created.body_str(), r#"{"id":7,"name":"Ada","age":36}"#);
}

#[test]
fn malformed_json_is_400_naming_the_problem() {
    let server = start();
    let mut client = server.connect();
    let json = Some("application/json");
    let broken = post_users(&mut client, json, r#"{"name":"Ada","#);
    assert_eq!(broken.status, 400);
    assert_eq!(
        broken.body_str(),
        "invalid JSON body: EOF while parsing a value at line 1 column 14\n"
    );
    let wrong_shape = post_users(&mut client, json, r#"{"name":"Ada","age":-1}"#);
    assert_eq!(wrong_shape.status, 400);
    assert!(
        wrong_shape
            .body_str()
            .starts_with("invalid JSON body: invalid value: integer `-1`"),
        "{}",
        wrong_shape.body_str()
    );
    assert!(
        !wrong_shape.closes(),
        "a refused body does not end the connection"
    );
}

#[test]
fn json_with_another_content_type_is_415() {
    let server = start();
    let mut client = server.connect();
    let body = r#"{"name":"Ada","age":36}"#;
    let plain = post_users(&mut client, Some("text/plain"), body);
    assert_eq!(plain.status, 415);
    assert_eq!(
        plain.body_str(),
        "expected Content-Type: application/json, got text/plain\n"
    );
    let none = post_users(&mut client, None, body);
    assert_eq!(none.status, 415);
    assert_eq!(
        none.body_str(),
        "expected Content-Type: application/json, got none\n"
    );
}

#[test]
fn a_body_over_the_route_limit_is_413() {
    let server = start();
    let mut client = server.connect();
    let name = "x".repeat(60);
    let response = post_users(
        &mut client,
        Some("application/json"),
        &format!(r#"{{"name":"{name}","age":1}}"#),
    );
    assert_eq!(response.status, 413);
    assert_eq!(
        response.body_str(),
        "request body over this route's limit of 64 bytes\n"
    );
    // The body was read whole: the connection goes on.
    assert_eq!(client.get("/users/1").body_str(), "user 1");
}

#[test]
fn a_handler_error_becomes_its_response() {
    let server = start();
    let mut client = server.connect();
    let response = client.get("/teapot");
    assert_eq!(response.status, 418);
    assert_eq!(response.body_str(), "no coffee here\n");
    assert!(!response.closes());
}

#[test]
fn a_panicking_handler_is_500_and_the_server_goes_on() {
    let server = start();
    let mut client = server.connect();
    let response = client.get("/panic");
    assert_eq!(response.status, 500);
    assert!(response.closes());
    assert_eq!(server.connect().get("/users/3").body_str(), "user 3");
}

#[test]
fn pipelined_requests_are_routed_in_order() {
    let server = start();
    let mut client = server.connect();
    let paths = ["/users/1", "/nope", "/static/a/b", "/search?q=x&limit=1"];
    let batch: String = paths
        .iter()
        .map(|path| format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n"))
        .collect();
    client.send(batch);
    let bodies: Vec<String> = client
        .responses(paths.len())
        .unwrap()
        .iter()
        .map(|response| response.body_str().to_string())
        .collect();
    assert_eq!(bodies, ["user 1", "not found\n", "file a/b", "x x1"]);
}

/// Every response `raws` gets from a server running `app` on each shard.
fn answers<A: shardd::App>(
    app: impl Fn() -> A + Send + Sync + 'static,
    raws: &[&str],
) -> Vec<HttpResponse> {
    let server = TestServer::start_with(config(1), move |_| app());
    let mut client = server.connect();
    raws.iter()
        .map(|raw| {
            client.send(raw);
            if raw.starts_with("HEAD") {
                client.response_to_head().unwrap()
            } else {
                client.response().unwrap()
            }
        })
        .collect()
}

#[test]
fn the_routed_techempower_app_answers_like_techempower() {
    let raws = [
        "GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /json HTTP/1.1\r\nHost: t\r\n\r\n",
        "HEAD /json HTTP/1.1\r\nHost: t\r\n\r\n",
        "POST /plaintext HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\n\r\n",
        "GET /plaintext/ HTTP/1.1\r\nHost: t\r\n\r\n",
        "GET /other HTTP/1.1\r\nHost: t\r\n\r\n",
    ];
    let by_hand = answers(|| TechEmpower, &raws);
    let routed = answers(techempower_router, &raws);
    for ((raw, hand), routed) in raws.iter().zip(&by_hand).zip(&routed) {
        let without_date = |response: &HttpResponse| {
            let mut headers = response.headers.clone();
            headers.retain(|(name, _)| name != "Date");
            (response.status, headers, response.body.clone())
        };
        assert_eq!(without_date(hand), without_date(routed), "{raw:?}");
    }
}

#[test]
fn the_binary_serves_the_router_with_app_router() {
    let help = Command::new(env!("CARGO_BIN_EXE_shardd"))
        .arg("--help")
        .output()
        .expect("run shardd --help");
    assert!(String::from_utf8_lossy(&help.stdout).contains("--app"));

    let addr = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardd"))
        .args(["--bind", &addr.to_string(), "--shards", "1", "--no-pin"])
        .args(["--app", "router"])
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start shardd --app router");
    let listening = poll_until(
        "shardd --app router to listen",
        Duration::from_secs(5),
        || std::net::TcpStream::connect(addr).is_ok(),
        |up| *up,
    );
    assert!(listening);
    let mut client = Client::connect(addr);
    let plaintext = client.get("/plaintext");
    let json = client.get("/json");
    child.kill().expect("stop shardd");
    child.wait().expect("reap shardd");
    assert_eq!(plaintext.body_str(), "Hello, World!");
    assert_eq!(json.body_str(), r#"{"message":"Hello, World!"}"#);
}
