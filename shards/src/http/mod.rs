//! The sans-IO HTTP/1.1 codec: bytes in → requests, responses → bytes out.
//!
//! Nothing here touches a socket, so every rule is tested (and fuzzed) on
//! byte slices. The connection loop drives it through
//! [`RequestReader`], and so do the property tests, the fuzz target and the
//! codec bench.
//!
//! The codec owns the HTTP/1 bytes and knows nothing of the app API: it
//! encodes any protocol-neutral [`ResponseView`](crate::message::ResponseView)
//! (an app's `Response` is one), says what it sent ([`Encoded`]), and
//! decides alone when `100 Continue` is owed ([`Awaiting::owes_continue`],
//! [`encode_continue`]). Its files use only `crate::message` and
//! `crate::limits` besides themselves; `shards/tests/http_codec_knows_no_app_types.rs`
//! fails the build's tests otherwise.
//!
//! Line endings: shardd requires CRLF. A bare LF anywhere in a request head
//! or in chunked framing is a 400, consistently, because a server that
//! accepts what its front proxy reads differently is how requests get
//! smuggled (RFC 9112 §2.2 lets a recipient choose; we choose strict).

mod chunked;
mod date;
mod encode;
mod encode_memo;
mod error;
mod head;
mod head_memo;
mod reader;
#[cfg(test)]
mod test_response;

pub use chunked::{decode_chunked, ChunkedDecoder, ChunkedStatus};
pub use date::{DateCache, DATE_LEN};
pub use encode::{
    encode_continue, encode_error, encode_response, BodyPlan, EncodeOptions, Encoded, COPY_LIMIT,
};
pub use encode_memo::{encode_remembered, EncodeMemo, MEMO_MAX_ENCODED};
pub use error::HttpError;
pub use head::{decode_head, path_len, slice, Framing, Head, HeaderSpan, Version};
pub use head_memo::{HeadMemo, MEMO_MAX_HEAD};
pub use reader::{Awaiting, BodyPiece, Decoded, ReadBuffers, RequestParts, RequestReader};
