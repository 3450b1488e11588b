//! The public conversions between shardd's `Request`/`Response` and the
//! `http` crate's types: what each side keeps (status, header fields in
//! order with repeated names, body, version, the close flag), what they
//! refuse (clearly, without a panic), round trips, an app that does its
//! work on `http` types served end to end, and (feature `tower`) any
//! `http_body::Body` in, shardd's `Body` as one.

mod support;

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::header::{HeaderValue, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, TRANSFER_ENCODING};
use http::{Method, StatusCode, Version};
use http_body::Body as _;
use proptest::prelude::*;
use shardd::tower::{serve_tower, RequestBody};
use shardd::{app_fn, Body, HttpConversionError, PeerAddr, Request, Response};
use shardd_shards::http::{Decoded, ReadBuffers, RequestReader};
use shardd_shards::Limits;
use support::{config, TestServer};
use tower::service_fn;

/// Decode `bytes` with the server's own reader and hand `inspect` the request.
fn with_request<T>(bytes: &[u8], inspect: impl FnOnce(&Request<'_>) -> T) -> T {
    let mut reader = RequestReader::default();
    let mut buffers = ReadBuffers::default();
    reader.feed(&mut buffers, bytes);
    let peer = PeerAddr::Unknown;
    match reader.decode(&mut buffers, &Limits::default()) {
        Decoded::Request(parts) => inspect(&Request::from_parts(parts, &peer)),
        other => panic!("the request did not decode: {other:?}"),
    }
}

const POST: &[u8] = b"POST /users/7?sort=name&x=%20y HTTP/1.1\r\n\
Host: example.com\r\n\
Accept: application/json\r\n\
X-Trace: one\r\n\
Cookie: a=1\r\n\
x-trace: two\r\n\
Content-Type: application/json\r\n\
Content-Length: 14\r\n\
\r\n\
{\"name\":\"ada\"}";

#[test]
fn a_request_keeps_method_uri_version_headers_in_order_and_body() {
    let converted = with_request(POST, |request| request.to_http().unwrap());
    assert_eq!(converted.method(), Method::POST);
    assert_eq!(converted.uri(), "/users/7?sort=name&x=%20y");
    assert_eq!(converted.uri().path(), "/users/7");
    assert_eq!(converted.uri().query(), Some("sort=name&x=%20y"));
    assert_eq!(converted.version(), Version::HTTP_11);
    let headers = converted.headers();
    assert_eq!(headers.len(), 7);
    assert_eq!(headers["host"], "example.com");
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    assert_eq!(headers[CONTENT_LENGTH], "14");
    // Both spellings of the repeated name are one field with two values, in order.
    let traces: Vec<_> = headers.get_all("x-trace").iter().collect();
    assert_eq!(traces, ["one", "two"]);
    assert_eq!(converted.body(), &Bytes::from_static(b"{\"name\":\"ada\"}"));
}

#[test]
fn a_request_s_parts_and_the_try_from_form_agree_with_to_http() {
    with_request(POST, |request| {
        let parts = request.to_http_parts().unwrap();
        let whole = http::Request::<Bytes>::try_from(request).unwrap();
        assert_eq!(parts.method, *whole.method());
        assert_eq!(parts.uri, *whole.uri());
        assert_eq!(parts.version, whole.version());
        assert_eq!(parts.headers, *whole.headers());
        assert!(parts.extensions.is_empty());
    });
}

#[test]
fn a_chunked_body_arrives_de_chunked_and_http_1_0_stays_1_0() {
    let chunked = b"PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n\
        5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    let converted = with_request(chunked, |request| request.to_http().unwrap());
    assert_eq!(converted.method(), Method::PUT);
    assert_eq!(converted.body().as_ref(), b"hello world");
    assert_eq!(converted.headers()[TRANSFER_ENCODING], "chunked");

    let old = b"GET http://example.com:8080/p?q=1 HTTP/1.0\r\n\r\n";
    let converted = with_request(old, |request| request.to_http().unwrap());
    assert_eq!(converted.version(), Version::HTTP_10);
    assert_eq!(converted.uri().host(), Some("example.com"));
    assert_eq!(converted.uri().port_u16(), Some(8080));
    assert_eq!(converted.uri().path(), "/p");
    assert!(converted.headers().is_empty());
    assert!(converted.body().is_empty());
}

#[test]
fn the_converted_request_owns_its_bytes() {
    let converted = {
        let bytes = POST.to_vec();
        with_request(&bytes, |request| request.to_http().unwrap())
        // the bytes the request borrowed are dropped here
    };
    assert_eq!(converted.headers()["cookie"], "a=1");
    assert_eq!(converted.uri().path(), "/users/7");
}

#[test]
fn a_target_the_reader_takes_and_the_http_crate_refuses_is_an_error() {
    // httparse lets `<` through in a target; `http::Uri` does not.
    let error = with_request(b"GET /a<b HTTP/1.1\r\nHost: h\r\n\r\n", |request| {
        assert_eq!(request.target(), "/a<b");
        request.to_http().unwrap_err()
    });
    assert!(
        matches!(error, HttpConversionError::Uri { ref target, .. } if target == "/a<b"),
        "{error:?}"
    );
    assert!(error.to_string().contains("/a<b"), "{error}");
}

#[test]
fn a_request_built_by_hand_with_a_bad_method_or_target_is_refused() {
    let peer = PeerAddr::Unknown;
    let bad_method = Request::new("GE T", "/", Version::HTTP_11, b"", &peer);
    assert!(matches!(
        bad_method.to_http(),
        Err(HttpConversionError::Method(ref method)) if method == "GE T"
    ));
    let bad_target = Request::new("GET", "http://[::1/", Version::HTTP_11, b"", &peer);
    let error = bad_target.to_http_parts().unwrap_err();
    assert!(
        matches!(error, HttpConversionError::Uri { ref target, .. } if target == "http://[::1/")
    );
    assert!(error.to_string().contains("http://[::1/"), "{error}");
}

#[test]
fn a_response_keeps_status_headers_in_order_and_body() {
    let response = Response::new(StatusCode::CREATED)
        .with_header("Content-Type", "application/json")
        .with_header("Set-Cookie", "a=1")
        .with_header("X-Owned", String::from("yes"))
        .with_header("set-cookie", "b=2")
        .with_body(r#"{"id":7}"#);
    let converted = http::Response::<Body>::try_from(response).unwrap();
    assert_eq!(converted.status(), StatusCode::CREATED);
    let headers = converted.headers();
    assert_eq!(headers.len(), 4);
    assert_eq!(headers[CONTENT_TYPE], "application/json");
    assert_eq!(headers["x-owned"], "yes");
    let cookies: Vec<_> = headers.get_all("set-cookie").iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"]);
    assert!(!headers.contains_key(CONNECTION));
    assert_eq!(converted.body().as_bytes(), Some(&br#"{"id":7}"#[..]));
}

#[test]
fn the_close_flag_becomes_connection_close_and_back() {
    let converted = Response::text("bye")
        .close_connection()
        .into_http()
        .unwrap();
    assert_eq!(converted.headers()[CONNECTION], "close");
    assert_eq!(converted.headers().get_all(CONNECTION).iter().count(), 1);
    let back = Response::from_http(converted).unwrap();
    assert!(back.closes_connection());
    // The server writes its own Connection field: none is kept as header text.
    assert_eq!(back.header("connection"), None);

    // Already stated by the app: not doubled.
    let stated = Response::text("bye")
        .with_header("Connection", "close")
        .close_connection();
    let converted = stated.into_http().unwrap();
    assert_eq!(converted.headers().get_all(CONNECTION).iter().count(), 1);

    // `close` anywhere in the list closes; `keep-alive` alone does not.
    let listed = http::Response::builder()
        .header(CONNECTION, "keep-alive, Close")
        .body("x")
        .unwrap();
    assert!(Response::from_http(listed).unwrap().closes_connection());
    let kept = http::Response::builder()
        .header(CONNECTION, "keep-alive")
        .body("x")
        .unwrap();
    assert!(!Response::from_http(kept).unwrap().closes_connection());
    assert!(!Response::text("x")
        .into_http()
        .unwrap()
        .headers()
        .contains_key(CONNECTION));
}

#[test]
fn an_http_response_s_framing_fields_are_left_to_the_server() {
    let answer = http::Response::builder()
        .status(StatusCode::OK)
        .header(CONTENT_LENGTH, "999")
        .header(TRANSFER_ENCODING, "chunked")
        .header("x-a", "1")
        .header("X-A", "2")
        .body(Bytes::from_static(b"hello"))
        .unwrap();
    let response = Response::try_from(answer).unwrap();
    let fields: Vec<_> = response.headers().collect();
    assert_eq!(fields, [("x-a", "1"), ("x-a", "2")]);
    assert!(matches!(response.body(), Body::Shared(bytes) if bytes == "hello"));

    // Without a body a stated length stays (HEAD, 304).
    let head = http::Response::builder()
        .status(StatusCode::NOT_MODIFIED)
        .header(CONTENT_LENGTH, "1234")
        .body(Body::Empty)
        .unwrap();
    let response = Response::from_http(head).unwrap();
    assert_eq!(response.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(response.header("content-length"), Some("1234"));
}

#[test]
fn every_body_type_converts() {
    fn body_of<B: Into<Body>>(body: B) -> Vec<u8> {
        let response = Response::from_http(http::Response::new(body)).unwrap();
        response.body().as_bytes().unwrap().to_vec()
    }
    assert_eq!(body_of("static"), b"static");
    assert_eq!(body_of(&b"bytes"[..]), b"bytes");
    assert_eq!(body_of(String::from("string")), b"string");
    assert_eq!(body_of(vec![1u8, 2, 3]), [1, 2, 3]);
    assert_eq!(body_of(Bytes::from_static(b"shared")), b"shared");
    assert_eq!(body_of(Body::Empty), b"");
}

#[test]
fn a_response_round_trips() {
    let original = Response::new(StatusCode::IM_A_TEAPOT)
        .with_header("Content-Type", "text/plain")
        .with_header("Vary", "Accept")
        .with_header("X-Custom", "a b\tc")
        .with_header("vary", "Origin")
        .with_body(Bytes::from_static(b"short and stout"))
        .close_connection();
    let back = Response::from_http(original.into_http().unwrap()).unwrap();
    assert_eq!(back.status(), StatusCode::IM_A_TEAPOT);
    let fields: Vec<_> = back.headers().collect();
    // Names as the http crate spells them (lower case), order and repeats kept.
    assert_eq!(
        fields,
        [
            ("content-type", "text/plain"),
            ("vary", "Accept"),
            ("vary", "Origin"),
            ("x-custom", "a b\tc"),
        ]
    );
    assert!(back.closes_connection());
    assert!(matches!(back.body(), Body::Shared(bytes) if bytes == "short and stout"));

    // http → shardd → http: the same map, status and body.
    let answer = http::Response::builder()
        .status(StatusCode::ACCEPTED)
        .header("x-one", "1")
        .header("x-many", "a")
        .header("x-many", "b")
        .body(Body::from("done"))
        .unwrap();
    let expected = answer.headers().clone();
    let again = Response::from_http(answer).unwrap().into_http().unwrap();
    assert_eq!(again.status(), StatusCode::ACCEPTED);
    assert_eq!(*again.headers(), expected);
    assert_eq!(again.body().as_bytes(), Some(&b"done"[..]));
}

#[test]
fn header_text_one_side_refuses_is_an_error_not_a_panic() {
    let split = Response::text("x").with_header("X-Evil", String::from("a\r\nInjected: 1"));
    let error = split.into_http().unwrap_err();
    assert!(
        matches!(error, HttpConversionError::HeaderValue { ref name } if name == "X-Evil"),
        "{error:?}"
    );
    assert!(error.to_string().contains("X-Evil"), "{error}");

    let bad_name = Response::text("x").with_header(String::from("Bad Name"), "v");
    assert!(matches!(
        bad_name.into_http(),
        Err(HttpConversionError::HeaderName(ref name)) if name == "Bad Name"
    ));

    let latin1 = http::Response::builder()
        .header("x-name", HeaderValue::from_bytes(b"caf\xe9").unwrap())
        .body("x")
        .unwrap();
    let error = Response::from_http(latin1).unwrap_err();
    assert!(
        matches!(error, HttpConversionError::NotUtf8 { ref name } if name == "x-name"),
        "{error:?}"
    );

    let upgrade = Response::new(StatusCode::SWITCHING_PROTOCOLS).on_upgrade(|_| async {});
    assert!(matches!(
        upgrade.into_http(),
        Err(HttpConversionError::Upgrade)
    ));
}

/// An app written against the `http` types, served by shardd: the request
/// converted in, an `http::Response` converted out.
fn http_app(request: http::Request<Bytes>) -> http::Response<Body> {
    let close = request.uri().path() == "/bye";
    let mut answer = http::Response::builder()
        .status(if request.method() == Method::POST {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        })
        .header(CONTENT_TYPE, "text/plain")
        .header(
            "x-seen-trace",
            request.headers().get_all("x-trace").iter().count(),
        );
    if close {
        answer = answer.header(CONNECTION, "close");
    }
    let body = format!(
        "{} {} {:?} body={}",
        request.method(),
        request.uri(),
        request.version(),
        String::from_utf8_lossy(request.body())
    );
    answer.body(Body::from(body)).unwrap()
}

#[test]
fn an_app_on_http_types_is_served_end_to_end() {
    let server = TestServer::start_with(config(1), |_| {
        app_fn(|request| match request.to_http() {
            Ok(request) => Response::from_http(http_app(request))
                .unwrap_or_else(|error| Response::text(error.to_string())),
            Err(error) => Response::new(StatusCode::BAD_REQUEST).with_body(error.to_string()),
        })
    });
    let mut client = server.connect();
    client.send(POST);
    let answer = client.response().unwrap();
    assert_eq!(answer.status, 201);
    assert_eq!(answer.header("x-seen-trace"), Some("2"));
    assert_eq!(
        answer.body_str(),
        r#"POST /users/7?sort=name&x=%20y HTTP/1.1 body={"name":"ada"}"#
    );
    assert!(!answer.closes());

    client.send("GET /bye HTTP/1.1\r\nHost: h\r\n\r\n");
    let answer = client.response().unwrap();
    assert_eq!(answer.status, 200);
    assert_eq!(answer.body_str(), "GET /bye HTTP/1.1 body=");
    assert!(answer.closes(), "{:?}", answer.headers);
    client.expect_nothing_more_then_close(Duration::from_secs(5));
}

/// Polls a body stream to its end with a waker that does nothing (the
/// streams here are always ready).
fn collect(body: Body) -> Vec<u8> {
    let Body::Stream(mut stream) = body else {
        return body.as_bytes().expect("bytes").to_vec();
    };
    let mut cx = Context::from_waker(Waker::noop());
    let mut got = Vec::new();
    loop {
        match stream.poll_next(&mut cx) {
            Poll::Ready(Some(chunk)) => got.extend_from_slice(&chunk.expect("a chunk")),
            Poll::Ready(None) => return got,
            Poll::Pending => panic!("the stream is always ready"),
        }
    }
}

#[test]
fn any_http_body_converts_with_the_tower_feature() {
    let whole = Body::from_http_body(axum::body::Body::from("whole"));
    assert!(
        matches!(whole, Body::Shared(ref bytes) if bytes == "whole"),
        "{whole:?}"
    );
    let empty = Body::from_http_body(axum::body::Body::empty());
    assert!(matches!(empty, Body::Empty), "{empty:?}");

    let chunks = stream::iter(["one;", "two;", "three"].map(Ok::<_, Infallible>));
    let streamed = Body::from_http_body(axum::body::Body::from_stream(chunks));
    assert!(streamed.is_stream());
    assert_eq!(collect(streamed), b"one;two;three");

    // A body that fails at the first look is a stream that fails.
    let failing = stream::iter([Err::<Bytes, _>(std::io::Error::other("gone"))]);
    let Body::Stream(mut failed) = Body::from_http_body(axum::body::Body::from_stream(failing))
    else {
        panic!("a failing stream expected");
    };
    let mut cx = Context::from_waker(Waker::noop());
    assert!(matches!(
        failed.poll_next(&mut cx),
        Poll::Ready(Some(Err(_)))
    ));
}

#[test]
fn shardd_s_body_is_an_http_body() {
    let mut cx = Context::from_waker(Waker::noop());
    let mut owned = Body::from(String::from("owned"));
    assert_eq!(http_body::Body::size_hint(&owned).exact(), Some(5));
    assert!(!http_body::Body::is_end_stream(&owned));
    let Poll::Ready(Some(Ok(frame))) = Pin::new(&mut owned).poll_frame(&mut cx) else {
        panic!("one data frame expected");
    };
    assert_eq!(frame.into_data().unwrap(), "owned");
    assert!(http_body::Body::is_end_stream(&owned));
    assert!(matches!(
        Pin::new(&mut owned).poll_frame(&mut cx),
        Poll::Ready(None)
    ));

    let chunks = stream::iter([
        Ok::<_, Infallible>(Bytes::from_static(b"a")),
        Ok(Bytes::from_static(b"b")),
    ]);
    let mut streamed = Body::stream(chunks);
    assert_eq!(http_body::Body::size_hint(&streamed).exact(), None);
    let mut got = Vec::new();
    while let Poll::Ready(Some(frame)) = Pin::new(&mut streamed).poll_frame(&mut cx) {
        got.extend_from_slice(&frame.unwrap().into_data().unwrap());
    }
    assert_eq!(got, b"ab");
}

#[test]
fn the_adapter_answers_400_for_a_target_the_http_crate_refuses() {
    let server = TestServer::start_with(config(1), |_| {
        serve_tower(service_fn(|_: http::Request<RequestBody>| async {
            Ok::<_, Infallible>(http::Response::new(String::from("served")))
        }))
    });
    let mut client = server.connect();
    client.send("GET /a<b HTTP/1.1\r\nHost: h\r\n\r\n");
    let answer = client.response().unwrap();
    assert_eq!(answer.status, 400);
    assert_eq!(answer.body_str(), "invalid request target\n");
    // The connection serves on.
    assert_eq!(client.get("/fine").body_str(), "served");
}

#[test]
fn a_tower_service_may_answer_with_a_converted_shardd_response() {
    let server = TestServer::start_with(config(1), |_| {
        serve_tower(service_fn(
            |request: http::Request<RequestBody>| async move {
                let chunks = stream::iter(
                    ["streamed ", "from ", "shardd"]
                        .map(|text| Ok::<_, Infallible>(Bytes::from(text))),
                );
                let body = if request.uri().path() == "/stream" {
                    Body::stream(chunks)
                } else {
                    Body::from("whole")
                };
                Response::new(StatusCode::OK)
                    .with_header("Content-Type", "text/plain")
                    .with_header("X-Path", request.uri().path().to_owned())
                    .with_body(body)
                    .into_http()
            },
        ))
    });
    let mut client = server.connect();
    let answer = client.get("/whole");
    assert_eq!(answer.body_str(), "whole");
    assert_eq!(answer.header("x-path"), Some("/whole"));
    assert_eq!(answer.header("content-length"), Some("5"));
    let answer = client.get("/stream");
    assert_eq!(answer.body_str(), "streamed from shardd");
    assert_eq!(answer.header("transfer-encoding"), Some("chunked"));
}

proptest! {
    /// Any header fields shardd can send come back from a round trip
    /// through `http::Response` with their values intact: names in lower
    /// case (the `http` crate's spelling), each name's values together and
    /// in the order added (a `HeaderMap` groups them), the status and
    /// body unchanged.
    #[test]
    fn any_fields_survive_a_round_trip(
        fields in proptest::collection::vec(
            (
                prop_oneof![
                    Just("Content-Type"), Just("vary"), Just("Set-Cookie"),
                    Just("X-Custom"), Just("x-custom"), Just("ETag"), Just("x-a.b_c~1"),
                ],
                "[ -~\t]{0,24}",
            ),
            0..8,
        ),
        status in 200u16..600,
        body in proptest::collection::vec(any::<u8>(), 0..64),
    ) {
        let mut response = Response::new(StatusCode::from_u16(status).unwrap())
            .with_body(body.clone());
        for (name, value) in &fields {
            response = response.with_header(*name, value.clone());
        }
        let back = Response::from_http(response.into_http().unwrap()).unwrap();

        let mut expected: Vec<(String, Vec<String>)> = Vec::new();
        for (name, value) in &fields {
            let name = name.to_ascii_lowercase();
            match expected.iter_mut().find(|(seen, _)| *seen == name) {
                Some((_, values)) => values.push(value.clone()),
                None => expected.push((name, vec![value.clone()])),
            }
        }
        let expected: Vec<(String, String)> = expected
            .into_iter()
            .flat_map(|(name, values)| values.into_iter().map(move |value| (name.clone(), value)))
            .collect();
        let got: Vec<(String, String)> = back
            .headers()
            .map(|(name, value)| (name.to_owned(), value.to_owned()))
            .collect();
        prop_assert_eq!(got, expected);
        prop_assert_eq!(back.status().as_u16(), status);
        prop_assert_eq!(back.body().as_bytes().unwrap(), &body[..]);
        prop_assert!(!back.closes_connection());
    }
}
