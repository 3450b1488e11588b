//! Configuration reload: new limits reach running shards (open connections,
//! new ones, and a shard restarted later), and the binary re-reads its
//! config file on SIGHUP, applying what can change live and naming what
//! needs an upgrade. With HTTP/2 clients connected: new limits reach
//! their next streams, a changed `[http2]` table is named as needing an
//! upgrade, and a reloaded certificate is still offered with ALPN `h2`.

mod support;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use support::process::{Process, BIN};
use support::{config, Client, H2Client, TestServer};

const WAIT: Duration = Duration::from_secs(10);

/// `POST path` with a body of `len` bytes on `client`; the status.
fn post(client: &mut Client, path: &str, len: usize) -> u16 {
    client.send(format!(
        "POST {path} HTTP/1.1\r\nHost: t\r\nContent-Length: {len}\r\n\r\n{}",
        "x".repeat(len)
    ));
    client.response().expect("a response").status
}

#[test]
fn new_limits_reach_open_connections_new_ones_and_restarted_shards() {
    let mut config = config(2);
    config.limits.max_body_bytes = 16;
    let server = TestServer::start(config);
    let mut open = server.connect();
    assert_eq!(open.get("/").status, 200, "a keep-alive connection, open");
    assert_eq!(post(&mut server.connect(), "/echo", 100), 413);

    let limits = shardd::Limits {
        max_body_bytes: 1000,
        ..Default::default()
    };
    server.handle.control().set_limits(limits.clone()).unwrap();

    // The commands are handled between accepts: give the shards a moment.
    support::wait_until("a new connection to get the new limit", WAIT, || {
        post(&mut server.connect(), "/echo", 100) == 200
    });
    assert_eq!(post(&mut open, "/echo", 100), 200, "an open connection too");
    assert_eq!(post(&mut server.connect(), "/echo", 2000), 413);

    // A shard that dies and is restarted starts with the new limits.
    server.handle.kill_shard(0).unwrap();
    server.wait_stats("shard 0 restarted", WAIT, |s| {
        s.shards[0].alive && s.shards[0].restarts == 1
    });
    for _ in 0..4 {
        assert_eq!(post(&mut server.connect(), "/echo", 100), 200);
    }

    let mut bad = limits;
    bad.max_headers = 0;
    let error = server.handle.control().set_limits(bad).unwrap_err();
    assert!(error.to_string().contains("limits.max_headers"), "{error}");
}

/// A config file in the target's temp dir, removed on drop.
struct ConfigFile(PathBuf);

impl ConfigFile {
    fn write(&self, text: &str) {
        std::fs::write(&self.0, text).unwrap();
    }
}

impl Drop for ConfigFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[test]
fn sighup_rereads_the_config_file() {
    let file = ConfigFile(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("reload-{}.toml", std::process::id())),
    );
    file.write("backlog = 64\n[limits]\nmax_body_bytes = 16\n");
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut command = Command::new(BIN);
    command.args(["--bind", &addr.to_string(), "--shards", "2", "--no-pin"]);
    command.args(["--config", file.0.to_str().unwrap()]);
    let mut shardd = Process::spawn(command);
    shardd.wait_for_line("serving on", WAIT);
    // TechEmpower answers POST /plaintext with 405, once the body is read.
    assert_eq!(post(&mut Client::connect(addr), "/plaintext", 100), 413);

    // Limits change live; the backlog needs an upgrade; --shards still wins.
    file.write("backlog = 128\nshards = 5\n[limits]\nmax_body_bytes = 1000\n");
    shardd.signal(libc::SIGHUP);
    let applied = shardd.wait_for_line("SIGHUP: configuration reloaded", WAIT);
    assert!(applied.contains("now in effect: limits"), "{applied}");
    let pending = shardd.wait_for_line("need an upgrade", WAIT);
    assert!(pending.ends_with(": backlog"), "{pending}");
    support::wait_until("the new body limit", WAIT, || {
        post(&mut Client::connect(addr), "/plaintext", 100) == 405
    });

    // A broken file changes nothing.
    file.write("[limits]\nmax_body_bytes = \"lots\"\n");
    shardd.signal(libc::SIGHUP);
    shardd.wait_for_line("configuration not reloaded", WAIT);
    let why = shardd.lines_so_far(Duration::from_millis(100)).join("\n");
    assert!(why.contains("max_body_bytes"), "{why}");
    assert_eq!(post(&mut Client::connect(addr), "/plaintext", 100), 405);

    shardd.signal(libc::SIGTERM);
    assert!(shardd.wait(WAIT).expect("exits").success());
}

