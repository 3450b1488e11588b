//! The PROXY protocol (`proxy_protocol = true`) over raw sockets: the
//! header in the forms balancers send it (v1 text, v2 binary, LOCAL, with
//! the request in the same write or byte by byte), what a bad or late
//! header gets (closed unanswered, counted in the stats and on `/metrics`),
//! under TLS, and `Server::wrap_listener` decorating the built-in listeners
//! with the acceptor's admission control kept.
//!
//! Then behind a real HAProxy (Debian's `haproxy`; `apt-get install -y
//! haproxy`, `.ci/run` does it), started by the test on loopback with a
//! generated configuration: `mode tcp` with `send-proxy-v2` (health checks
//! on) and with `send-proxy`, TLS passed through with `send-proxy-v2`, and
//! cleartext HTTP/2 (prior knowledge) after a `send-proxy-v2` header, and
//! static files sent with `sendfile(2)` behind `send-proxy-v2`.
//! Without HAProxy those tests fail, they do not skip; `HAPROXY=/path`
//! picks another binary.

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, Ipv6Addr, SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardd::files::{StaticSettings, WithStaticFiles};
use shardd::listeners::{BuiltinListener, ProxyProtocol, ProxyProtocolSettings};
use shardd::{
    app_fn, Accepted, AccessLogTarget, App, Config, Listener, ListenerMode, PeerAddr, Response,
    Server, ServerHandle, TlsConfig,
};
use support::{config, haproxy_binary, parse_response, Client, H2Client, HttpResponse};

const WITHIN: Duration = Duration::from_secs(5);
/// The header timeout of these tests' servers (short, so the timeout test is quick).
const HEADER_TIMEOUT: Duration = Duration::from_millis(500);
const REQUEST: &[u8] = b"GET /peer HTTP/1.1\r\nHost: x\r\n\r\n";

/// Answers every request with the peer it was handed.
fn peer_app() -> impl App {
    app_fn(|req| Response::text(req.peer().to_string()))
}

/// One or two shards with the PROXY protocol on, a short header timeout and the admin port.
fn proxy_config(shards: usize, listener: ListenerMode) -> Config {
    Config {
        listener,
        proxy_protocol: true,
        proxy_header_timeout_ms: HEADER_TIMEOUT.as_millis() as u64,
        admin: Some(SocketAddr::from(([127, 0, 0, 1], 0))),
        ..config(shards)
    }
}

struct Running {
    handle: ServerHandle,
    addr: SocketAddr,
}

fn start(config: Config) -> Running {
    let handle = Server::bind(config)
        .expect("bind")
        .serve(|_| peer_app())
        .expect("serve");
    let addr = handle.local_addr().unwrap();
    Running { handle, addr }
}

impl Running {
    fn connect(&self) -> Client {
        Client::connect(self.addr)
    }

    /// Establish failures and timeouts over all shards.
    fn establish_errors(&self) -> (u64, u64) {
        let stats = self.handle.stats();
        stats.shards.iter().fold((0, 0), |(f, t), shard| {
            (f + shard.establish_failures, t + shard.establish_timeouts)
        })
    }

    fn wait_establish_errors(&self, expected: (u64, u64)) {
        support::poll_until(
            "establish failures and timeouts",
            WITHIN,
            || self.establish_errors(),
            |&counts| counts == expected,
        );
    }

    /// The sum over shards of a counter on `/metrics`.
    fn metric(&self, name: &str) -> f64 {
        let admin = self.handle.admin_addr().unwrap();
        let text = Client::connect(admin).get("/metrics").body_str().to_owned();
        let prefix = format!("{name}{{");
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with(&prefix)).collect();
        assert!(!lines.is_empty(), "no {name} on /metrics:\n{text}");
        lines
            .iter()
            .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
            .sum()
    }
}

/// A v1 header from `client` to `server`.
fn v1(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    let family = if client.is_ipv4() { "TCP4" } else { "TCP6" };
    format!(
        "PROXY {family} {} {} {} {}\r\n",
        client.ip(),
        server.ip(),
        client.port(),
        server.port()
    )
    .into_bytes()
}

