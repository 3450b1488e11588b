//! Unit tests of the HTTP/1 response encoder: status lines, the fields the
//! server adds, framing, and the 500 in place of an unsafe response.

use super::*;
use crate::http::test_response::TestResponse as Response;

const DATE: &[u8; DATE_LEN] = b"Sun, 06 Nov 1994 08:49:37 GMT";

fn encode(response: &Response, head_only: bool, close: bool) -> String {
    let mut out = Vec::new();
    let options = EncodeOptions {
        date: DATE,
        head_only,
        close,
        keep_alive_1_0: false,
        http11: true,
    };
    encode_response(&response.parts(), &options, &mut out);
    String::from_utf8(out).unwrap()
}

#[test]
fn plaintext_response_bytes() {
    let text = encode(&Response::text("Hello, World!"), false, false);
    assert_eq!(
        text,
        "HTTP/1.1 200 OK\r\nServer: shardd\r\nDate: Sun, 06 Nov 1994 08:49:37 GMT\r\n\
         Content-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!"
    );
}

#[test]
fn head_keeps_length_drops_body() {
    let text = encode(&Response::text("Hello"), true, true);
    assert!(text.contains("Content-Length: 5\r\n"));
    assert!(text.ends_with("Connection: close\r\n\r\n"));
}

#[test]
fn header_injection_becomes_500() {
    let from_request = String::from("a\r\nSet-Cookie: b");
    let evil = Response::text("x").with_header("X-Evil", from_request);
    let text = encode(&evil, false, false);
    assert!(
        text.starts_with("HTTP/1.1 500 Internal Server Error\r\n"),
        "{text}"
    );
    assert!(!text.contains("Set-Cookie"));
    let bad_name = Response::text("x").with_header(String::from("X: y"), "z");
    assert!(encode(&bad_name, false, false).starts_with("HTTP/1.1 500 "));
}

#[test]
fn app_cannot_override_framing() {
    let sneaky = Response::text("abc").with_header("Content-Length", "99");
    let text = encode(&sneaky, false, false);
    assert!(text.contains("Content-Length: 3\r\n") && !text.contains("Content-Length: 99"));
}

#[test]
fn interim_status_from_an_app_becomes_500() {
    let text = encode(&Response::new(StatusCode::CONTINUE), false, false);
    assert!(text.starts_with("HTTP/1.1 500 "), "{text}");
}

#[test]
fn head_may_state_the_length_it_did_not_build() {
    let head = Response::new(StatusCode::OK).with_header("Content-Length", "1234");
    let text = encode(&head, true, false);
    assert!(text.contains("\r\nContent-Length: 1234\r\n"), "{text}");
    // For GET the body decides, whatever the app claims.
    let text = encode(&head, false, false);
    assert!(text.contains("\r\nContent-Length: 0\r\n"), "{text}");
}

/// In a debug build every piece is checked against the reserved room:
/// encode the heads that add the most, with and without app fields.
#[test]
fn every_head_fits_the_room_reserved_for_it() {
    let long_value = "v".repeat(3000);
    let statuses = [200, 304, 511, 299, 101];
    for status in statuses.map(|code| StatusCode::from_u16(code).unwrap()) {
        for (head_only, keep_alive_1_0, close) in [
            (false, true, false),
            (true, false, true),
            (false, false, false),
        ] {
            let responses = [
                Response::new(status).with_header("Content-Length", "12345678901234567890"),
                Response::new(status)
                    .with_header("Server", "mine")
                    .with_header("Date", "today")
                    .with_header(String::from("X-Long"), long_value.clone())
                    .with_body(vec![b'x'; COPY_LIMIT]),
                Response::new(status).with_body(vec![b'y'; COPY_LIMIT + 1]),
            ];
            for response in responses {
                let mut out = Vec::new();
                let options = EncodeOptions {
                    date: DATE,
                    head_only,
                    close,
                    keep_alive_1_0,
                    http11: !keep_alive_1_0,
                };
                encode_response(&response.parts(), &options, &mut out);
                assert!(out.starts_with(b"HTTP/1.1 "));
                assert!(out.windows(4).any(|w| w == b"\r\n\r\n"));
            }
        }
    }
}

