//! The one raw HTTP/1.1 client, over any [`Transport`] (TCP, a Unix socket,
//! an in-memory pipe): bytes out as given, responses in through
//! [`parse_response`], every read and write under a timeout.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use super::response::{parse_response, HttpResponse};

/// Longest a connect, a write, or a wait for one response may take.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// How the server ended a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closed {
    /// An orderly close (FIN): the client read end-of-file.
    Eof,
    /// A reset (RST).
    Reset,
}

/// A connected byte stream the client reads and writes, blocking.
pub trait Transport {
    /// Reads once into `buf`, waiting at most `timeout`: `Ok(0)` is
    /// end-of-file, a `TimedOut` or `WouldBlock` error means nothing came.
    fn read_within(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize>;

    /// Writes all of `bytes`, waiting at most [`READ_TIMEOUT`].
    fn write_all_within_timeout(&mut self, bytes: &[u8]) -> io::Result<()>;
}

impl Transport for TcpStream {
    fn read_within(&mut self, buf: &mut [u8], timeout: Duration) -> io::Result<usize> {
        // A zero timeout would mean "block forever".
        self.set_read_timeout(Some(timeout.max(Duration::from_millis(1))))?;
        self.read(buf)
    }

    fn write_all_within_timeout(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.write_all(bytes)
    }
}

/// A raw HTTP/1.1 client over one connection of type `S`; [`Client`] (TCP),
/// `UnixClient` and `MemoryClient` name the three kinds.
pub struct RawClient<S> {
    stream: S,
    /// Bytes received but not yet taken by a response.
    buf: Vec<u8>,
    /// The server has closed its side: a read returned end-of-file.
    eof: bool,
}

/// The client over TCP.
pub type Client = RawClient<TcpStream>;

impl Client {
    /// Connects to `addr` with `TCP_NODELAY` and [`READ_TIMEOUT`] on reads and writes; panics if it cannot.
    pub fn connect(addr: SocketAddr) -> Client {
        Client::try_connect(addr, READ_TIMEOUT).unwrap_or_else(|e| panic!("connect to {addr}: {e}"))
    }

    /// Connects to `addr` within `within`, returning the error instead.
    pub fn try_connect(addr: SocketAddr, within: Duration) -> io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, within)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_TIMEOUT))?;
        stream.set_write_timeout(Some(READ_TIMEOUT))?;
        Ok(RawClient::new(stream))
    }
}

impl<S: Transport> RawClient<S> {
    /// Wraps a connected `stream` whose writes time out after [`READ_TIMEOUT`].
    pub fn new(stream: S) -> RawClient<S> {
        RawClient {
            stream,
            buf: Vec::new(),
            eof: false,
        }
    }

    /// The stream, for tests that need its addresses or write from another thread (`try_clone`).
    pub fn stream(&self) -> &S {
        &self.stream
    }

