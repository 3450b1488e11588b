//! Response compression and gzip request bodies over real sockets: curl
//! (`--compressed`, gzip, br, zstd), a raw HTTP/1.1 client for exact
//! header fields, the `h2` crate for HTTP/2, and an axum app whose own
//! tower-http `CompressionLayer` must not be compressed twice.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{mpsc, Arc};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use shardd::compression::CompressionSettings;
use shardd::http::StatusCode;
use shardd::tower::serve_tower;
use shardd::{app_fn, App, Body, Request, Response};
use support::{config, HttpResponse, TestServer};

/// A JSON list of 50 items (HttpArena's `json` shape), ~5 KiB.
fn list_json() -> String {
    let items: Vec<String> = (0..50)
        .map(|i| {
            format!(
                r#"{{"id":{i},"name":"Item {i}","category":"cat{}","price":{}.5,"active":{}}}"#,
                i % 4,
                10 + i,
                i % 2 == 0
            )
        })
        .collect();
    format!(r#"{{"items":[{}],"count":50}}"#, items.join(","))
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(data).unwrap();
    encoder.finish().unwrap()
}

fn decode(encoding: Option<&str>, body: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    match encoding {
        None => out.extend_from_slice(body),
        Some("gzip") => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .expect("valid gzip");
        }
        Some("br") => {
            brotli::Decompressor::new(body, 4096)
                .read_to_end(&mut out)
                .expect("valid brotli");
        }
        Some("zstd") => out = zstd::decode_all(body).expect("valid zstd"),
        Some(other) => panic!("unexpected Content-Encoding {other}"),
    }
    out
}

/// The `i`th chunk of `/big-stream`: 4 KiB of text that compresses, but
/// not to nothing.
fn big_chunk(i: u32) -> String {
    let mut chunk = String::new();
    while chunk.len() < 4096 {
        chunk.push_str(&format!("line {i} {} ", chunk.len() * 7919 % 10007));
    }
    chunk.truncate(4096);
    chunk
}

/// Lets the `/sse` stream send its second event.
#[derive(Clone, Default)]
struct Release(Arc<AtomicBool>);

/// The app every test serves, compressed with the default settings.
fn app(release: Release) -> impl App {
    let list = list_json();
    let encoded = gzip(list.as_bytes());
    app_fn(move |request: &Request<'_>| match request.path() {
        "/json" => Response::json(list.clone()),
        "/small" => Response::json(r#"{"message":"Hello, World!"}"#),
        "/png" => Response::new(StatusCode::OK)
            .with_header("Content-Type", "image/png")
            .with_body(vec![7u8; 4096]),
        "/encoded" => Response::json(encoded.clone()).with_header("Content-Encoding", "gzip"),
        "/range" => Response::new(StatusCode::PARTIAL_CONTENT)
            .with_header("Content-Type", "text/plain")
            .with_header("Content-Range", "bytes 0-4095/10000")
            .with_body(vec![b'a'; 4096]),
        "/etag" if request.header("if-none-match") == Some(b"\"v1\"") => {
            Response::new(StatusCode::NOT_MODIFIED).with_header("ETag", "\"v1\"")
        }
        "/etag" => Response::json(list.clone()).with_header("ETag", "\"v1\""),
        "/big-stream" => {
            // 2 MiB in 512 chunks, ready at once: emitted in pieces, not
            // held whole in the encoder.
            let chunks = (0..512u32).map(|i| Ok::<_, std::io::Error>(Bytes::from(big_chunk(i))));
            Response::new(StatusCode::OK)
                .with_header("Content-Type", "text/plain")
                .with_body(Body::stream(stream::iter(chunks)))
        }
        "/sse" => {
            let release = release.clone();
            let events = stream::unfold(0, move |n| {
                let release = release.clone();
                async move {
                    match n {
                        0 => Some((Ok::<_, std::io::Error>(Bytes::from("data: 1\n\n")), 1)),
                        1 => {
                            // Event 2 is produced only once the client has
                            // decoded event 1: a held-back event 1 times out.
                            while !release.0.load(SeqCst) {
                                tokio::time::sleep(Duration::from_millis(5)).await;
                            }
                            Some((Ok(Bytes::from("data: 2\n\n")), 2))
                        }
                        _ => None,
                    }
                }
            });
            Response::new(StatusCode::OK)
                .with_header("Content-Type", "text/event-stream")
                .with_body(Body::stream(events))
        }
        _ => Response::not_found(),
    })
    .compressed(CompressionSettings::on())
}

