//! Unit tests of the request reader: pipelining, the head memo, `100 Continue`,
//! chunked framing, streamed and buffered bodies, refusals.

use super::*;

fn reader_with(bytes: &[u8]) -> (RequestReader, ReadBuffers) {
    let mut reader = RequestReader::default();
    let mut buffers = ReadBuffers::default();
    reader.feed(&mut buffers, bytes);
    (reader, buffers)
}

#[test]
fn pipelined_requests_come_out_in_order_then_the_reader_waits() {
    let (mut reader, mut buffers) =
        reader_with(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    let limits = Limits::default();
    for path in [&b"/a"[..], b"/b"] {
        match reader.decode(&mut buffers, &limits) {
            Decoded::Request(parts) => assert_eq!(parts.target.as_bytes(), path),
            other => panic!("{other:?}"),
        }
    }
    assert!(matches!(
        reader.decode(&mut buffers, &limits),
        Decoded::Incomplete(Awaiting::Request)
    ));
    assert!(buffers.bytes.is_empty(), "consumed bytes are released");
}

#[test]
fn a_repeated_head_is_read_from_the_memo_with_its_own_body() {
    let post =
        |body: &str| format!("POST /p HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{body}");
    let stream = format!("{}{}", post("ab"), post("cd"));
    let (mut reader, mut buffers) = reader_with(stream.as_bytes());
    let limits = Limits::default();
    for body in [b"ab", b"cd"] {
        match reader.decode(&mut buffers, &limits) {
            Decoded::Request(parts) => {
                assert_eq!(parts.body, body);
                assert_eq!(parts.spans.len(), 2, "the spans of the remembered head");
                assert!(parts.head_bytes.starts_with(b"POST /p "));
            }
            other => panic!("{other:?}"),
        }
    }
    assert!(buffers.memo.recall(post("").as_bytes(), &limits).is_some());
}

#[test]
fn a_remembered_head_is_checked_again_under_new_limits() {
    let head = b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\nB: 2\r\n\r\n";
    let (mut reader, mut buffers) = reader_with(head);
    assert!(matches!(
        reader.decode(&mut buffers, &Limits::default()),
        Decoded::Request(_)
    ));
    // The same head after a reload that allows two fields.
    reader.feed(&mut buffers, head);
    let tighter = Limits {
        max_headers: 2,
        ..Limits::default()
    };
    assert!(matches!(
        reader.decode(&mut buffers, &tighter),
        Decoded::Refused(HttpError::HeaderFieldsTooLarge)
    ));
}

#[test]
fn a_refused_head_does_not_leave_a_memo_behind() {
    let good = b"GET / HTTP/1.1\r\nHost: x\r\nA: 1\r\n\r\n";
    let (mut reader, mut buffers) = reader_with(good);
    let limits = Limits::default();
    assert!(matches!(
        reader.decode(&mut buffers, &limits),
        Decoded::Request(_)
    ));
    // Refused after its fields were scanned: the spans now hold its fields.
    buffers.bytes.clear();
    let mut fresh = RequestReader::default();
    fresh.feed(
        &mut buffers,
        b"GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
    );
    assert!(matches!(
        fresh.decode(&mut buffers, &limits),
        Decoded::Refused(_)
    ));
    assert!(buffers.memo.recall(good, &limits).is_none());
}

/// Whether a body, buffered or streamed, owes `100 Continue` is decided
/// by the version too: HTTP/1.0 has no interim responses.
#[test]
fn continue_is_owed_only_to_http_1_1_whether_the_body_is_buffered_or_streamed() {
    let limits = Limits::default();
    let head = |version: &str, framing: &str| {
        format!("POST / {version}\r\nHost: x\r\nExpect: 100-continue\r\n{framing}\r\n\r\n")
    };
    for (version, owed) in [("HTTP/1.1", true), ("HTTP/1.0", false)] {
        for framing in ["Content-Length: 3", "Transfer-Encoding: chunked"] {
            if version == "HTTP/1.0" && framing.starts_with("Transfer") {
                continue; // refused: HTTP/1.0 has no chunked coding
            }
            let head = head(version, framing);
            let (mut buffered, mut buffers) = reader_with(head.as_bytes());
            let Decoded::Incomplete(awaiting) = buffered.decode(&mut buffers, &limits) else {
                panic!("{head}: the body is still to come");
            };
            assert_eq!(awaiting.owes_continue(), owed, "buffered: {head}");

            let mut streamed = RequestReader::offering_heads();
            let mut buffers = ReadBuffers::default();
            streamed.feed(&mut buffers, head.as_bytes());
            assert!(matches!(
                streamed.decode(&mut buffers, &limits),
                Decoded::Head(_)
            ));
            assert_eq!(
                streamed.stream_body().owes_continue(),
                owed,
                "streamed: {head}"
            );
        }
    }
    // Offered, declined (buffered after all): still owed once.
    let (head, mut buffers) = (
        head("HTTP/1.1", "Content-Length: 3"),
        ReadBuffers::default(),
    );
    let mut reader = RequestReader::offering_heads();
    reader.feed(&mut buffers, head.as_bytes());
    assert!(matches!(
        reader.decode(&mut buffers, &limits),
        Decoded::Head(_)
    ));
    let Decoded::Incomplete(first) = reader.decode(&mut buffers, &limits) else {
        panic!("the body is still to come")
    };
    let Decoded::Incomplete(again) = reader.decode(&mut buffers, &limits) else {
        panic!("the body is still to come")
    };
    assert!(first.owes_continue() && !again.owes_continue());
}

#[test]
fn continue_is_owed_once_and_the_body_then_completes() {
    let (mut reader, mut buffers) = reader_with(
        b"POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n",
    );
    let limits = Limits::default();
    let decode = |reader: &mut RequestReader, buffers: &mut ReadBuffers| match reader
        .decode(buffers, &limits)
    {
        Decoded::Incomplete(awaiting) => awaiting,
        other => panic!("{other:?}"),
    };
    assert_eq!(
        decode(&mut reader, &mut buffers),
        Awaiting::Body {
            send_continue: true
        }
    );
    assert_eq!(
        decode(&mut reader, &mut buffers),
        Awaiting::Body {
            send_continue: false
        }
    );
    reader.feed(&mut buffers, b"abc");
    match reader.decode(&mut buffers, &limits) {
        Decoded::Request(parts) => assert_eq!(parts.body, b"abc"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn decoded_chunk_framing_is_dropped_while_the_body_arrives() {
    let (mut reader, mut buffers) =
        reader_with(b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n");
    let limits = Limits::default();
    let head_len = buffers.bytes.len();
    for _ in 0..100 {
        reader.feed(&mut buffers, b"4\r\nabcd\r\n");
        assert!(matches!(
            reader.decode(&mut buffers, &limits),
            Decoded::Incomplete(Awaiting::Body { .. })
        ));
        assert_eq!(buffers.bytes.len(), head_len, "framing kept in the buffer");
    }
    reader.feed(&mut buffers, b"0\r\n\r\n");
    match reader.decode(&mut buffers, &limits) {
        Decoded::Request(parts) => assert_eq!(parts.body.len(), 400),
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_request_without_a_body_after_a_chunked_one_gets_no_body() {
    let (mut reader, mut buffers) = reader_with(
        b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n\
          GET / HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    let limits = Limits::default();
    let mut bodies = Vec::new();
    while let Decoded::Request(parts) = reader.decode(&mut buffers, &limits) {
        bodies.push(parts.body.to_vec());
    }
    assert_eq!(bodies, [b"hello".to_vec(), Vec::new()]);
}

#[test]
fn a_control_byte_in_an_unfinished_head_line_is_refused_at_once() {
    let limits = Limits::default();
    let (mut reader, mut buffers) = reader_with(b"GET /a");
    assert!(matches!(
        reader.decode(&mut buffers, &limits),
        Decoded::Incomplete(Awaiting::Head)
    ));
    reader.feed(&mut buffers, b"\x01");
    assert!(matches!(
        reader.decode(&mut buffers, &limits),
        Decoded::Refused(_)
    ));
}

#[test]
fn a_streamed_body_comes_out_piece_by_piece_beyond_the_body_limit() {
    let limits = Limits {
        max_body_bytes: 4,
        ..Limits::default()
    };
    for (head, body) in [
        (
            &b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n"[..],
            &b"0123456789"[..],
        ),
        (
            b"POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
            b"3\r\n012\r\n7\r\n3456789\r\n0\r\n\r\n",
        ),
    ] {
        let mut reader = RequestReader::offering_heads();
        let mut buffers = ReadBuffers::default();
        reader.feed(&mut buffers, head);
        reader.feed(&mut buffers, &body[..4]);
        assert!(
            matches!(reader.decode(&mut buffers, &limits), Decoded::Head(p) if p.body.is_empty())
        );
        reader.stream_body();
        let mut got = Vec::new();
        let mut fed = 4;
        loop {
            match reader.next_body_piece(&mut buffers, &limits, &mut got) {
                BodyPiece::Data(_) => {}
                BodyPiece::NeedMore => {
                    reader.feed(&mut buffers, &body[fed..fed + 1]);
                    fed += 1;
                }
                BodyPiece::End => break,
                BodyPiece::Refused(error) => panic!("{error}"),
            }
        }
        assert_eq!(got, b"0123456789");
        reader.feed(&mut buffers, b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            matches!(reader.decode(&mut buffers, &limits), Decoded::Request(p) if p.target == "/next")
        );
    }
}

#[test]
fn an_offered_body_not_streamed_is_buffered_within_the_limit() {
    let limits = Limits {
        max_body_bytes: 4,
        ..Limits::default()
    };
    let mut reader = RequestReader::offering_heads();
    let mut buffers = ReadBuffers::default();
    reader.feed(&mut buffers, b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcPOST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\n");
    assert!(matches!(
        reader.decode(&mut buffers, &limits),
        Decoded::Head(_)
    ));
    assert!(
        matches!(reader.decode(&mut buffers, &limits), Decoded::Request(p) if p.body == b"abc")
    );
    assert!(matches!(
        reader.decode(&mut buffers, &limits),
        Decoded::Head(_)
    ));
    assert!(matches!(
        reader.decode(&mut buffers, &limits),
        Decoded::Refused(HttpError::PayloadTooLarge)
    ));
}

#[test]
fn a_broken_head_is_refused() {
    let (mut reader, mut buffers) = reader_with(b"GET / HTTP/1.1\nHost: x\r\n\r\n");
    assert!(matches!(
        reader.decode(&mut buffers, &Limits::default()),
        Decoded::Refused(HttpError::BadRequest(_))
    ));
}
