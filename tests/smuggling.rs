//! Request-smuggling shapes over real sockets: each is refused (400, or 501
//! for an unknown transfer coding), the connection is closed with nothing
//! processed after it, and a fresh connection is still served.

mod support;

use std::time::Duration;

use support::{bounded_config, refused_and_closed, Client, TestServer};

fn server() -> TestServer {
    let mut config = bounded_config(1);
    config.limits.header_timeout = std::time::Duration::from_millis(2_000);
    config.limits.body_timeout = std::time::Duration::from_millis(2_000);
    TestServer::start(config)
}

/// Check every case on one server; report all failures together.
fn check_all(server: &TestServer, cases: &[(&str, &[u8], u16)]) {
    let mut failures = Vec::new();
    for (name, raw, status) in cases {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            refused_and_closed(server, raw, *status);
        }));
        if outcome.is_err() {
            failures.push(*name);
        }
    }
    assert!(failures.is_empty(), "cases that failed: {failures:?}");
}

#[test]
fn content_length_and_transfer_encoding_together_is_400() {
    let server = server();
    check_all(
        &server,
        &[
            (
                "CL then TE",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                400,
            ),
            (
                "TE then CL",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n",
                400,
            ),
            (
                "CL 0 with TE",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                400,
            ),
        ],
    );
    assert_only_root_reached_the_app(&server);
}