#[test]
fn small_copies_copy_every_length_exactly() {
    let source: Vec<u8> = (1..=40).collect();
    for len in 0..=source.len() {
        let mut target = [0u8; 48];
        // SAFETY: `target` has room for `len` bytes after offset 3.
        unsafe { copy_small(&source[..len], target.as_mut_ptr().add(3)) };
        assert_eq!(&target[3..3 + len], &source[..len], "length {len}");
        assert!(target[..3]
            .iter()
            .chain(&target[3 + len..])
            .all(|&b| b == 0));
    }
}

#[test]
fn the_apps_own_server_and_date_replace_ours() {
    let own = Response::text("x")
        .with_header("X-First", "1")
        .with_header("Server", "mine")
        .with_header("Date", "today")
        .with_header("X-Last", "2");
    let text = encode(&own, false, false);
    assert_eq!(text.matches("Server:").count(), 1, "{text}");
    assert_eq!(text.matches("Date:").count(), 1, "{text}");
    assert!(text.starts_with("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-First: 1\r\nServer: mine\r\nDate: today\r\nX-Last: 2\r\n"), "{text}");
}

#[test]
fn a_bad_field_after_good_ones_leaves_only_the_500() {
    let mut out = b"previous response".to_vec();
    let bad = Response::text("x")
        .with_header("X-Good", "1")
        .with_header("X-Bad", String::from("a\nb"));
    let options = EncodeOptions {
        date: DATE,
        head_only: false,
        close: false,
        keep_alive_1_0: false,
        http11: true,
    };
    encode_response(&bad.parts(), &options, &mut out);
    let text = String::from_utf8(out).unwrap();
    assert!(text.starts_with("previous responseHTTP/1.1 500 "), "{text}");
    assert!(!text.contains("X-Good"), "{text}");
}

/// The encoder says what went out, so its caller need not read the bytes back.
#[test]
fn the_answer_names_the_status_sent_and_how_the_body_follows() {
    let options = |http11: bool| EncodeOptions {
        date: DATE,
        head_only: false,
        close: !http11,
        keep_alive_1_0: false,
        http11,
    };
    let encoded = |response: &Response, http11| {
        encode_response(&response.parts(), &options(http11), &mut Vec::new())
    };
    let as_given = |status, plan| Encoded {
        status,
        plan,
        replaced: false,
    };
    let created = Response::new(StatusCode::CREATED).with_body("made");
    assert_eq!(
        encoded(&created, true),
        as_given(StatusCode::CREATED, BodyPlan::Written)
    );
    let large = Response::text(vec![b'x'; COPY_LIMIT + 1]);
    assert_eq!(
        encoded(&large, true),
        as_given(StatusCode::OK, BodyPlan::Separate)
    );
    let stream = Response::text(crate::http::test_response::TestBody::Stream);
    assert_eq!(
        encoded(&stream, true),
        as_given(StatusCode::OK, BodyPlan::Chunked)
    );
    assert_eq!(
        encoded(&stream, false),
        as_given(StatusCode::OK, BodyPlan::UntilClose)
    );
    let upgrade = Response::new(StatusCode::SWITCHING_PROTOCOLS).upgrading();
    assert_eq!(
        encoded(&upgrade, true),
        as_given(StatusCode::SWITCHING_PROTOCOLS, BodyPlan::Upgrade)
    );
    // Replaced: the 500 is reported, even when the app's status was 500 too.
    let replaced = Encoded {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        plan: BodyPlan::Written,
        replaced: true,
    };
    let split = Response::new(StatusCode::ACCEPTED).with_header("X-Bad", String::from("a\r\nb"));
    assert_eq!(encoded(&split, true), replaced);
    let own_500 =
        Response::new(StatusCode::INTERNAL_SERVER_ERROR).with_header("X-Bad", String::from("a\nb"));
    assert_eq!(encoded(&own_500, true), replaced);
    assert_eq!(
        encoded(&Response::new(StatusCode::CONTINUE), true),
        replaced
    );
    // A 101 the app did not back with an upgrade is not one.
    let no_handler = Response::new(StatusCode::SWITCHING_PROTOCOLS);
    assert_eq!(encoded(&no_handler, true), replaced);
}

#[test]
fn continue_is_a_bare_interim_head() {
    let mut out = b"earlier".to_vec();
    encode_continue(&mut out);
    assert_eq!(out, b"earlierHTTP/1.1 100 Continue\r\n\r\n");
}

#[test]
fn no_content_has_no_length() {
    let text = encode(&Response::new(StatusCode::NO_CONTENT), false, false);
    assert!(text.starts_with("HTTP/1.1 204 No Content\r\n"));
    assert!(!text.contains("Content-Length"));
}
