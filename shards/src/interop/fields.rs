//! Header names and values between shardd's text and the `http` crate's
//! types, with the common ones matched without allocating.

use http::header::{self, HeaderName, HeaderValue};

use crate::response::HeaderText;

/// The field name: a common one as most clients and apps spell it is
/// matched as bytes (a few instructions); any other is parsed by the
/// `http` crate (`None` if it refuses it).
pub(crate) fn header_name(name: &[u8]) -> Option<HeaderName> {
    let known = match name {
        b"Host" | b"host" => header::HOST,
        b"Accept" | b"accept" => header::ACCEPT,
        b"Connection" | b"connection" => header::CONNECTION,
        b"User-Agent" | b"user-agent" => header::USER_AGENT,
        b"Accept-Encoding" | b"accept-encoding" => header::ACCEPT_ENCODING,
        b"Accept-Language" | b"accept-language" => header::ACCEPT_LANGUAGE,
        b"Content-Type" | b"content-type" => header::CONTENT_TYPE,
        b"Content-Length" | b"content-length" => header::CONTENT_LENGTH,
        b"Cookie" | b"cookie" => header::COOKIE,
        b"Referer" | b"referer" => header::REFERER,
        b"Origin" | b"origin" => header::ORIGIN,
        b"Authorization" | b"authorization" => header::AUTHORIZATION,
        b"Cache-Control" | b"cache-control" => header::CACHE_CONTROL,
        b"If-None-Match" | b"if-none-match" => header::IF_NONE_MATCH,
        b"Transfer-Encoding" | b"transfer-encoding" => header::TRANSFER_ENCODING,
        b"Server" | b"server" => header::SERVER,
        b"Date" | b"date" => header::DATE,
        b"Location" | b"location" => header::LOCATION,
        b"Set-Cookie" | b"set-cookie" => header::SET_COOKIE,
        b"Vary" | b"vary" => header::VARY,
        b"ETag" | b"etag" => header::ETAG,
        other => return HeaderName::from_bytes(other).ok(),
    };
    Some(known)
}

/// Whether a `Connection` value lists `close`.
pub(crate) fn lists_close(value: &HeaderValue) -> bool {
    value
        .as_bytes()
        .split(|&b| b == b',')
        .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"))
}

/// Header names apps commonly send, so that theirs cost no allocation.
static KNOWN_NAMES: [HeaderName; 28] = [
    header::CONTENT_TYPE,
    header::SERVER,
    header::DATE,
    header::CACHE_CONTROL,
    header::CONTENT_ENCODING,
    header::VARY,
    header::LOCATION,
    header::SET_COOKIE,
    header::ETAG,
    header::LAST_MODIFIED,
    header::ALLOW,
    header::EXPIRES,
    header::CONTENT_DISPOSITION,
    header::CONTENT_LANGUAGE,
    header::CONTENT_RANGE,
    header::ACCEPT_RANGES,
    header::AGE,
    header::RETRY_AFTER,
    header::WWW_AUTHENTICATE,
    header::STRICT_TRANSPORT_SECURITY,
    header::X_CONTENT_TYPE_OPTIONS,
    header::X_FRAME_OPTIONS,
    header::ACCESS_CONTROL_ALLOW_ORIGIN,
    header::ACCESS_CONTROL_ALLOW_METHODS,
    header::ACCESS_CONTROL_ALLOW_HEADERS,
    header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
    header::ACCESS_CONTROL_EXPOSE_HEADERS,
    header::ACCESS_CONTROL_MAX_AGE,
];

/// Header values apps commonly send (axum's and tower-http's defaults).
static KNOWN_VALUES: [&str; 12] = [
    "text/plain; charset=utf-8",
    "application/json",
    "text/html; charset=utf-8",
    "text/plain",
    "application/octet-stream",
    "application/x-www-form-urlencoded",
    "gzip",
    "br",
    "zstd",
    "deflate",
    "accept-encoding",
    "no-cache",
];

/// The name as header text: static for a common name, else owned.
pub(super) fn name_text(name: &HeaderName) -> HeaderText {
    match KNOWN_NAMES.iter().find(|known| *known == name) {
        Some(known) => HeaderText::Borrowed(known.as_str()),
        None => HeaderText::Owned(name.as_str().to_owned()),
    }
}

/// The value as header text, `None` if it is not UTF-8.
pub(super) fn value_text(value: &HeaderValue) -> Option<HeaderText> {
    let bytes = value.as_bytes();
    if let Some(known) = KNOWN_VALUES.iter().find(|known| known.as_bytes() == bytes) {
        return Some(HeaderText::Borrowed(known));
    }
    std::str::from_utf8(bytes)
        .ok()
        .map(|text| HeaderText::Owned(text.to_owned()))
}
