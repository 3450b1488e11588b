//! Unit tests of the conversions and of the header name and value mapping.

use http::header::{self, HeaderName, HeaderValue};

use super::fields::{header_name, lists_close, name_text, value_text};
use crate::request::Request;
use crate::response::HeaderText;

#[test]
fn field_names_in_any_case() {
    assert_eq!(header_name(b"Host"), Some(header::HOST));
    assert_eq!(header_name(b"cOnNeCtIoN"), Some(header::CONNECTION));
    assert_eq!(header_name(b"Accept-Charset"), Some(header::ACCEPT_CHARSET));
    assert_eq!(
        header_name(b"X-Request-Id"),
        Some(HeaderName::from_static("x-request-id"))
    );
    assert_eq!(header_name(b"bad name"), None);
}

#[test]
fn common_names_and_values_are_static() {
    assert!(matches!(
        name_text(&header::CONTENT_TYPE),
        HeaderText::Borrowed("content-type")
    ));
    assert!(matches!(
        name_text(&HeaderName::from_static("x-custom")),
        HeaderText::Owned(ref name) if name == "x-custom"
    ));
    assert!(matches!(
        value_text(&HeaderValue::from_static("application/json")),
        Some(HeaderText::Borrowed("application/json"))
    ));
    let utf8 = HeaderValue::from_bytes("café".as_bytes()).unwrap();
    assert_eq!(value_text(&utf8).as_deref(), Some("café"));
    let latin1 = HeaderValue::from_bytes(b"caf\xe9").unwrap();
    assert_eq!(value_text(&latin1), None);
}

#[test]
fn connection_close_is_found_in_a_list() {
    assert!(lists_close(&HeaderValue::from_static("keep-alive, Close")));
    assert!(!lists_close(&HeaderValue::from_static("keep-alive")));
}

#[test]
fn a_target_outside_the_head_is_copied_too() {
    let peer = crate::PeerAddr::Unknown;
    let request = Request::new("GET", "/x?y", http::Version::HTTP_10, b"", &peer);
    assert_eq!(request.copied_len(), 4);
    let parts = request.to_http_parts().unwrap();
    assert_eq!(parts.uri, "/x?y");
    assert_eq!(parts.version, http::Version::HTTP_10);
}

// Also runs under Miri (scripts/miri): values are handed to `http`
// without its byte check.
#[test]
fn decoded_header_values_arrive_in_the_http_request() {
    use crate::http::{Decoded, ReadBuffers, RequestReader};
    let (mut reader, mut buffers) = (RequestReader::default(), ReadBuffers::default());
    reader.feed(
        &mut buffers,
        b"POST /u HTTP/1.1\r\nHost: a\r\nX-Tab: x\ty\r\nContent-Length: 2\r\n\r\nhi",
    );
    let Decoded::Request(parts) = reader.decode(&mut buffers, &crate::Limits::default()) else {
        panic!("the head did not decode");
    };
    let peer = crate::PeerAddr::Unknown;
    let request = Request::from_parts(parts, &peer).to_http().unwrap();
    assert_eq!(request.headers()["host"], "a");
    assert_eq!(request.headers()["x-tab"], "x\ty");
    assert_eq!(request.headers()["content-length"], "2");
    assert_eq!(request.body().as_ref(), b"hi");
}
