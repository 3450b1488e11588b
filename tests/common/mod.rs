//! Helpers shared by the integration tests: start a server on an ephemeral
//! port, and a raw TCP client that reads whole HTTP/1.1 responses, with a
//! timeout on every read so no test can hang.

#![allow(dead_code)] // each test file uses a different subset

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use shardd::{app_fn, App, Config, Response, Server, ServerHandle, ShardContext, TechEmpower};

/// Longest any single read may block before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(3);

/// A test configuration: `shards` shards, ephemeral port, unpinned, short drain.
pub fn config(shards: usize) -> Config {
    Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)),
        shards,
        pin: false,
        drain_timeout_ms: 1_000,
        ..Config::default()
    }
}

/// Start `config` serving the TechEmpower app.
pub fn start(config: Config) -> ServerHandle {
    start_with(config, |_| TechEmpower)
}

/// Start `config` serving the app built by `app` on each shard.
pub fn start_with<F, A>(config: Config, app: F) -> ServerHandle
where
    F: Fn(&ShardContext) -> A + Send + Sync + 'static,
    A: App,
{
    Server::bind(config)
        .expect("bind 127.0.0.1:0")
        .spawn(app)
        .expect("spawn server")
}

/// An app that shows what the server handed it:
/// `/echo` answers `METHOD TARGET len=N body=BODY`; `/plaintext` and `/json`
/// as TechEmpower; anything else echoes the target with status 200 when the
/// path starts with `/path/`, else 404.
pub fn echo_app() -> impl App {
    app_fn(|req| match req.path() {
        "/echo" => Response::text(format!(
            "{} {} len={} body={}",
            req.method(),
            req.target(),
            req.body().len(),
            String::from_utf8_lossy(req.body())
        )),
        "/plaintext" => Response::text("Hello, World!"),
        path if path.starts_with("/path/") => Response::text(req.target().to_string()),
        _ => Response::not_found(),
    })
}