/// The binary with `--config file` on a free port, serving.
fn start_binary(file: &ConfigFile, extra: &[&str]) -> (Process, std::net::SocketAddr) {
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut command = Command::new(BIN);
    command.args(["--bind", &addr.to_string(), "--shards", "1", "--no-pin"]);
    command
        .args(["--config", file.0.to_str().unwrap()])
        .args(extra);
    let mut shardd = Process::spawn(command);
    shardd.wait_for_line("serving on", WAIT);
    (shardd, addr)
}

fn temp_file(name: &str) -> ConfigFile {
    ConfigFile(
        PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("reload-{}-{name}", std::process::id())),
    )
}

/// `POST /plaintext` with a body of `len` bytes over HTTP/2; the status
/// (TechEmpower answers 405 once the body is in, 413 if it is too big).
fn h2_post(client: &mut H2Client, len: usize) -> u16 {
    client
        .try_request("POST", "/plaintext", &vec![b'x'; len])
        .expect("an HTTP/2 response")
        .status
}

#[test]
fn sighup_with_http2_clients_new_limits_reach_their_streams_and_http2_needs_an_upgrade() {
    let file = temp_file("http2.toml");
    file.write("[http2]\nmax_concurrent_streams = 100\n[limits]\nmax_body_bytes = 16\n");
    let (mut shardd, addr) = start_binary(&file, &[]);
    let mut open = H2Client::connect(addr);
    assert_eq!(h2_post(&mut open, 100), 413);

    file.write("[http2]\nmax_concurrent_streams = 50\n[limits]\nmax_body_bytes = 1000\n");
    shardd.signal(libc::SIGHUP);
    let applied = shardd.wait_for_line("SIGHUP: configuration reloaded", WAIT);
    assert!(applied.contains("now in effect: limits"), "{applied}");
    let pending = shardd.wait_for_line("need an upgrade", WAIT);
    assert!(pending.ends_with(": http2"), "{pending}");
    // The open connection's next stream has the new limit, so has a new connection's.
    support::wait_until("the new body limit on the open connection", WAIT, || {
        h2_post(&mut open, 100) == 405
    });
    assert_eq!(h2_post(&mut H2Client::connect(addr), 100), 405);
    assert_eq!(h2_post(&mut open, 2000), 413);

    shardd.signal(libc::SIGTERM);
    assert!(shardd.wait(WAIT).expect("exits").success());
}

/// `curl --http2` to the binary's TLS port trusting only `ca`: its exit
/// status and what it printed.
fn curl_http2(addr: std::net::SocketAddr, ca: &std::path::Path) -> (bool, String) {
    let port = addr.port();
    let output = Command::new("curl")
        .args(["-sS", "-i", "--max-time", "10", "--http2"])
        .args(["--resolve", &format!("localhost:{port}:127.0.0.1")])
        .arg("--cacert")
        .arg(ca)
        .arg(format!("https://localhost:{port}/plaintext"))
        .output()
        .expect("curl is installed (scripts/test installs it)");
    let text = String::from_utf8_lossy(&output.stdout).into_owned()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

#[test]
fn sighup_reloads_the_certificate_and_alpn_still_offers_h2() {
    let (config, cert, key) = (
        temp_file("tls.toml"),
        temp_file("cert.pem"),
        temp_file("key.pem"),
    );
    let (first_ca, second_ca) = (temp_file("first-ca.pem"), temp_file("second-ca.pem"));
    let install = |ca: &ConfigFile| {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        cert.write(&made.cert.pem());
        key.write(&made.key_pair.serialize_pem());
        ca.write(&made.cert.pem());
    };
    install(&first_ca);
    config.write("");
    let tls = [
        "--tls-cert",
        cert.0.to_str().unwrap(),
        "--tls-key",
        key.0.to_str().unwrap(),
    ];
    let (mut shardd, addr) = start_binary(&config, &tls);
    let (ok, text) = curl_http2(addr, &first_ca.0);
    assert!(ok && text.starts_with("HTTP/2 200"), "{text}");

    install(&second_ca);
    shardd.signal(libc::SIGHUP);
    shardd.wait_for_line("TLS certificate and key reloaded", WAIT);
    let (ok, text) = curl_http2(addr, &second_ca.0);
    assert!(ok, "the new certificate is served: {text}");
    assert!(
        text.starts_with("HTTP/2 200"),
        "ALPN still chose h2: {text}"
    );
    let (ok, text) = curl_http2(addr, &first_ca.0);
    assert!(!ok, "the old certificate is no longer served: {text}");

    shardd.signal(libc::SIGTERM);
    assert!(shardd.wait(WAIT).expect("exits").success());
}
