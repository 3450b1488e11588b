//! TLS over real sockets with a real rustls client: certificates are made
//! at test time with rcgen (a test CA and leaf certificates it signs).
//!
//! Every read has a timeout and every wait a deadline, so a misbehaving
//! server fails a test instead of hanging it.

mod support;

use std::io::{self, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering::SeqCst};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, SanType};
use shardd::{Config, ListenerMode, Server, StatsSnapshot, TechEmpower, TlsConfig};
use support::{config, parse_response, wait_until, HttpResponse, TestServer};
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{self, ClientConfig, ClientConnection, RootCertStore, StreamOwned};

/// Longest any single read may wait.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

const PLAINTEXT: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n";
const JSON: &[u8] = b"GET /json HTTP/1.1\r\nHost: localhost\r\n\r\n";

// ---------------------------------------------------------------------------
// Certificates

/// A test CA that signs leaf certificates for `localhost` and 127.0.0.1.
struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// A leaf certificate (with the CA after it: a chain) and its key, as PEM.
struct Leaf {
    chain_pem: String,
    key_pem: String,
    der: CertificateDer<'static>,
}

impl TestCa {
    fn new() -> TestCa {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "shardd test CA");
        let cert = params.self_signed(&key).unwrap();
        TestCa { cert, key }
    }

    fn leaf(&self, name: &str) -> Leaf {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec!["localhost".to_owned()]).unwrap();
        params
            .subject_alt_names
            .push(SanType::IpAddress([127, 0, 0, 1].into()));
        params.distinguished_name.push(DnType::CommonName, name);
        let cert = params.signed_by(&key, &self.cert, &self.key).unwrap();
        Leaf {
            chain_pem: format!("{}{}", cert.pem(), self.cert.pem()),
            key_pem: key.serialize_pem(),
            der: cert.der().clone(),
        }
    }

    fn client_config(
        &self,
        versions: &[&'static rustls::SupportedProtocolVersion],
    ) -> Arc<ClientConfig> {
        let mut roots = RootCertStore::empty();
        roots.add(self.cert.der().clone()).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(versions)
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Arc::new(config)
    }
}