    /// Writes all of `bytes`; panics if the write fails.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.try_send(bytes).expect("send");
    }

    /// Writes all of `bytes`, returning the error instead (the server may have closed already).
    pub fn try_send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        self.stream.write_all_within_timeout(bytes.as_ref())
    }

    /// Sends `GET path` and returns its response; panics if none arrives.
    pub fn get(&mut self, path: &str) -> HttpResponse {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"));
        self.response()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
    }

    /// Reads the next response to a request that is not `HEAD` (an interim 1xx counts as one), waiting at most [`READ_TIMEOUT`].
    pub fn response(&mut self) -> io::Result<HttpResponse> {
        self.read_response("GET", READ_TIMEOUT)
    }

    /// Reads the next response to a request that is not `HEAD`, waiting at most `within`.
    pub fn response_within(&mut self, within: Duration) -> io::Result<HttpResponse> {
        self.read_response("GET", within)
    }

    /// Reads the next response to a `HEAD` request: no body, whatever its headers say.
    pub fn response_to_head(&mut self) -> io::Result<HttpResponse> {
        self.read_response("HEAD", READ_TIMEOUT)
    }

    /// Reads the next `n` responses to requests that are not `HEAD`.
    pub fn responses(&mut self, n: usize) -> io::Result<Vec<HttpResponse>> {
        (0..n).map(|_| self.response()).collect()
    }

    /// Returns the next response to a `method` request once complete; an error on a malformed response, a close or reset before it is complete, or `within` passing.
    fn read_response(&mut self, method: &str, within: Duration) -> io::Result<HttpResponse> {
        let until = Instant::now() + within;
        loop {
            if let Some((response, used)) = parse_response(&self.buf, method, self.eof)? {
                self.buf.drain(..used);
                return Ok(response);
            }
            let failed = |kind: ErrorKind, why: &str, buf: &[u8]| {
                io::Error::new(
                    kind,
                    format!(
                        "{why} before a complete response; got so far {:?}",
                        String::from_utf8_lossy(buf)
                    ),
                )
            };
            if self.eof {
                return Err(failed(ErrorKind::UnexpectedEof, "closed", &self.buf));
            }
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(failed(
                    ErrorKind::TimedOut,
                    &format!("{within:?} passed"),
                    &self.buf,
                ));
            }
            if let Err(e) = self.fill(left) {
                return Err(failed(e.kind(), &format!("read failed ({e})"), &self.buf));
            }
        }
    }

    /// Asserts no byte beyond the responses already read arrives before the server closes, within `within`; returns how it closed.
    pub fn expect_nothing_more_then_close(&mut self, within: Duration) -> Closed {
        let (closed, bytes) = self.read_until_closed(within);
        assert!(
            bytes.is_empty(),
            "expected the connection to close with nothing more, got {:?}",
            String::from_utf8_lossy(&bytes)
        );
        closed
    }

    /// Reads until the server closes; returns how it closed and every byte not yet taken by a response; panics if the connection is still open after `within`.
    pub fn read_until_closed(&mut self, within: Duration) -> (Closed, Vec<u8>) {
        match self.wait_for_close(within) {
            Ok(closed) => (closed, std::mem::take(&mut self.buf)),
            Err(e) if e.kind() == ErrorKind::TimedOut => panic!(
                "connection still open after {within:?}; read {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) => panic!("expected a close, got error {e}"),
        }
    }

    /// Reads until the server closes (or the connection fails), at most `within`; returns whether it did.
    pub fn closes_within(&mut self, within: Duration) -> bool {
        match self.wait_for_close(within) {
            Ok(_) => true,
            Err(e) => e.kind() != ErrorKind::TimedOut,
        }
    }

    /// Reads until the server closes, at most `within`: how it closed, a
    /// `TimedOut` error if it is still open, or the error that ended the reading.
    fn wait_for_close(&mut self, within: Duration) -> io::Result<Closed> {
        let until = Instant::now() + within;
        while !self.eof {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(ErrorKind::TimedOut.into());
            }
            match self.fill(left) {
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        ErrorKind::ConnectionReset | ErrorKind::ConnectionAborted
                    ) =>
                {
                    return Ok(Closed::Reset)
                }
                Err(e) => return Err(e),
            }
        }
        Ok(Closed::Eof)
    }

    /// Asserts nothing arrives (no byte, no close) for `quiet`, with nothing unread before.
    pub fn expect_silent_and_open(&mut self, quiet: Duration) {
        assert!(
            self.buf.is_empty() && !self.eof,
            "already received {:?} (closed: {})",
            String::from_utf8_lossy(&self.buf),
            self.eof
        );
        match self.fill(quiet) {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(0) => panic!("the server closed the connection while it should have waited"),
            Ok(_) => panic!(
                "unexpected bytes while waiting: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Err(e) => panic!("the connection failed while it should have waited: {e}"),
        }
    }

    /// Reads once, waiting at most `timeout`, into the buffer; returns how many bytes came (0: the server closed).
    fn fill(&mut self, timeout: Duration) -> io::Result<usize> {
        let mut chunk = [0u8; 16 * 1024];
        let n = loop {
            match self.stream.read_within(&mut chunk, timeout) {
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                other => break other?,
            }
        };
        self.buf.extend_from_slice(&chunk[..n]);
        self.eof |= n == 0;
        Ok(n)
    }
}