/// A v2 header: `command` 0x20 (LOCAL) or 0x21 (PROXY), `family` byte,
/// then the addresses (and whatever else) in `body`.
fn v2_raw(command: u8, family: u8, body: &[u8]) -> Vec<u8> {
    let mut bytes = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    bytes.extend_from_slice(&[command, family]);
    bytes.extend_from_slice(&(body.len() as u16).to_be_bytes());
    bytes.extend_from_slice(body);
    bytes
}

/// A v2 PROXY header from `client` to `server` (both IPv4 or both IPv6).
fn v2(client: SocketAddr, server: SocketAddr) -> Vec<u8> {
    let mut body = Vec::new();
    let family = match (client.ip(), server.ip()) {
        (IpAddr::V4(c), IpAddr::V4(s)) => {
            body.extend_from_slice(&c.octets());
            body.extend_from_slice(&s.octets());
            0x11
        }
        (IpAddr::V6(c), IpAddr::V6(s)) => {
            body.extend_from_slice(&c.octets());
            body.extend_from_slice(&s.octets());
            0x21
        }
        _ => panic!("mixed families"),
    };
    body.extend_from_slice(&client.port().to_be_bytes());
    body.extend_from_slice(&server.port().to_be_bytes());
    // A TLV the server must skip (PP2_TYPE_AUTHORITY).
    body.extend_from_slice(&[0x02, 0x00, 0x09]);
    body.extend_from_slice(b"localhost");
    v2_raw(0x21, family, &body)
}

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

fn send_and_read(client: &mut Client, bytes: &[u8]) -> HttpResponse {
    client.send(bytes);
    client.response().expect("a response")
}

#[test]
fn v1_and_v2_headers_with_the_request_in_the_same_write_give_the_client_address() {
    for mode in [ListenerMode::Handoff, ListenerMode::Reuseport] {
        let server = start(proxy_config(2, mode));
        let cases = [
            (v1(addr("192.0.2.1:56324"), server.addr), "192.0.2.1:56324"),
            (
                v1(addr("[2001:db8::7]:4000"), addr("[2001:db8::1]:80")),
                "[2001:db8::7]:4000",
            ),
            (
                v2(addr("198.51.100.9:1234"), server.addr),
                "198.51.100.9:1234",
            ),
            (
                v2(addr("[2001:db8::9]:5555"), addr("[2001:db8::1]:443")),
                "[2001:db8::9]:5555",
            ),
        ];
        for (header, expected) in cases {
            let mut client = server.connect();
            let response = send_and_read(&mut client, &[&header[..], REQUEST].concat());
            assert_eq!(response.status, 200, "{mode:?} {expected}");
            assert_eq!(response.body_str(), expected, "{mode:?}");
            // The next request on the same connection keeps the client.
            let response = send_and_read(&mut client, REQUEST);
            assert_eq!(response.body_str(), expected, "{mode:?}, second request");
        }
        assert_eq!(server.establish_errors(), (0, 0));
    }
}

#[test]
fn a_header_sent_byte_by_byte_then_the_request_is_served() {
    let server = start(proxy_config(1, ListenerMode::Handoff));
    for header in [
        v1(addr("192.0.2.1:56324"), server.addr),
        v2(addr("192.0.2.2:56325"), server.addr),
    ] {
        let mut client = server.connect();
        for byte in &header {
            client.send([*byte]);
            std::thread::sleep(Duration::from_millis(2));
        }
        let response = send_and_read(&mut client, REQUEST);
        assert_eq!(response.status, 200);
        assert!(response.body_str().starts_with("192.0.2."), "{response:?}");
    }
}

