//! A raw HTTP/2 client that writes whatever frames a test asks for, valid
//! or not: what the attack tests need, and what a real client (`h2`, curl)
//! refuses to send. Frames are built by hand (RFC 9113 §4.1); header blocks
//! use HPACK literals and indexes (RFC 7541), without Huffman coding.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// The connection preface a client sends first (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Frame types (RFC 9113 §6).
pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

/// Frame flags.
pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;

/// Error codes (RFC 9113 §7).
pub const NO_ERROR: u32 = 0x0;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const CANCEL: u32 = 0x8;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

/// `SETTINGS_INITIAL_WINDOW_SIZE`.
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;

/// One frame as bytes on the wire: the 9-byte header, then `payload`.
pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let length = payload.len() as u32;
    assert!(length < 1 << 24, "a frame payload fits in 24 bits");
    let mut bytes = Vec::with_capacity(9 + payload.len());
    bytes.extend_from_slice(&length.to_be_bytes()[1..]);
    bytes.push(kind);
    bytes.push(flags);
    bytes.extend_from_slice(&(stream & 0x7fff_ffff).to_be_bytes());
    bytes.extend_from_slice(payload);
    bytes
}

/// A SETTINGS frame with `settings` (identifier, value).
pub fn settings(settings: &[(u16, u32)]) -> Vec<u8> {
    let mut payload = Vec::new();
    for (id, value) in settings {
        payload.extend_from_slice(&id.to_be_bytes());
        payload.extend_from_slice(&value.to_be_bytes());
    }
    frame(SETTINGS, 0, 0, &payload)
}

/// A WINDOW_UPDATE frame: `increment` more bytes on `stream` (0: the connection).
pub fn window_update(stream: u32, increment: u32) -> Vec<u8> {
    frame(WINDOW_UPDATE, 0, stream, &increment.to_be_bytes())
}

/// An RST_STREAM frame with `code`.
pub fn rst_stream(stream: u32, code: u32) -> Vec<u8> {
    frame(RST_STREAM, 0, stream, &code.to_be_bytes())
}

/// An HPACK integer with an `prefix_bits`-bit prefix, the first byte's high
/// bits set to `first` (RFC 7541 §5.1).
pub fn hpack_integer(out: &mut Vec<u8>, first: u8, prefix_bits: u32, mut value: usize) {
    let max = (1usize << prefix_bits) - 1;
    if value < max {
        out.push(first | value as u8);
        return;
    }
    out.push(first | max as u8);
    value -= max;
    while value >= 128 {
        out.push((value % 128) as u8 | 0x80);
        value /= 128;
    }
    out.push(value as u8);
}

/// An HPACK string literal, not Huffman coded.
pub fn hpack_string(out: &mut Vec<u8>, text: &[u8]) {
    hpack_integer(out, 0x00, 7, text.len());
    out.extend_from_slice(text);
}

/// A header field as a literal without indexing, new name (RFC 7541 §6.2.2).
pub fn literal(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(0x00);
    hpack_string(out, name.as_bytes());
    hpack_string(out, value);
}

/// A header field as a literal that the decoder adds to its dynamic table,
/// new name (RFC 7541 §6.2.1): afterwards index 62 refers to it.
pub fn literal_indexed(out: &mut Vec<u8>, name: &str, value: &[u8]) {
    out.push(0x40);
    hpack_string(out, name.as_bytes());
    hpack_string(out, value);
}

/// The header block of `method path` with `extra` fields.
pub fn request_block(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<u8> {
    let mut block = Vec::new();
    literal(&mut block, ":method", method.as_bytes());
    literal(&mut block, ":scheme", b"http");
    literal(&mut block, ":path", path.as_bytes());
    literal(&mut block, ":authority", b"localhost");
    for (name, value) in extra {
        literal(&mut block, name, value.as_bytes());
    }
    block
}

/// A HEADERS frame opening `stream` with a `GET path` (ending the stream).
pub fn get(stream: u32, path: &str) -> Vec<u8> {
    frame(
        HEADERS,
        END_HEADERS | END_STREAM,
        stream,
        &request_block("GET", path, &[]),
    )
}

/// A frame the server sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Frame {
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
    pub payload: Vec<u8>,
}

impl Frame {
    /// For a GOAWAY: the last stream id and the error code.
    pub fn goaway(&self) -> Option<(u32, u32)> {
        if self.kind != GOAWAY || self.payload.len() < 8 {
            return None;
        }
        let word = |at: usize| u32::from_be_bytes(self.payload[at..at + 4].try_into().unwrap());
        Some((word(0) & 0x7fff_ffff, word(4)))
    }