fn start() -> (TestServer, Release) {
    let release = Release::default();
    let shared = release.clone();
    let server = TestServer::start_with(config(1), move |_| app(shared.clone()));
    (server, release)
}

fn get(server: &TestServer, method: &str, path: &str, headers: &str) -> HttpResponse {
    let mut client = server.connect();
    client.send(format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n"
    ));
    if method == "HEAD" {
        client.response_to_head().expect("a response")
    } else {
        client.response().expect("a response")
    }
}

/// curl, or a clear failure: CI installs it.
fn curl() -> Command {
    let version = Command::new("curl")
        .arg("--version")
        .output()
        .expect("curl is needed by this test: install it (apt-get install curl)");
    let features = String::from_utf8_lossy(&version.stdout).to_lowercase();
    for feature in ["brotli", "zstd", "http2"] {
        assert!(
            features.contains(feature),
            "this test needs a curl built with {feature}: {features}"
        );
    }
    let mut command = Command::new("curl");
    command.args(["-sS", "--max-time", "10"]);
    command
}

#[test]
fn curl_compressed_gets_each_coding_it_asks_for_and_decodes_the_same_json() {
    let (server, _) = start();
    let url = format!("http://{}/json", server.addr);
    let expected = list_json();
    for (accept, coding) in [
        (None, "zstd"), // `--compressed` alone: curl offers them all, zstd wins
        (Some("gzip"), "gzip"),
        (Some("br"), "br"),
        (Some("zstd"), "zstd"),
    ] {
        let mut command = curl();
        command.args(["--compressed", "-D", "-"]);
        if let Some(accept) = accept {
            command.args(["-H", &format!("Accept-Encoding: {accept}")]);
        }
        let output = command.arg(&url).output().unwrap();
        assert!(output.status.success(), "{output:?}");
        let text = String::from_utf8(output.stdout).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        let head = head.to_ascii_lowercase();
        assert!(
            head.contains(&format!("content-encoding: {coding}\r\n")),
            "{accept:?}: {head}"
        );
        assert!(head.contains("vary: accept-encoding"), "{head}");
        assert_eq!(body, expected, "{accept:?}");
    }
}

#[test]
fn q_values_choose_the_coding_and_identity_q0_without_a_coding_gets_406() {
    let (server, _) = start();
    let expected = list_json();
    for (accept, coding) in [
        ("br;q=0, gzip", Some("gzip")),
        ("gzip;q=0.5, br;q=0.9", Some("br")),
        ("zstd;q=0.1, gzip;q=0.2", Some("gzip")),
        ("gzip, br, zstd", Some("zstd")),
        ("*", Some("zstd")),
        ("gzip;q=0.5, identity", None),
        ("deflate", None),
        ("gzip;q=0", None),
        ("", None),
    ] {
        let response = get(
            &server,
            "GET",
            "/json",
            &format!("Accept-Encoding: {accept}\r\n"),
        );
        assert_eq!(response.status, 200, "{accept}");
        let encoding = response.header("Content-Encoding");
        assert_eq!(encoding, coding, "{accept}");
        assert_eq!(response.header("Vary"), Some("Accept-Encoding"), "{accept}");
        assert_eq!(decode(encoding, &response.body), expected.as_bytes());
        if coding.is_some() {
            assert!(response.body.len() < expected.len() / 3, "{accept}");
        }
    }
    // Without the field, the body goes as it is.
    let response = get(&server, "GET", "/json", "");
    assert_eq!(response.header("Content-Encoding"), None);
    for refusal in ["identity;q=0", "*;q=0", "deflate, identity;q=0"] {
        let response = get(
            &server,
            "GET",
            "/json",
            &format!("Accept-Encoding: {refusal}\r\n"),
        );
        assert_eq!(response.status, 406, "{refusal}");
    }
    // A small body that would not be compressed is, if identity is refused.
    let response = get(
        &server,
        "GET",
        "/small",
        "Accept-Encoding: gzip, identity;q=0\r\n",
    );
    assert_eq!(response.header("Content-Encoding"), Some("gzip"));
    assert_eq!(
        decode(Some("gzip"), &response.body),
        br#"{"message":"Hello, World!"}"#
    );
}