#[test]
fn v2_local_and_v1_unknown_keep_the_balancers_own_address() {
    let server = start(proxy_config(1, ListenerMode::Handoff));
    for header in [
        v2_raw(0x20, 0x00, &[]),
        b"PROXY UNKNOWN\r\n".to_vec(),
        v2_raw(0x21, 0x00, &[]),
    ] {
        let mut client = server.connect();
        let own = client.stream().local_addr().unwrap();
        let response = send_and_read(&mut client, &[&header[..], REQUEST].concat());
        assert_eq!(response.body_str(), own.to_string());
    }
}

#[test]
fn bad_headers_close_the_connection_unanswered_and_are_counted() {
    let server = start(proxy_config(2, ListenerMode::Handoff));
    let oversized_v2 = {
        let mut bytes = v2_raw(0x21, 0x11, &[]);
        bytes[14..16].copy_from_slice(&5000u16.to_be_bytes());
        bytes
    };
    let cases: [(&str, Vec<u8>); 6] = [
        (
            "malformed v1",
            b"PROXY TCP4 192.0.2.1 nonsense 1 2\r\n".to_vec(),
        ),
        ("malformed v2", v2_raw(0x23, 0x11, &[0; 12])),
        ("v2 too short for IPv6", v2_raw(0x21, 0x21, &[0; 12])),
        (
            "oversized v1",
            [b"PROXY TCP4 ".as_slice(), &[b'1'; 150]].concat(),
        ),
        ("oversized v2", oversized_v2),
        ("absent", REQUEST.to_vec()),
    ];
    for (what, bytes) in &cases {
        let mut client = server.connect();
        client.send([&bytes[..], REQUEST].concat());
        let started = Instant::now();
        client.expect_nothing_more_then_close(WITHIN);
        // Refused at once, not at the header timeout.
        assert!(
            started.elapsed() < HEADER_TIMEOUT,
            "{what}: {:?}",
            started.elapsed()
        );
    }
    server.wait_establish_errors((cases.len() as u64, 0));
    let failures = server.metric("shardd_connection_establish_failures_total");
    assert_eq!(failures, cases.len() as f64);
    // The shard is fine: a good connection is served.
    let mut client = server.connect();
    let header = v1(addr("192.0.2.1:7"), server.addr);
    let response = send_and_read(&mut client, &[&header[..], REQUEST].concat());
    assert_eq!(response.body_str(), "192.0.2.1:7");
}

#[test]
fn a_client_closing_before_any_byte_is_no_error_but_one_closing_mid_header_is() {
    let config = Config {
        defer_accept: false,
        ..proxy_config(1, ListenerMode::Handoff)
    };
    let server = start(config);
    // A balancer's TCP health check: connect, close.
    drop(TcpStream::connect(server.addr).unwrap());
    support::wait_until("the check is accepted", WITHIN, || {
        server.handle.stats().shards[0].accepted == 1
    });
    support::wait_until("and closed", WITHIN, || {
        server.handle.stats().shards[0].open == 0
    });
    assert_eq!(server.establish_errors(), (0, 0));
    let mut half = TcpStream::connect(server.addr).unwrap();
    half.write_all(b"PROXY TCP4 ").unwrap();
    drop(half);
    server.wait_establish_errors((1, 0));
}

#[test]
fn a_header_that_never_completes_is_closed_at_the_header_timeout() {
    let server = start(proxy_config(1, ListenerMode::Handoff));
    for partial in [
        &b"PROXY TCP4 192.0.2.1 "[..],
        &v2(addr("192.0.2.1:1"), server.addr)[..20],
    ] {
        let mut client = server.connect();
        client.send(partial);
        let started = Instant::now();
        client.expect_nothing_more_then_close(WITHIN);
        let took = started.elapsed();
        assert!(
            took >= HEADER_TIMEOUT - Duration::from_millis(50) && took < HEADER_TIMEOUT * 4,
            "closed after {took:?}, the header timeout is {HEADER_TIMEOUT:?}"
        );
    }
    server.wait_establish_errors((0, 2));
    assert_eq!(
        server.metric("shardd_connection_establish_timeouts_total"),
        2.0
    );
}