/// A temporary directory for certificate files, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> TempDir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "shardd-tls-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, SeqCst)
        ));
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Writes `leaf` as cert.pem and key.pem (replacing what was there).
    fn install(&self, leaf: &Leaf) -> (PathBuf, PathBuf) {
        (
            self.write("cert.pem", &leaf.chain_pem),
            self.write("key.pem", &leaf.key_pem),
        )
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A TLS test server with its CA and certificate files.
struct TlsServer {
    server: TestServer,
    ca: TestCa,
    dir: TempDir,
    leaf: Leaf,
}

impl TlsServer {
    /// Serves TechEmpower over TLS with `config` (its `tls` set here).
    fn start(mut config: Config, handshake_timeout: Duration) -> TlsServer {
        let ca = TestCa::new();
        let dir = TempDir::new();
        let leaf = ca.leaf("leaf A");
        let (cert, key) = dir.install(&leaf);
        config.tls = Some(TlsConfig {
            handshake_timeout_ms: handshake_timeout.as_millis() as u64,
            ..TlsConfig::new(cert, key)
        });
        let server = TestServer::start_with(config, |_| TechEmpower);
        TlsServer {
            server,
            ca,
            dir,
            leaf,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    fn connect(&self) -> TlsClient {
        TlsClient::connect(self.addr(), self.ca.client_config(rustls::ALL_VERSIONS))
    }

    fn stats(&self) -> StatsSnapshot {
        self.server.stats()
    }

    fn wait_stats(&self, what: &str, check: impl Fn(&Tls) -> bool) -> Tls {
        let stats = self
            .server
            .wait_stats(what, READ_TIMEOUT, |stats| check(&Tls::of(stats)));
        Tls::of(&stats)
    }
}

/// The TLS counters of every shard, added up.
#[derive(Debug, Default, PartialEq, Eq)]
struct Tls {
    handshakes: u64,
    failures: u64,
    timeouts: u64,
    /// The connection loop's own timeouts (header, idle, ...).
    http_timeouts: u64,
}

impl Tls {
    fn of(stats: &StatsSnapshot) -> Tls {
        stats.shards.iter().fold(Tls::default(), |sum, shard| Tls {
            handshakes: sum.handshakes + shard.tls_handshakes,
            failures: sum.failures + shard.tls_handshake_failures,
            timeouts: sum.timeouts + shard.tls_handshake_timeouts,
            http_timeouts: sum.http_timeouts + shard.timeouts,
        })
    }
}

// ---------------------------------------------------------------------------
// The client

/// A blocking rustls client over one TCP connection.
struct TlsClient {
    stream: StreamOwned<ClientConnection, TcpStream>,
    buf: Vec<u8>,
}

impl TlsClient {
    /// Connects and completes the handshake; panics if either fails.
    fn connect(addr: SocketAddr, config: Arc<ClientConfig>) -> TlsClient {
        let tcp = TcpStream::connect_timeout(&addr, READ_TIMEOUT).unwrap();
        tcp.set_nodelay(true).unwrap();
        tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
        tcp.set_write_timeout(Some(READ_TIMEOUT)).unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let conn = ClientConnection::new(config, name).unwrap();
        let mut client = TlsClient {
            stream: StreamOwned::new(conn, tcp),
            buf: Vec::new(),
        };
        client.handshake().expect("TLS handshake");
        client
    }

    fn handshake(&mut self) -> io::Result<()> {
        while self.stream.conn.is_handshaking() {
            self.stream.conn.complete_io(&mut self.stream.sock)?;
        }
        Ok(())
    }

    /// The leaf certificate the server presented.
    fn server_cert(&self) -> CertificateDer<'static> {
        self.stream.conn.peer_certificates().unwrap()[0].clone()
    }

    fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
        self.stream.flush().unwrap();
    }

    fn response(&mut self) -> io::Result<HttpResponse> {
        let until = Instant::now() + READ_TIMEOUT;
        loop {
            if let Some((response, used)) = parse_response(&self.buf, "GET", false)? {
                self.buf.drain(..used);
                return Ok(response);
            }
            if Instant::now() >= until {
                return Err(ErrorKind::TimedOut.into());
            }
            let mut chunk = [0u8; 16 * 1024];
            match self.stream.read(&mut chunk)? {
                0 => return Err(ErrorKind::UnexpectedEof.into()),
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    fn get(&mut self, request: &[u8]) -> HttpResponse {
        self.send(request);
        self.response().expect("a response")
    }

    /// Asserts the server closes (close_notify or end of stream) within `within` with nothing more.
    fn expect_close(&mut self, within: Duration) {
        self.stream.sock.set_read_timeout(Some(within)).unwrap();
        let mut chunk = [0u8; 1024];
        match self.stream.read(&mut chunk) {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected a close, got {:?}",
                String::from_utf8_lossy(&chunk[..n])
            ),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => {}
            Err(e) => panic!("expected a close within {within:?}, got {e}"),
        }
    }
}

fn assert_plaintext(response: &HttpResponse) {
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, b"Hello, World!");
}

/// Waits until the server closes a raw TCP connection; returns how long that took.
fn closed_within(stream: &mut TcpStream, within: Duration) -> Duration {
    let started = Instant::now();
    let until = started + within;
    let mut chunk = [0u8; 4096];
    loop {
        let left = until.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "the connection is still open after {within:?}"
        );
        stream.set_read_timeout(Some(left)).unwrap();
        match stream.read(&mut chunk) {
            Ok(0) => return started.elapsed(),
            Ok(_) => {} // an alert
            Err(e) if e.kind() == ErrorKind::ConnectionReset => return started.elapsed(),
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
    }
}

// ---------------------------------------------------------------------------
// Serving over TLS

#[test]
fn plaintext_and_json_over_tls_1_3_and_1_2() {
    let server = TlsServer::start(config(2), Duration::from_secs(10));
    for version in [&rustls::version::TLS13, &rustls::version::TLS12] {
        let mut client = TlsClient::connect(server.addr(), server.ca.client_config(&[version]));
        assert_eq!(client.stream.conn.protocol_version(), Some(version.version));
        assert_eq!(client.stream.conn.alpn_protocol(), Some(&b"http/1.1"[..]));
        assert_eq!(
            client.server_cert(),
            server.leaf.der,
            "the configured certificate"
        );
        for _ in 0..3 {
            assert_plaintext(&client.get(PLAINTEXT));
            let json = client.get(JSON);
            assert_eq!(json.status, 200);
            assert_eq!(json.body, br#"{"message":"Hello, World!"}"#);
            assert_eq!(json.header("Content-Type"), Some("application/json"));
        }
    }
    let tls = server.wait_stats("two handshakes", |tls| tls.handshakes == 2);
    assert_eq!((tls.failures, tls.timeouts), (0, 0));
    assert_eq!(server.stats().requests(), 12);
}

#[test]
fn a_client_without_alpn_is_served_too() {
    let server = TlsServer::start(config(1), Duration::from_secs(10));
    let mut config = (*server.ca.client_config(rustls::ALL_VERSIONS)).clone();
    config.alpn_protocols.clear();
    let mut client = TlsClient::connect(server.addr(), Arc::new(config));
    assert_eq!(client.stream.conn.alpn_protocol(), None);
    assert_plaintext(&client.get(PLAINTEXT));
}

/// Handshake offering only `protocols` by ALPN; the protocol chosen, or the error.
fn handshake_offering(server: &TlsServer, protocols: &[&[u8]]) -> Result<Vec<u8>, String> {
    let mut config = (*server.ca.client_config(rustls::ALL_VERSIONS)).clone();
    config.alpn_protocols = protocols.iter().map(|p| p.to_vec()).collect();
    let tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut stream = StreamOwned::new(ClientConnection::new(Arc::new(config), name).unwrap(), tcp);
    loop {
        match stream.conn.complete_io(&mut stream.sock) {
            Ok(_) if stream.conn.is_handshaking() => continue,
            Ok(_) => return Ok(stream.conn.alpn_protocol().unwrap_or_default().to_vec()),
            Err(error) => return Err(error.to_string()),
        }
    }
}

#[test]
fn alpn_offers_h2_then_http11_and_refuses_a_protocol_it_does_not_speak() {
    let server = TlsServer::start(config(1), Duration::from_secs(10));
    assert_eq!(handshake_offering(&server, &[b"h2"]).unwrap(), b"h2");
    assert_eq!(
        handshake_offering(&server, &[b"http/1.1", b"h2"]).unwrap(),
        b"h2",
        "the server's preference: h2 first"
    );
    assert_eq!(
        handshake_offering(&server, &[b"http/1.1"]).unwrap(),
        b"http/1.1"
    );
    let error = handshake_offering(&server, &[b"spdy/3.1"]).unwrap_err();
    assert!(error.contains("NoApplicationProtocol"), "{error}");
    server.wait_stats("one failed handshake", |tls| tls.failures == 1);
}

#[test]
fn with_http2_off_a_client_asking_only_for_h2_is_refused() {
    let mut config = config(1);
    config.http2.enabled = false;
    let server = TlsServer::start(config, Duration::from_secs(10));
    let error = handshake_offering(&server, &[b"h2"]).unwrap_err();
    assert!(error.contains("NoApplicationProtocol"), "{error}");
    assert_eq!(
        handshake_offering(&server, &[b"h2", b"http/1.1"]).unwrap(),
        b"http/1.1"
    );
    server.wait_stats("one failed handshake", |tls| tls.failures == 1);
}

#[test]
fn pipelining_over_tls() {
    let server = TlsServer::start(config(2), Duration::from_secs(10));
    let mut client = server.connect();
    // 16 in one write, then 500 in one write (many TLS records each way).
    for depth in [16, 500] {
        client.send(&PLAINTEXT.repeat(depth));
        for _ in 0..depth {
            assert_plaintext(&client.response().unwrap());
        }
    }
    // Mixed, answered in order.
    client.send(&[PLAINTEXT, JSON, PLAINTEXT].concat());
    assert_eq!(client.response().unwrap().body, b"Hello, World!");
    assert_eq!(
        client.response().unwrap().body,
        br#"{"message":"Hello, World!"}"#
    );
    assert_eq!(client.response().unwrap().body, b"Hello, World!");
}

#[test]
fn reuseport_listener_over_tls() {
    let mut config = config(2);
    config.listener = ListenerMode::Reuseport;
    let server = TlsServer::start(config, Duration::from_secs(10));
    for _ in 0..4 {
        assert_plaintext(&server.connect().get(PLAINTEXT));
    }
}

// ---------------------------------------------------------------------------
// Reload

#[test]
fn certificate_reload_is_seen_by_new_connections_while_old_ones_keep_working() {
    let server = TlsServer::start(config(2), Duration::from_secs(10));
    let mut old = server.connect();
    assert_eq!(old.server_cert(), server.leaf.der);
    assert_plaintext(&old.get(PLAINTEXT));

    let leaf_b = server.ca.leaf("leaf B");
    server.dir.install(&leaf_b);
    server.server.handle.reload_tls().expect("reload");

    let mut new = server.connect();
    assert_eq!(
        new.server_cert(),
        leaf_b.der,
        "a new connection gets the new certificate"
    );
    assert_plaintext(&new.get(PLAINTEXT));
    // The old connection is untouched and still served.
    assert_eq!(old.server_cert(), server.leaf.der);
    assert_plaintext(&old.get(PLAINTEXT));
    assert_eq!(old.get(JSON).status, 200);

    // A bad new file: the reload fails naming it, and certificate B stays in force.
    let cert_path = server.dir.write("cert.pem", "not a certificate\n");
    let error = server.server.handle.reload_tls().unwrap_err().to_string();
    assert!(error.contains(cert_path.to_str().unwrap()), "{error}");
    let mismatched = server.ca.leaf("leaf C");
    server.dir.write("cert.pem", &mismatched.chain_pem); // key.pem is still B's
    let error = server.server.handle.reload_tls().unwrap_err().to_string();
    assert!(error.contains("does not match"), "{error}");
    let mut after = server.connect();
    assert_eq!(
        after.server_cert(),
        leaf_b.der,
        "the failed reload kept certificate B"
    );
    assert_plaintext(&after.get(PLAINTEXT));
    assert_plaintext(&old.get(PLAINTEXT));
}

#[test]
fn reload_without_tls_is_an_error() {
    let server = TestServer::start_with(config(1), |_| TechEmpower);
    assert!(server.handle.tls_reloader().is_none());
    assert!(server.handle.reload_tls().is_err());
}

// ---------------------------------------------------------------------------
// Bad certificates at start

#[test]
fn bad_certificate_or_key_is_refused_at_bind_naming_the_file() {
    let ca = TestCa::new();
    let dir = TempDir::new();
    let (cert, key) = dir.install(&ca.leaf("leaf A"));
    let other_key = dir.write("other-key.pem", &ca.leaf("leaf B").key_pem);
    let garbage = dir.write("garbage.pem", "-----BEGIN CERTIFICATE-----\nnot base64!\n");
    let empty = dir.write("empty.pem", "");
    let missing = dir.0.join("missing.pem");
    let cases: [(&Path, &Path, &Path, &str); 6] = [
        (&missing, &key, &missing, "cannot read"),
        (&cert, &missing, &missing, "cannot read"),
        (&garbage, &key, &garbage, "not valid PEM"),
        (&empty, &key, &empty, "no PEM certificate"),
        (&cert, &empty, &empty, "no PEM private key"),
        (&cert, &other_key, &other_key, "does not match"),
    ];
    for (cert, key, named, why) in cases {
        let mut config = config(1);
        config.tls = Some(TlsConfig::new(cert, key));
        let error = match Server::bind(config) {
            Ok(_) => panic!("cert {cert:?} key {key:?} was accepted"),
            Err(error) => error.to_string(),
        };
        assert!(
            error.contains(named.to_str().unwrap()),
            "{error} does not name {named:?}"
        );
        assert!(error.contains(why), "{error}: not {why:?}");
    }
}

#[test]
fn the_binary_exits_nonzero_naming_a_bad_certificate_or_key() {
    let ca = TestCa::new();
    let dir = TempDir::new();
    let (cert, key) = dir.install(&ca.leaf("leaf A"));
    let other_key = dir.write("other-key.pem", &ca.leaf("leaf B").key_pem);
    let missing = dir.0.join("missing.pem");
    let path = |p: &Path| p.to_str().unwrap().to_owned();
    let config_file = dir.write(
        "shardd.toml",
        &format!(
            "[tls]\ncert = {:?}\nkey = {:?}\n",
            path(&missing),
            path(&key)
        ),
    );
    let cases: [(Vec<String>, &Path); 4] = [
        (
            vec![
                "--tls-cert".into(),
                path(&missing),
                "--tls-key".into(),
                path(&key),
            ],
            &missing,
        ),
        (
            vec![
                "--tls-cert".into(),
                path(&cert),
                "--tls-key".into(),
                path(&other_key),
            ],
            &other_key,
        ),
        (vec!["--config".into(), path(&config_file)], &missing),
        (
            vec!["--tls-cert".into(), path(&cert)],
            Path::new("--tls-key"),
        ),
    ];
    for (args, named) in cases {
        let mut child = Command::new(env!("CARGO_BIN_EXE_shardd"))
            .args(["--bind", "127.0.0.1:0", "--shards", "1", "--no-pin"])
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let until = Instant::now() + Duration::from_secs(5);
        while child.try_wait().unwrap().is_none() {
            if Instant::now() > until {
                let _ = child.kill();
                panic!("shardd {args:?} still running after 5 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let output = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "shardd {args:?} succeeded: {stderr}"
        );
        assert!(
            stderr.contains(named.to_str().unwrap()),
            "shardd {args:?}: stderr does not name {named:?}: {stderr}"
        );
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

// ---------------------------------------------------------------------------
// Handshake timeout, bad clients, limits after the handshake

#[test]
fn a_silent_tls_client_is_closed_by_the_handshake_timeout() {
    // The same as the header timeout: the handshake timeout still closes first.
    let mut config = config(1);
    config.limits.header_timeout = Duration::from_millis(400);
    let server = TlsServer::start(config, Duration::from_millis(400));
    let mut silent = TcpStream::connect(server.addr()).unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(5));
    assert!(took >= Duration::from_millis(300), "closed after {took:?}");
    // One that sends half a ClientHello, then stops.
    let mut slow = TcpStream::connect(server.addr()).unwrap();
    slow.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .unwrap();
    closed_within(&mut slow, Duration::from_secs(5));
    let tls = server.wait_stats("two handshake timeouts", |tls| tls.timeouts == 2);
    assert_eq!(tls.http_timeouts, 0, "{tls:?}");
    wait_until("both closed", READ_TIMEOUT, || {
        server.stats().open_connections() == 0
    });
    assert_plaintext(&server.connect().get(PLAINTEXT));
}

#[test]
fn plain_http_and_garbage_on_the_tls_port_are_closed_promptly() {
    let server = TlsServer::start(config(1), Duration::from_secs(10));
    let inputs: [&[u8]; 3] = [
        PLAINTEXT,
        b"\x00\x01\x02garbage garbage garbage\r\n\r\n",
        // A handshake record header announcing a huge record, then junk.
        b"\x16\x03\x01\xff\xff\x01\x02\x03",
    ];
    for input in inputs {
        let mut client = TcpStream::connect(server.addr()).unwrap();
        client.write_all(input).unwrap();
        let took = closed_within(&mut client, Duration::from_secs(5));
        assert!(
            took < Duration::from_secs(2),
            "{input:?} closed after {took:?}"
        );
    }
    // A client that closes mid-handshake.
    drop(TcpStream::connect(server.addr()).unwrap());
    let tls = server.wait_stats("four failed handshakes", |tls| tls.failures == 4);
    assert_eq!(tls.timeouts, 0);
    assert_plaintext(&server.connect().get(PLAINTEXT));
}

#[test]
fn a_slow_but_valid_handshake_then_a_request_is_served() {
    let mut config = config(1);
    config.limits.header_timeout = Duration::from_secs(3);
    let server = TlsServer::start(config, Duration::from_secs(3));
    let tcp = TcpStream::connect(server.addr()).unwrap();
    tcp.set_nodelay(true).unwrap();
    tcp.set_read_timeout(Some(READ_TIMEOUT)).unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut conn =
        ClientConnection::new(server.ca.client_config(rustls::ALL_VERSIONS), name).unwrap();
    let mut tcp = tcp;
    // The ClientHello a byte at a time, then the rest of the handshake late.
    let mut hello = Vec::new();
    conn.write_tls(&mut hello).unwrap();
    for byte in &hello {
        tcp.write_all(std::slice::from_ref(byte)).unwrap();
        std::thread::sleep(Duration::from_millis(1));
    }
    std::thread::sleep(Duration::from_millis(500));
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        stream.conn.complete_io(&mut stream.sock).unwrap();
    }
    let mut client = TlsClient {
        stream,
        buf: Vec::new(),
    };
    std::thread::sleep(Duration::from_millis(500));
    assert_plaintext(&client.get(PLAINTEXT));
}

#[test]
fn header_and_idle_timeouts_apply_after_the_handshake() {
    let mut config = config(1);
    config.limits.header_timeout = Duration::from_millis(600);
    config.limits.idle_timeout = Duration::from_millis(300);
    let server = TlsServer::start(config, Duration::from_secs(10));

    // Idle after a response: closed after idle_timeout.
    let mut idle = server.connect();
    assert_plaintext(&idle.get(PLAINTEXT));
    let started = Instant::now();
    idle.expect_close(Duration::from_secs(3));
    assert!(
        started.elapsed() >= Duration::from_millis(250),
        "{:?}",
        started.elapsed()
    );

    // Half a head: 408 after header_timeout, over TLS.
    let mut slow = server.connect();
    slow.send(b"GET /plaintext HTTP/1.1\r\nHost: local");
    let response = slow.response().unwrap();
    assert_eq!(response.status, 408, "{response:?}");
    slow.expect_close(Duration::from_secs(3));
    let tls = server.wait_stats("two HTTP timeouts", |tls| tls.http_timeouts == 2);
    assert_eq!((tls.handshakes, tls.timeouts), (2, 0));
}

#[test]
fn connections_still_shaking_hands_count_against_admission() {
    let mut config = config(1);
    config.admission.max_connections_per_shard = 1;
    let server = TlsServer::start(config, Duration::from_secs(10));
    // Holds the shard's one place without ever starting its handshake.
    let silent = TcpStream::connect(server.addr()).unwrap();
    wait_until("the silent connection is open", READ_TIMEOUT, || {
        server.stats().open_connections() == 1
    });
    // The next connection waits on the main thread: its handshake cannot start.
    let addr = server.addr();
    let config = server.ca.client_config(rustls::ALL_VERSIONS);
    let waiting = std::thread::spawn(move || {
        let mut client = TlsClient::connect(addr, config);
        (Instant::now(), client.get(PLAINTEXT))
    });
    server
        .server
        .wait_stats("the second connection pending", READ_TIMEOUT, |stats| {
            stats.acceptor.pending == 1
        });
    std::thread::sleep(Duration::from_millis(300));
    assert!(!waiting.is_finished(), "served past the admission limit");
    let released = Instant::now();
    drop(silent);
    let (served, response) = waiting.join().unwrap();
    assert!(served >= released);
    assert_plaintext(&response);
}

// ---------------------------------------------------------------------------
// The binary: SIGHUP

/// Reads the binary's stderr lines until one contains `needle`; panics after 5 s.
fn wait_for_line(lines: &std::sync::mpsc::Receiver<String>, needle: &str) -> String {
    let until = Instant::now() + READ_TIMEOUT;
    let mut seen = Vec::new();
    loop {
        let left = until.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) if line.contains(needle) => return line,
            Ok(line) => seen.push(line),
            Err(_) => panic!("no line with {needle:?} within 5 s; stderr: {seen:#?}"),
        }
    }
}

#[test]
fn sighup_reloads_the_certificate_and_a_bad_file_keeps_the_old_one() {
    let ca = TestCa::new();
    let dir = TempDir::new();
    let (cert, key) = dir.install(&ca.leaf("leaf A"));
    let mut child = Command::new(env!("CARGO_BIN_EXE_shardd"))
        .args(["--bind", "127.0.0.1:0", "--shards", "2", "--no-pin"])
        .args(["--tls-cert", cert.to_str().unwrap()])
        .args(["--tls-key", key.to_str().unwrap()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    struct Kill(std::process::Child);
    impl Drop for Kill {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let (send, lines) = std::sync::mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    let mut child = Kill(child);
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(pipe).lines().map_while(Result::ok) {
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let banner = wait_for_line(&lines, "serving on https://");
    let addr: SocketAddr = banner
        .rsplit("https://")
        .next()
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let hup = || {
        // SAFETY: kill(2) on the pid of a child we started and have not reaped.
        let sent = unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGHUP) };
        assert_eq!(sent, 0);
    };
    let connect = || TlsClient::connect(addr, ca.client_config(rustls::ALL_VERSIONS));
    let mut old = connect();
    assert_plaintext(&old.get(PLAINTEXT));
    let first = old.server_cert();

    let leaf_b = ca.leaf("leaf B");
    dir.install(&leaf_b);
    hup();
    wait_for_line(&lines, "reloaded");
    let mut new = connect();
    assert_eq!(new.server_cert(), leaf_b.der);
    assert_plaintext(&new.get(PLAINTEXT));
    assert_eq!(old.server_cert(), first);
    assert_plaintext(&old.get(PLAINTEXT));

    std::fs::write(&key, "garbage\n").unwrap();
    hup();
    let logged = wait_for_line(&lines, "keeping the certificate in force");
    assert!(logged.contains(key.to_str().unwrap()), "{logged}");
    let mut after = connect();
    assert_eq!(after.server_cert(), leaf_b.der);
    assert_plaintext(&after.get(PLAINTEXT));
    assert!(child.0.try_wait().unwrap().is_none(), "still running");

    // SIGTERM still drains and exits 0.
    // SAFETY: as above.
    let sent = unsafe { libc::kill(child.0.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(sent, 0);
    drop((old, new, after));
    let until = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < until, "no exit after SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status}");
}

#[test]
fn tls_handshakes_show_in_the_admin_metrics() {
    let mut config = config(1);
    config.admin = Some("127.0.0.1:0".parse().unwrap());
    let server = TlsServer::start(config, Duration::from_secs(10));
    assert_plaintext(&server.connect().get(PLAINTEXT));
    let mut garbage = TcpStream::connect(server.addr()).unwrap();
    garbage.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    closed_within(&mut garbage, Duration::from_secs(5));
    server.wait_stats("a handshake and a failure", |tls| {
        tls.handshakes >= 1 && tls.failures >= 1
    });
    let admin = server.server.handle.admin_addr().expect("admin port");
    let mut scrape = TcpStream::connect(admin).unwrap();
    scrape
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut text = String::new();
    scrape.read_to_string(&mut text).unwrap();
    let value = |series: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(series))
            .map(|rest| rest.trim().parse::<f64>().unwrap())
            .unwrap_or_else(|| panic!("no {series} in {text}"))
    };
    assert!(value("shardd_tls_handshakes_total{shard=\"0\"}") >= 1.0);
    assert!(value("shardd_tls_handshake_failures_total{shard=\"0\"}") >= 1.0);
    assert_eq!(
        value("shardd_tls_handshake_timeouts_total{shard=\"0\"}"),
        0.0
    );
}