/// One parsed HTTP response.
#[derive(Debug, Clone)]
pub struct HttpResponse {
    /// e.g. `HTTP/1.1`.
    pub version: String,
    pub status: u16,
    pub reason: String,
    /// In the order received; names as sent.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// The only value of header `name` (case-insensitive); panics if repeated.
    pub fn header(&self, name: &str) -> Option<&str> {
        let mut values = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str());
        let first = values.next();
        assert!(
            values.next().is_none(),
            "header {name} sent more than once: {:?}",
            self.headers
        );
        first
    }

    pub fn body_str(&self) -> &str {
        std::str::from_utf8(&self.body).expect("body is UTF-8")
    }

    /// Whether the server announced it closes the connection.
    pub fn closes(&self) -> bool {
        self.header("Connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A raw HTTP/1.1 client over one TCP connection.
pub struct Client {
    pub stream: TcpStream,
    /// Bytes received but not yet parsed.
    buf: Vec<u8>,
}

impl Client {
    /// Connect with `TCP_NODELAY` and a read timeout.
    pub fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, READ_TIMEOUT)
            .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
        stream.set_nodelay(true).unwrap();
        stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// Write all of `bytes` in one call.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream.write_all(bytes.as_ref()).expect("send");
        self.stream.flush().unwrap();
    }

    /// Send `GET path` and read its response.
    pub fn get(&mut self, path: &str) -> HttpResponse {
        self.send(format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"));
        self.read_response()
    }

    /// Read more bytes into the buffer; panics on timeout, error or EOF.
    fn fill(&mut self, wanted: &str) {
        let mut chunk = [0u8; 8192];
        match self.stream.read(&mut chunk) {
            Ok(0) => panic!(
                "connection closed while waiting for {wanted}; got so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
            Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            Err(e) => panic!(
                "read failed ({e}) while waiting for {wanted}; got so far: {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    /// Read one response to a request that is not `HEAD`.
    pub fn read_response(&mut self) -> HttpResponse {
        self.read_response_to("GET")
    }

    /// Read one response to a request with `method` (`HEAD` responses have no body).
    pub fn read_response_to(&mut self, method: &str) -> HttpResponse {
        let head_end = loop {
            if let Some(i) = find(&self.buf, b"\r\n\r\n") {
                break i;
            }
            self.fill("a response head");
        };
        let head = std::str::from_utf8(&self.buf[..head_end])
            .unwrap_or_else(|_| panic!("response head is not UTF-8: {:?}", &self.buf))
            .to_string();
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap();
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_string();
        assert!(
            version.starts_with("HTTP/1."),
            "bad status line {status_line:?} (buffer: {:?})",
            String::from_utf8_lossy(&self.buf)
        );
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let reason = parts.next().unwrap_or_default().to_string();
        let headers: Vec<(String, String)> = lines
            .map(|line| {
                let (name, value) = line
                    .split_once(':')
                    .unwrap_or_else(|| panic!("bad header line {line:?}"));
                (name.to_string(), value.trim().to_string())
            })
            .collect();
        self.buf.drain(..head_end + 4);
        let mut response = HttpResponse {
            version,
            status,
            reason,
            headers,
            body: Vec::new(),
        };
        let bodyless = method == "HEAD" || status < 200 || status == 204 || status == 304;
        if !bodyless {
            let length: usize = response
                .header("Content-Length")
                .unwrap_or_else(|| panic!("no Content-Length in {head:?}"))
                .parse()
                .expect("numeric Content-Length");
            while self.buf.len() < length {
                self.fill("a response body");
            }
            response.body = self.buf.drain(..length).collect();
        }
        response
    }

    /// Read `n` responses to non-`HEAD` requests.
    pub fn read_responses(&mut self, n: usize) -> Vec<HttpResponse> {
        (0..n).map(|_| self.read_response()).collect()
    }

    /// Assert the server closes the connection with nothing more to say:
    /// EOF (or a reset) arrives within the read timeout, and no stray bytes.
    pub fn expect_closed(&mut self) {
        assert!(
            self.buf.is_empty(),
            "unexpected bytes before close: {:?}",
            String::from_utf8_lossy(&self.buf)
        );
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected close, got {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                panic!("the server kept the connection open ({READ_TIMEOUT:?} without EOF)")
            }
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("expected close, got error {e}"),
        }
    }

    /// Assert nothing arrives and the connection stays open for `wait`.
    pub fn expect_open_and_silent(&mut self, wait: Duration) {
        assert!(self.buf.is_empty());
        self.stream.set_read_timeout(Some(wait)).unwrap();
        let mut chunk = [0u8; 1024];
        let result = self.stream.read(&mut chunk);
        self.stream.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        match result {
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Ok(0) => panic!("the server closed the connection"),
            Ok(n) => panic!(
                "unexpected bytes: {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) => panic!("connection failed: {e}"),
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Poll `check` every 5 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut check: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + timeout;
    loop {
        if check() {
            return true;
        }
        if Instant::now() >= until {
            return false;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Assert `value` is an IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`) with
/// the right weekday, within a few seconds of now.
pub fn assert_valid_date(value: &str) {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"]; // 1970-01-01 was a Thursday
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    fn fail(value: &str) -> ! {
        panic!("Date {value:?} is not an IMF-fixdate")
    }
    let b = value.as_bytes();
    if b.len() != 29 || &value[3..5] != ", " || &value[25..] != " GMT" {
        fail(value);
    }
    let num = |range: std::ops::Range<usize>| -> i64 {
        let text = &value[range];
        if !text.bytes().all(|c| c.is_ascii_digit()) {
            fail(value);
        }
        text.parse().unwrap()
    };
    let (day, year) = (num(5..7), num(12..16));
    let (hour, minute, second) = (num(17..19), num(20..22), num(23..25));
    if b[7] != b' ' || b[11] != b' ' || b[16] != b' ' || b[19] != b':' || b[22] != b':' {
        fail(value);
    }
    let month = MONTHS
        .iter()
        .position(|m| *m == &value[8..11])
        .unwrap_or_else(|| fail(value)) as i64
        + 1;
    if !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        fail(value);
    }
    // Days since 1970-01-01 (Howard Hinnant's days_from_civil).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    assert_eq!(
        &value[..3],
        DAYS[days.rem_euclid(7) as usize],
        "Date {value:?} has the wrong weekday"
    );
    let secs = days * 86_400 + hour * 3_600 + minute * 60 + second;
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!(
        (secs - now).abs() <= 5,
        "Date {value:?} is {} s away from now",
        secs - now
    );
}