#[test]
fn a_slow_header_does_not_hold_up_the_other_connections_of_its_shard() {
    let mut config = proxy_config(1, ListenerMode::Handoff);
    config.proxy_header_timeout_ms = 10_000;
    let server = start(config);
    let mut slow = server.connect();
    slow.send(b"PROXY TCP4 192.0.2.1 ");
    // Accepted and waiting for the rest of its header on the only shard.
    support::wait_until("the slow connection is open", WITHIN, || {
        server.handle.stats().shards[0].open == 1
    });
    for n in 0..5 {
        let mut client = server.connect();
        let started = Instant::now();
        let header = v2(addr(&format!("192.0.2.9:{}", 100 + n)), server.addr);
        let response = send_and_read(&mut client, &[&header[..], REQUEST].concat());
        assert_eq!(response.body_str(), format!("192.0.2.9:{}", 100 + n));
        assert!(started.elapsed() < Duration::from_secs(1));
    }
    // The slow client may still finish its header and be served.
    slow.send(b"198.51.100.1 5 80\r\n");
    let response = send_and_read(&mut slow, REQUEST);
    assert_eq!(response.body_str(), "192.0.2.1:5");
}

/// A directory for one test's files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path = std::env::temp_dir().join(format!("shardd-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn the_access_log_shows_the_client_from_the_header() {
    let dir = TempDir::new("proxy-access-log");
    let log = dir.0.join("access.log");
    let mut config = proxy_config(1, ListenerMode::Handoff);
    config.log.access_log = AccessLogTarget::File(log.clone());
    let server = start(config);
    let mut client = server.connect();
    let header = v2(addr("203.0.113.50:40000"), server.addr);
    let response = send_and_read(&mut client, &[&header[..], REQUEST].concat());
    assert_eq!(response.status, 200);
    drop(client);
    server.handle.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    let line = text.lines().find(|l| l.contains("/peer")).expect("a line");
    assert!(line.starts_with("203.0.113.50 "), "{line}");
}

// TLS under the PROXY protocol: the header comes first, then the handshake.

fn tls_client_config(cert: &rcgen::CertifiedKey) -> Arc<tokio_rustls::rustls::ClientConfig> {
    use tokio_rustls::rustls;
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    Arc::new(config)
}

/// A server with TLS (a self-signed certificate for `localhost`) and the
/// PROXY protocol; its directory and the client configuration that trusts it.
fn start_tls(mode: ListenerMode) -> (Running, TempDir, Arc<tokio_rustls::rustls::ClientConfig>) {
    let dir = TempDir::new(&format!("proxy-tls-{mode:?}"));
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let (cert_path, key_path) = (dir.0.join("cert.pem"), dir.0.join("key.pem"));
    std::fs::write(&cert_path, cert.cert.pem()).unwrap();
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).unwrap();
    let mut config = proxy_config(1, mode);
    config.tls = Some(TlsConfig::new(cert_path, key_path));
    (start(config), dir, tls_client_config(&cert))
}