    /// For a HEADERS frame of a response: the `:status`, if the block
    /// starts with it in a form the server's encoder uses (an index of the
    /// static table, or a literal with the static name of index 8).
    pub fn status(&self) -> Option<u16> {
        if self.kind != HEADERS {
            return None;
        }
        let block = &self.payload;
        let first = *block.first()?;
        let indexed = [
            (0x88, 200),
            (0x89, 204),
            (0x8a, 206),
            (0x8b, 304),
            (0x8c, 400),
            (0x8d, 404),
            (0x8e, 500),
        ];
        if let Some((_, status)) = indexed.iter().find(|(byte, _)| *byte == first) {
            return Some(*status);
        }
        // A literal whose name is static index 8..=14 (`:status`), 4-bit or
        // 6-bit prefix: the value is three digits, not Huffman coded, or
        // Huffman coded (h2 codes it when shorter; decode the digits only).
        let name_index = match first {
            0x40..=0x7f => first & 0x3f,
            0x00..=0x1f => first & 0x0f,
            _ => return None,
        };
        if !(8..=14).contains(&name_index) {
            return None;
        }
        let length_byte = *block.get(1)?;
        let length = usize::from(length_byte & 0x7f);
        let value = block.get(2..2 + length)?;
        if length_byte & 0x80 == 0 {
            return std::str::from_utf8(value).ok()?.parse().ok();
        }
        huffman_digits(value)
    }
}

/// Three decimal digits Huffman coded (RFC 7541 Appendix B: the digits
/// 0-2 have 5-bit codes 0x0..=0x2, 3-9 have 6-bit codes 0x19..=0x1f).
fn huffman_digits(bytes: &[u8]) -> Option<u16> {
    let mut bits = 0u64;
    for byte in bytes {
        bits = (bits << 8) | u64::from(*byte);
    }
    let mut left = bytes.len() as u32 * 8;
    let mut status = 0u16;
    for _ in 0..3 {
        let five = (bits >> (left - 5)) & 0x1f;
        let digit = if five <= 2 {
            left -= 5;
            five
        } else {
            let six = (bits >> (left - 6)) & 0x3f;
            left -= 6;
            six.checked_sub(0x19)? + 3
        };
        status = status * 10 + digit as u16;
    }
    Some(status)
}

/// How a connection ended for the client.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ended {
    /// The server sent GOAWAY with this code (and may have closed since).
    GoAway { last_stream: u32, code: u32 },
    /// The server closed (or reset) the connection without a GOAWAY.
    Closed,
    /// Neither happened within the wait.
    StillOpen,
}

/// One client connection that speaks raw frames.
pub struct RawH2 {
    stream: TcpStream,
    buf: Vec<u8>,
    closed: bool,
}

impl RawH2 {
    /// Connect, send the preface and an empty SETTINGS frame.
    pub fn connect(addr: SocketAddr) -> RawH2 {
        Self::connect_with(addr, &[])
    }

    /// Connect, send the preface and SETTINGS with `initial` values.
    pub fn connect_with(addr: SocketAddr, initial: &[(u16, u32)]) -> RawH2 {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).unwrap();
        stream
            .set_write_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut client = RawH2 {
            stream,
            buf: Vec::new(),
            closed: false,
        };
        let mut opening = PREFACE.to_vec();
        opening.extend_from_slice(&settings(initial));
        client.send(&opening).expect("send the preface");
        client
    }

    /// Write `bytes` (one or more frames); an error once the server closed.
    pub fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The next frame, waiting at most `within`; `None` on close or timeout
    /// (see [`RawH2::is_closed`]).
    pub fn next_frame(&mut self, within: Duration) -> Option<Frame> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(frame) = self.take_frame() {
                return Some(frame);
            }
            if self.closed {
                return None;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            self.fill(left);
        }
    }

    /// Whether the server closed the connection.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Read frames (answering nothing) until a GOAWAY or a close, at most `within`.
    pub fn until_cut_off(&mut self, within: Duration) -> Ended {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next_frame(left) {
                Some(frame) => {
                    if let Some((last_stream, code)) = frame.goaway() {
                        return Ended::GoAway { last_stream, code };
                    }
                }
                None if self.closed => return Ended::Closed,
                None => return Ended::StillOpen,
            }
        }
    }

    /// Read whatever has arrived, without blocking for long; returns the
    /// GOAWAY if one came, and notes a close. For attack loops that write
    /// fast and look at answers in passing.
    pub fn drain_incoming(&mut self) -> Option<Ended> {
        self.fill(Duration::from_millis(1));
        while let Some(frame) = self.take_frame() {
            if let Some((last_stream, code)) = frame.goaway() {
                return Some(Ended::GoAway { last_stream, code });
            }
        }
        self.closed.then_some(Ended::Closed)
    }

    fn fill(&mut self, within: Duration) {
        let mut chunk = [0u8; 64 * 1024];
        self.stream
            .set_read_timeout(Some(within.max(Duration::from_millis(1))))
            .unwrap();
        match self.stream.read(&mut chunk) {
            Ok(0) => self.closed = true,
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(_) => self.closed = true,
        }
    }

    fn take_frame(&mut self) -> Option<Frame> {
        if self.buf.len() < 9 {
            return None;
        }
        let length = u32::from_be_bytes([0, self.buf[0], self.buf[1], self.buf[2]]) as usize;
        if self.buf.len() < 9 + length {
            return None;
        }
        let frame = Frame {
            kind: self.buf[3],
            flags: self.buf[4],
            stream: u32::from_be_bytes(self.buf[5..9].try_into().unwrap()) & 0x7fff_ffff,
            payload: self.buf[9..9 + length].to_vec(),
        };
        self.buf.drain(..9 + length);
        Some(frame)
    }
}