#[test]
fn small_bodies_images_ranges_and_encoded_bodies_are_sent_as_they_are() {
    let (server, _) = start();
    let accept = "Accept-Encoding: gzip, br, zstd\r\n";
    let small = get(&server, "GET", "/small", accept);
    assert_eq!(small.header("Content-Encoding"), None);
    assert_eq!(small.body_str(), r#"{"message":"Hello, World!"}"#);
    // It might have been compressed, were it larger: caches must know.
    assert_eq!(small.header("Vary"), Some("Accept-Encoding"));

    let png = get(&server, "GET", "/png", accept);
    assert_eq!(png.header("Content-Encoding"), None);
    assert_eq!(png.body, vec![7u8; 4096]);

    let range = get(&server, "GET", "/range", accept);
    assert_eq!(range.status, 206);
    assert_eq!(range.header("Content-Encoding"), None);
    assert_eq!(range.body, vec![b'a'; 4096]);

    // Already gzip: passed through, decoded once it is the JSON.
    let encoded = get(&server, "GET", "/encoded", accept);
    assert_eq!(encoded.header("Content-Encoding"), Some("gzip"));
    assert_eq!(decode(Some("gzip"), &encoded.body), list_json().as_bytes());
}

#[test]
fn head_gets_the_header_fields_get_would_and_304_passes_through() {
    let (server, _) = start();
    let accept = "Accept-Encoding: gzip\r\n";
    let get_response = get(&server, "GET", "/etag", accept);
    let head_response = get(&server, "HEAD", "/etag", accept);
    assert!(head_response.body.is_empty());
    for field in [
        "Content-Encoding",
        "Content-Length",
        "Vary",
        "ETag",
        "Content-Type",
    ] {
        assert_eq!(
            head_response.header(field),
            get_response.header(field),
            "{field}"
        );
    }
    assert_eq!(get_response.header("Content-Encoding"), Some("gzip"));
    // The compressed bytes are not the identity bytes: the ETag is weak.
    assert_eq!(get_response.header("ETag"), Some("W/\"v1\""));
    let not_modified = get(
        &server,
        "GET",
        "/etag",
        "Accept-Encoding: gzip\r\nIf-None-Match: \"v1\"\r\n",
    );
    assert_eq!(not_modified.status, 304);
    assert_eq!(not_modified.header("Content-Encoding"), None);
    assert_eq!(not_modified.header("ETag"), Some("\"v1\""));
}

/// curl reading `/sse` with `--no-buffer`: each decoded line as it comes.
fn sse_lines(
    server: &TestServer,
    coding: &str,
    http2: bool,
) -> (mpsc::Receiver<String>, std::process::Child) {
    let mut command = curl();
    command.args(["--no-buffer", "--compressed", "-D", "-", "-H"]);
    command.arg(format!("Accept-Encoding: {coding}"));
    if http2 {
        command.arg("--http2-prior-knowledge");
    }
    let mut child = command
        .arg(format!("http://{}/sse", server.addr))
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, receive) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    (receive, child)
}

#[test]
fn a_server_sent_events_stream_arrives_compressed_event_by_event() {
    for (coding, http2) in [
        ("gzip", false),
        ("br", false),
        ("zstd", false),
        ("gzip", true),
    ] {
        let (server, release) = start();
        let (lines, mut child) = sse_lines(&server, coding, http2);
        let mut head = Vec::new();
        let first = loop {
            let line = lines
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|_| {
                    panic!("{coding} (HTTP/2: {http2}): event 1 did not arrive before event 2 was produced; got {head:?}")
                });
            if line.starts_with("data:") {
                break line;
            }
            head.push(line.to_ascii_lowercase());
        };
        assert_eq!(first, "data: 1");
        assert!(
            head.iter()
                .any(|line| line.trim() == format!("content-encoding: {coding}")),
            "{head:?}"
        );
        release.0.store(true, SeqCst);
        let rest: Vec<String> = lines.iter().collect();
        assert!(rest.contains(&"data: 2".to_owned()), "{rest:?}");
        assert!(child.wait().unwrap().success());
    }
}

#[test]
fn http2_responses_are_compressed_and_head_matches_get() {
    let (server, _) = start();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let tcp = tokio::net::TcpStream::connect(server.addr).await.unwrap();
        let (send, connection) = h2::client::handshake(tcp).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut heads = Vec::new();
        for method in ["GET", "HEAD"] {
            let request = http::Request::builder()
                .method(method)
                .uri("http://localhost/json")
                .header("accept-encoding", "br;q=0, gzip")
                .body(())
                .unwrap();
            let mut send = send.clone().ready().await.unwrap();
            let (response, _) = send.send_request(request, true).unwrap();
            let response = tokio::time::timeout(Duration::from_secs(10), response)
                .await
                .expect("a response in time")
                .unwrap();
            let headers = response.headers().clone();
            let mut body = response.into_body();
            let mut bytes = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            if method == "GET" {
                assert_eq!(headers["content-encoding"], "gzip");
                assert_eq!(headers["vary"], "Accept-Encoding");
                assert_eq!(decode(Some("gzip"), &bytes), list_json().as_bytes());
            } else {
                assert!(bytes.is_empty());
            }
            heads.push((
                headers.get("content-encoding").cloned(),
                headers.get("content-length").cloned(),
            ));
        }
        assert_eq!(heads[0], heads[1], "HEAD's fields differ from GET's");
    });
}