/// Sends `header` in the clear, then `GET /peer` over TLS; the body, and
/// the client's own address.
fn tls_get(
    addr: SocketAddr,
    header: &[u8],
    config: Arc<tokio_rustls::rustls::ClientConfig>,
) -> (String, SocketAddr) {
    use tokio_rustls::rustls::pki_types::ServerName;
    use tokio_rustls::rustls::{ClientConnection, StreamOwned};
    let mut tcp = TcpStream::connect_timeout(&addr, WITHIN).unwrap();
    let own = tcp.local_addr().unwrap();
    tcp.set_read_timeout(Some(WITHIN)).unwrap();
    tcp.write_all(header).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let conn = ClientConnection::new(config, name).unwrap();
    let mut tls = StreamOwned::new(conn, tcp);
    tls.write_all(b"GET /peer HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut bytes = Vec::new();
    let _ = tls.read_to_end(&mut bytes);
    let (response, _) = parse_response(&bytes, "GET", false)
        .unwrap()
        .unwrap_or_else(|| panic!("no response in {:?}", String::from_utf8_lossy(&bytes)));
    (response.body_str().to_owned(), own)
}

#[test]
fn under_tls_the_header_comes_before_the_handshake() {
    for mode in [ListenerMode::Handoff, ListenerMode::Reuseport] {
        let (server, _dir, client_config) = start_tls(mode);
        let header = v2(addr("192.0.2.77:6000"), server.addr);
        let (body, _) = tls_get(server.addr, &header, client_config.clone());
        assert_eq!(body, "192.0.2.77:6000", "{mode:?}");
        let header = v1(addr("[2001:db8::77]:6001"), addr("[::1]:443"));
        let (body, _) = tls_get(server.addr, &header, client_config.clone());
        assert_eq!(body, "[2001:db8::77]:6001", "{mode:?}");
        // A TLS client without the header is refused before any handshake.
        let mut tcp = TcpStream::connect(server.addr).unwrap();
        tcp.write_all(&[0x16, 0x03, 0x01, 0x00, 0x05]).unwrap();
        tcp.set_read_timeout(Some(WITHIN)).unwrap();
        let mut byte = [0; 1];
        assert!(matches!(tcp.read(&mut byte), Ok(0) | Err(_)));
        server.wait_establish_errors((1, 0));
        let stats = server.handle.stats();
        assert_eq!(stats.shards[0].tls_handshakes, 2, "{mode:?}");
        assert_eq!(stats.shards[0].tls_handshake_failures, 0, "{mode:?}");
    }
}

// Server::wrap_listener: a decorator of the built-in listener.

/// Counts the connections its inner listener accepts.
struct Counting<L> {
    inner: L,
    accepted: Arc<AtomicUsize>,
}

impl<L: Listener> Listener for Counting<L> {
    type Conn = L::Conn;

    async fn accept(&mut self) -> std::io::Result<Option<Accepted<L::Conn>>> {
        let accepted = self.inner.accept().await?;
        if accepted.is_some() {
            self.accepted.fetch_add(1, SeqCst);
        }
        Ok(accepted)
    }

    async fn establish(conn: &mut L::Conn, peer: &mut PeerAddr) -> std::io::Result<()> {
        L::establish(conn, peer).await
    }

    fn stop_accepting(&mut self) {
        self.inner.stop_accepting();
    }
}

#[test]
fn a_wrapped_builtin_listener_keeps_the_acceptors_admission_control() {
    let accepted = Arc::new(AtomicUsize::new(0));
    let seen = accepted.clone();
    let mut config = config(1);
    config.admission.max_connections_per_shard = 1;
    config.admission.max_pending = 0;
    let handle = Server::bind(config)
        .unwrap()
        .wrap_listener(move |_shard, builtin: BuiltinListener| {
            assert_eq!(builtin.mode(), "handoff");
            Ok(Counting {
                inner: builtin,
                accepted: seen.clone(),
            })
        })
        .serve(|_| peer_app())
        .unwrap();
    let bound = handle.local_addr().unwrap();
    let mut first = Client::connect(bound);
    let own = first.stream().local_addr().unwrap();
    assert_eq!(
        send_and_read(&mut first, REQUEST).body_str(),
        own.to_string()
    );
    // The shard is full (the first connection is kept alive): the acceptor answers 503.
    let mut second = Client::connect(bound);
    second.send(REQUEST);
    let refused = second.response().expect("a 503");
    assert_eq!(refused.status, 503, "{refused:?}");
    assert_eq!(accepted.load(SeqCst), 1);
    // The drain stops the wrapped listener like the built-in one.
    handle.stop();
}

#[test]
fn wrap_listener_with_the_proxy_protocol_by_hand_in_reuseport_mode() {
    let config = Config {
        listener: ListenerMode::Reuseport,
        ..config(2)
    };
    let settings = ProxyProtocolSettings::with_header_timeout(HEADER_TIMEOUT);
    let handle = Server::bind(config)
        .unwrap()
        .wrap_listener(move |_shard, builtin| Ok(ProxyProtocol::new(builtin, settings)))
        .serve(|_| peer_app())
        .unwrap();
    let bound = handle.local_addr().unwrap();
    let server = Running {
        handle,
        addr: bound,
    };
    for n in 0..4u16 {
        let mut client = server.connect();
        let client_addr = SocketAddr::new(Ipv6Addr::LOCALHOST.into(), 9000 + n);
        let header = v2(client_addr, addr("[::1]:80"));
        let response = send_and_read(&mut client, &[&header[..], REQUEST].concat());
        assert_eq!(response.body_str(), client_addr.to_string());
    }
    let mut client = server.connect();
    client.send(REQUEST);
    client.expect_nothing_more_then_close(WITHIN);
    server.wait_establish_errors((1, 0));
}

// Behind a real HAProxy.

/// A port nobody listens on right now.
fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// HAProxy in the foreground (`-db`), killed by its PID on drop.
struct Haproxy {
    child: Child,
    _dir: TempDir,
}

/// What HAProxy connects to shardd from: not the client's 127.0.0.1, so
/// the server can only show 127.0.0.1 if it took it from the header.
const HAPROXY_SOURCE: &str = "127.0.0.3";

impl Haproxy {
    /// One `mode tcp` frontend per `(frontend, backend server, option)`:
    /// the option is `send-proxy` or `send-proxy-v2` (and whatever follows).
    fn start(routes: &[(SocketAddr, SocketAddr, &str)]) -> Haproxy {
        let dir = TempDir::new("haproxy");
        let mut config = String::from(
            "global\n    maxconn 256\n\
             defaults\n    mode tcp\n    timeout connect 5s\n    timeout client 30s\n    timeout server 30s\n",
        );
        for (n, (frontend, server, option)) in routes.iter().enumerate() {
            config += &format!(
                "frontend in{n}\n    bind {frontend}\n    default_backend out{n}\n\
                 backend out{n}\n    server shardd {server} source {HAPROXY_SOURCE} {option}\n"
            );
        }
        let path = dir.0.join("haproxy.cfg");
        std::fs::write(&path, &config).unwrap();
        let child = Command::new(haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("start haproxy");
        let haproxy = Haproxy { child, _dir: dir };
        for (frontend, _, _) in routes {
            support::wait_until("HAProxy listens", WITHIN, || {
                TcpStream::connect(frontend).is_ok()
            });
        }
        haproxy
    }
}

impl Drop for Haproxy {
    fn drop(&mut self) {
        // SAFETY: kill(2) on the pid of a child we started and have not reaped.
        unsafe { libc::kill(self.child.id() as libc::pid_t, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

#[test]
fn behind_haproxy_send_proxy_v2_and_v1_the_app_and_access_log_see_the_client() {
    let dir = TempDir::new("haproxy-access-log");
    let log = dir.0.join("access.log");
    let mut config = proxy_config(2, ListenerMode::Handoff);
    config.log.access_log = AccessLogTarget::File(log.clone());
    let server = start(config);
    let (v2_front, v1_front) = (free_addr(), free_addr());
    let _haproxy = Haproxy::start(&[
        // With health checks: v2 checks send a LOCAL header.
        (v2_front, server.addr, "send-proxy-v2 check inter 100ms"),
        (v1_front, server.addr, "send-proxy"),
    ]);
    let mut clients = Vec::new();
    for front in [v2_front, v1_front] {
        for _ in 0..3 {
            let mut client = Client::connect(front);
            let own = client.stream().local_addr().unwrap();
            for _ in 0..2 {
                let response = send_and_read(&mut client, REQUEST);
                assert_eq!(response.status, 200, "through {front}: {response:?}");
                assert_eq!(response.body_str(), own.to_string(), "through {front}");
            }
            clients.push(own);
        }
    }
    // Let a few health checks in, then look at the counts.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(server.establish_errors(), (0, 0));
    server.handle.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("/peer")).collect();
    assert_eq!(lines.len(), 12, "{text}");
    for line in lines {
        assert!(line.starts_with("127.0.0.1 "), "{line}");
    }
}

#[test]
fn behind_haproxy_tls_passed_through_with_send_proxy_v2() {
    for mode in [ListenerMode::Handoff, ListenerMode::Reuseport] {
        let (server, _dir, client_config) = start_tls(mode);
        let front = free_addr();
        let _haproxy = Haproxy::start(&[(front, server.addr, "send-proxy-v2")]);
        for _ in 0..3 {
            let (body, own) = tls_get(front, b"", client_config.clone());
            assert_eq!(body, own.to_string(), "{mode:?}");
        }
        let stats = server.handle.stats();
        assert_eq!(stats.shards[0].tls_handshakes, 3, "{mode:?}");
        assert_eq!(server.establish_errors(), (0, 0));
    }
}

/// An h2c connection through HAProxy's `send-proxy-v2`: the PROXY header,
/// then the HTTP/2 preface. Every stream is served as HTTP/2 and sees the
/// client HAProxy named, and so does the access log.
#[test]
fn behind_haproxy_send_proxy_v2_http2_streams_see_the_client() {
    let dir = TempDir::new("haproxy-http2");
    let log = dir.0.join("access.log");
    let mut config = proxy_config(1, ListenerMode::Handoff);
    config.log.access_log = AccessLogTarget::File(log.clone());
    let server = start(config);
    let front = free_addr();
    let _haproxy = Haproxy::start(&[(front, server.addr, "send-proxy-v2")]);
    for _ in 0..2 {
        let mut client = H2Client::connect(front);
        let own = client.local_addr.unwrap();
        for answer in client.get_many("/peer", 3) {
            assert_eq!(answer.status, 200, "{answer:?}");
            assert_eq!(answer.body_str(), own.to_string());
        }
    }
    let stats = server.handle.stats();
    assert_eq!(stats.shards[0].http2.connections, 2);
    assert_eq!(server.establish_errors(), (0, 0));
    server.handle.stop();
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| l.contains("/peer")).collect();
    assert_eq!(lines.len(), 6, "one line per stream: {text}");
    for line in lines {
        assert!(line.starts_with("127.0.0.1 "), "{line}");
        assert!(line.contains(r#""GET /peer HTTP/2.0" 200 "#), "{line}");
    }
}

/// Behind HAProxy's `send-proxy-v2`, a static file still goes out with
/// `sendfile(2)`: once its header is read, the PROXY protocol connection
/// writes straight to its TCP socket, so nothing needs to pass through
/// user space (counted per shard in `sendfile_bodies`).
#[test]
fn behind_haproxy_static_files_go_out_with_sendfile() {
    let dir = TempDir::new("haproxy-sendfile");
    let contents: Vec<u8> = (0..300_000u32).map(|i| (i % 253) as u8).collect();
    std::fs::write(dir.0.join("big.bin"), &contents).unwrap();
    for mode in [ListenerMode::Handoff, ListenerMode::Reuseport] {
        let mounts = vec![StaticSettings::new("/files", dir.0.clone())];
        let handle = Server::bind(proxy_config(1, mode))
            .expect("bind")
            .serve(move |_| {
                WithStaticFiles::open(&mounts, peer_app()).expect("the test's directory opens")
            })
            .expect("serve");
        let addr = handle.local_addr().unwrap();
        let front = free_addr();
        let _haproxy = Haproxy::start(&[(front, addr, "send-proxy-v2")]);
        let mut client = Client::connect(front);
        for _ in 0..2 {
            let response = client.get("/files/big.bin");
            assert_eq!(response.status, 200, "{mode:?}");
            assert!(response.body == contents, "{mode:?}: the file's bytes");
        }
        // The app behind the files still sees the client from the header.
        let own = client.stream().local_addr().unwrap();
        assert_eq!(client.get("/peer").body_str(), own.to_string());
        let stats = handle.stats();
        assert_eq!(stats.shards[0].sendfile_bodies, 2, "{mode:?}");
        handle.stop();
    }
}