#[test]
fn malformed_content_length_is_400() {
    let server = server();
    check_all(
        &server,
        &[
            ("plus sign", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello", 400),
            ("negative", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: -1\r\n\r\n", 400),
            ("hex", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello", 400),
            ("two numbers", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5 5\r\n\r\nhello", 400),
            ("list", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 5\r\n\r\nhello", 400),
            ("empty", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length:\r\n\r\n", 400),
            ("letters", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5a\r\n\r\nhello", 400),
            ("decimal point", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5.0\r\n\r\nhello", 400),
            (
                "overflow",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\n",
                400,
            ),
            (
                "differing",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
                400,
            ),
            (
                "space before colon",
                b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length : 5\r\n\r\nhello",
                400,
            ),
        ],
    );
    assert!(server.controls.seen().iter().all(|p| p == "/"));
}

#[test]
fn transfer_codings_other_than_chunked_are_501() {
    let server = server();
    check_all(
        &server,
        &[
            ("gzip", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
            (
                "gzip, chunked",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
                501,
            ),
            (
                "chunked, identity",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, identity\r\n\r\n0\r\n\r\n",
                501,
            ),
            ("identity", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: identity\r\n\r\n", 501),
            ("xchunked", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: xchunked\r\n\r\n", 501),
        ],
    );
}

#[test]
fn obfuscated_transfer_encoding_is_refused() {
    let server = server();
    check_all(
        &server,
        &[
            (
                "repeated TE",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                400,
            ),
            (
                "space before colon",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n",
                400,
            ),
            (
                "folded value",
                b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n",
                400,
            ),
            ("empty", b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding:\r\n\r\n", 400),
            (
                "TE in HTTP/1.0",
                b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
                400,
            ),
        ],
    );
    // These must never be read as chunked: refused either way.
    for raw in [
        &b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"[..],
        b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \x0bchunked\r\n\r\n0\r\n\r\n",
    ] {
        let mut client = server.connect();
        client.send(raw);
        let response = client.response().unwrap();
        assert!(
            [400, 501].contains(&response.status),
            "{:?} -> {response:?}",
            String::from_utf8_lossy(raw)
        );
        client.expect_nothing_more_then_close(Duration::from_secs(4));
    }
    assert!(server.controls.seen().iter().all(|p| p == "/"));
}

#[test]
fn bad_chunked_framing_is_400() {
    let server = server();
    const HEAD: &str = "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n";
    let cases: Vec<(&str, Vec<u8>)> = [
        ("not hex", "zz\r\nhello\r\n0\r\n\r\n"),
        ("negative", "-5\r\nhello\r\n0\r\n\r\n"),
        ("0x prefix", "0x5\r\nhello\r\n0\r\n\r\n"),
        ("two sizes", "5 5\r\nhello\r\n0\r\n\r\n"),
        ("empty size", "\r\nhello\r\n0\r\n\r\n"),
        ("data too long", "5\r\nhello!!\r\n0\r\n\r\n"),
        ("no CRLF after data", "5\r\nhelloXX0\r\n\r\n"),
        ("bare LF after size", "5\nhello\r\n0\r\n\r\n"),
        ("bare LF after data", "5\r\nhello\n0\r\n\r\n"),
        ("bare LF after last chunk", "5\r\nhello\r\n0\n\r\n"),
        ("bare LF ending trailers", "5\r\nhello\r\n0\r\n\n"),
        ("bare LF in trailer", "5\r\nhello\r\n0\r\nX-T: 1\n\r\n"),
        (
            "control byte in extension",
            "5;a\x01b\r\nhello\r\n0\r\n\r\n",
        ),
        ("invalid trailer", "5\r\nhello\r\n0\r\nnot a field\r\n\r\n"),
    ]
    .into_iter()
    .map(|(name, body)| (name, format!("{HEAD}{body}").into_bytes()))
    .collect();
    let table: Vec<(&str, &[u8], u16)> = cases
        .iter()
        .map(|(name, raw)| (*name, raw.as_slice(), 400))
        .collect();
    check_all(&server, &table);
    assert_only_root_reached_the_app(&server);
}

#[test]
fn oversized_chunk_size_is_refused() {
    let server = server();
    let mut client = server.connect();
    client.send(
        b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffffffffff\r\nhello\r\n0\r\n\r\n",
    );
    let response = client.response().unwrap();
    assert!([400, 413].contains(&response.status), "{response:?}");
    assert!(response.closes());
    client.expect_nothing_more_then_close(Duration::from_secs(4));
    server.assert_serves();
}

#[test]
fn malformed_heads_are_400() {
    let server = server();
    check_all(
        &server,
        &[
            (
                "obs-fold",
                b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n b\r\n\r\n",
                400,
            ),
            (
                "obs-fold with tab",
                b"GET / HTTP/1.1\r\nHost: t\r\nX-Folded: a\r\n\tb\r\n\r\n",
                400,
            ),
            (
                "NUL in value",
                b"GET / HTTP/1.1\r\nHost: t\r\nX-Nul: a\0b\r\n\r\n",
                400,
            ),
            (
                "NUL in name",
                b"GET / HTTP/1.1\r\nHost: t\r\nX-N\0l: ab\r\n\r\n",
                400,
            ),
            (
                "NUL in target",
                b"GET /a\0b HTTP/1.1\r\nHost: t\r\n\r\n",
                400,
            ),
            (
                "control byte in value",
                b"GET / HTTP/1.1\r\nHost: t\r\nX-Ctl: a\x01b\r\n\r\n",
                400,
            ),
            (
                "DEL in value",
                b"GET / HTTP/1.1\r\nHost: t\r\nX-Del: a\x7fb\r\n\r\n",
                400,
            ),
            (
                "missing Host",
                b"GET / HTTP/1.1\r\nAccept: */*\r\n\r\n",
                400,
            ),
            (
                "two Hosts",
                b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                400,
            ),
            ("bare LF everywhere", b"GET / HTTP/1.1\nHost: t\n\n", 400),
            (
                "bare LF after request line",
                b"GET / HTTP/1.1\nHost: t\r\n\r\n",
                400,
            ),
            (
                "bare LF after a field",
                b"GET / HTTP/1.1\r\nHost: t\nX: y\r\n\r\n",
                400,
            ),
            (
                "bare LF ending the head",
                b"GET / HTTP/1.1\r\nHost: t\r\n\n",
                400,
            ),
            ("bare CR", b"GET / HTTP/1.1\rHost: t\r\n\r\n", 400),
            (
                "space in name",
                b"GET / HTTP/1.1\r\nHost: t\r\nX Y: z\r\n\r\n",
                400,
            ),
            (
                "no colon",
                b"GET / HTTP/1.1\r\nHost: t\r\nNoColon\r\n\r\n",
                400,
            ),
            ("bad version", b"GET / HTTP/1.7\r\nHost: t\r\n\r\n", 400),
            (
                "lowercase version",
                b"GET / http/1.1\r\nHost: t\r\n\r\n",
                400,
            ),
            (
                "space in target",
                b"GET /a b HTTP/1.1\r\nHost: t\r\n\r\n",
                400,
            ),
        ],
    );
    assert_only_root_reached_the_app(&server);
}

#[test]
fn classic_smuggling_payloads_never_reach_the_app() {
    let server = server();
    let smuggled = "GET /smuggled HTTP/1.1\r\nHost: t\r\n\r\n";
    // CL.TE: a front end using Content-Length forwards all; a back end using
    // chunked would see the smuggled request as the next one.
    let cl_te = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: {}\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n{smuggled}",
        5 + smuggled.len()
    );
    // TE.CL: the chunk hides a request that a Content-Length reader would see.
    let chunk = format!("{smuggled}X=");
    let te_cl = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len()
    );
    // TE.TE: one of two Transfer-Encoding headers is made unrecognisable.
    let te_te = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: cow\r\n\r\n0\r\n\r\n{smuggled}"
    );
    // A bare-LF line ending that a lenient parser would accept.
    let bare_lf = format!("POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 0\n\r\n{smuggled}");
    for raw in [cl_te, te_cl, te_te, bare_lf] {
        let mut client = server.connect();
        client.send(raw.as_bytes());
        let response = client.response().unwrap();
        assert!(
            [400, 501].contains(&response.status),
            "{raw:?} -> {response:?}"
        );
        assert!(response.closes());
        // No second response (to the smuggled request) follows.
        client.expect_nothing_more_then_close(Duration::from_secs(4));
    }
    assert!(
        server.controls.seen().is_empty(),
        "the app saw {:?}",
        server.controls.seen()
    );
    server.assert_serves();
}

#[test]
fn valid_request_before_a_bad_one_is_answered_then_the_connection_closes() {
    let server = server();
    let mut client = server.connect();
    client.send(
        b"GET / HTTP/1.1\r\nHost: t\r\n\r\n\
          POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n\
          GET /after HTTP/1.1\r\nHost: t\r\n\r\n",
    );
    let first = client.response().unwrap();
    assert_eq!(first.status, 200, "{first:?}");
    let second = client.response().unwrap();
    assert_eq!(second.status, 400, "{second:?}");
    assert!(second.closes());
    client.expect_nothing_more_then_close(Duration::from_secs(4));
    assert_eq!(server.controls.seen(), ["/"]);
}

/// Send `bytes`; the server must answer 400 or close within a few seconds, never hang.
fn refused_or_closed(server: &TestServer, bytes: &[u8]) {
    let mut client = server.connect();
    let _ = client.try_send(bytes);
    let (_, got) = client.read_until_closed(Duration::from_secs(4));
    if !got.is_empty() {
        assert!(
            got.starts_with(b"HTTP/1.1 400 "),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
    }
    server.assert_serves();
}

#[test]
fn with_http2_off_the_http2_preface_is_refused_not_hung() {
    let mut config = bounded_config(1);
    config.limits.header_timeout = std::time::Duration::from_millis(2_000);
    config.http2.enabled = false;
    let server = TestServer::start(config);
    let preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    refused_or_closed(&server, preface);
    // As a real HTTP/2 client sends it: preface then an empty SETTINGS frame.
    let mut with_settings = preface.to_vec();
    with_settings.extend_from_slice(&[0, 0, 0, 0x04, 0, 0, 0, 0, 0]);
    refused_or_closed(&server, &with_settings);
    // Only the first line.
    refused_or_closed(&server, b"PRI * HTTP/2.0\r\n");
}

#[test]
fn a_broken_or_unfinished_http2_preface_is_closed_not_hung() {
    // HTTP/2 on (the default): the preface's first line hands the
    // connection to HTTP/2, which closes what is not HTTP/2 after all
    // (never an HTTP/1.1 answer) and, within header_timeout, a client
    // that stops mid-handshake.
    let server = server();
    for bytes in [
        &b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n"[..],
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x01\x00\x00\x00\x00\x00",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        b"PRI * HTTP/2.0\r\n",
    ] {
        let mut client = server.connect();
        let _ = client.try_send(bytes);
        let (_, got) = client.read_until_closed(Duration::from_secs(4));
        assert!(
            !got.starts_with(b"HTTP/1.1"),
            "{:?}",
            String::from_utf8_lossy(&got)
        );
        server.assert_serves();
    }
}

#[test]
fn tls_client_hello_is_refused_not_hung() {
    let server = server();
    // A TLS 1.2/1.3 ClientHello record header and the start of the handshake.
    let mut hello = vec![
        0x16, 0x03, 0x01, 0x00, 0xc8, 0x01, 0x00, 0x00, 0xc4, 0x03, 0x03,
    ];
    hello.extend(std::iter::repeat_n(0xab, 32)); // random
    hello.extend_from_slice(&[0x00, 0x00, 0x02, 0x13, 0x01, 0x01, 0x00]);
    hello.extend(std::iter::repeat_n(0x00, 150));
    refused_or_closed(&server, &hello);
    // Just the record header, as a client's first segment may be.
    refused_or_closed(&server, &[0x16, 0x03, 0x01]);
    // SSLv2-style hello.
    refused_or_closed(&server, &[0x80, 0x2e, 0x01, 0x00, 0x02]);
}

#[test]
fn binary_garbage_is_refused_not_hung() {
    let server = server();
    for garbage in [
        &b"\x00\x00\x00\x00"[..],
        b"\xff\xfe\xfd\r\n\r\n",
        b"GET\r\n\r\n",
    ] {
        refused_or_closed(&server, garbage);
    }
    // The server is still healthy for a plain client.
    let mut client = Client::connect(server.addr);
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.response().unwrap().status, 200);
}

/// Nothing but the valid `GET /` probes reached the app.
fn assert_only_root_reached_the_app(server: &TestServer) {
    let seen = server.controls.seen();
    assert!(seen.iter().all(|p| p == "/"), "{seen:?}");
}