#[test]
fn an_axum_app_with_tower_http_compression_is_not_compressed_twice() {
    use axum::routing::get as axum_get;
    use tower_http::compression::CompressionLayer;
    let server = TestServer::start_with(config(1), |_| {
        let router = axum::Router::new()
            .route(
                "/json",
                axum_get(|| async { ([("content-type", "application/json")], list_json()) }),
            )
            .layer(
                CompressionLayer::new()
                    .gzip(true)
                    .no_br()
                    .no_deflate()
                    .no_zstd(),
            );
        serve_tower(router).compressed(CompressionSettings::on())
    });
    // gzip from tower-http, passed through once; zstd from shardd when
    // tower-http was not asked for gzip.
    for (accept, coding) in [("gzip", "gzip"), ("zstd", "zstd")] {
        let response = get(
            &server,
            "GET",
            "/json",
            &format!("Accept-Encoding: {accept}\r\n"),
        );
        assert_eq!(response.status, 200);
        let encodings: Vec<_> = response
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case("content-encoding"))
            .collect();
        assert_eq!(encodings.len(), 1, "{:?}", response.headers);
        assert_eq!(response.header("Content-Encoding"), Some(coding));
        assert_eq!(decode(Some(coding), &response.body), list_json().as_bytes());
    }
}

/// Echoes the body it got, with gzip bodies decoded up to 1 MiB.
fn start_decoding() -> TestServer {
    let mut config = config(1);
    config.limits.max_body_bytes = 1 << 20;
    TestServer::start_with(config, |_| {
        app_fn(|request: &Request<'_>| {
            let encoding_seen = request.header("content-encoding").is_some();
            Response::text(request.body().to_vec()).with_header(
                "X-Saw-Content-Encoding",
                if encoding_seen { "yes" } else { "no" },
            )
        })
        .decompressing_requests(1 << 20)
    })
}

fn post(server: &TestServer, encoding: &str, body: &[u8]) -> HttpResponse {
    let mut client = server.connect();
    let mut request = format!(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Encoding: {encoding}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    client.send(request);
    client.response().expect("a response")
}

#[test]
fn gzip_request_bodies_are_decoded_and_a_zip_bomb_gets_413() {
    let server = start_decoding();
    let response = post(&server, "gzip", &gzip(b"hello, decoded"));
    assert_eq!(response.status, 200);
    assert_eq!(response.body_str(), "hello, decoded");
    assert_eq!(response.header("X-Saw-Content-Encoding"), Some("no"));

    // 10 MiB of zeros, ~10 KiB once gzipped: refused once 1 MiB is decoded.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(&vec![0u8; 10 << 20]).unwrap();
    let bomb = encoder.finish().unwrap();
    assert!(bomb.len() < 16 * 1024, "the bomb is {} bytes", bomb.len());
    assert_eq!(post(&server, "gzip", &bomb).status, 413);

    assert_eq!(post(&server, "gzip", b"not gzip at all").status, 400);
    let unsupported = post(&server, "br", b"whatever");
    assert_eq!(unsupported.status, 415);
    assert_eq!(unsupported.header("Accept-Encoding"), Some("gzip"));
    // The server still serves after all that.
    assert_eq!(post(&server, "identity", b"plain").body_str(), "plain");
}

#[test]
fn a_large_stream_is_compressed_whole_in_every_coding() {
    let (server, _) = start();
    let expected: String = (0..512).map(big_chunk).collect();
    for coding in ["gzip", "br", "zstd"] {
        let response = get(
            &server,
            "GET",
            "/big-stream",
            &format!("Accept-Encoding: {coding}\r\n"),
        );
        assert_eq!(response.header("Content-Encoding"), Some(coding));
        assert_eq!(response.header("Transfer-Encoding"), Some("chunked"));
        assert!(response.body.len() < expected.len() / 2, "{coding}");
        assert_eq!(
            decode(Some(coding), &response.body),
            expected.as_bytes(),
            "{coding}"
        );
    }
}
