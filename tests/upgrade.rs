//! Zero-downtime upgrade on the built binary (SIGUSR2): clients keep
//! sending requests, on keep-alive connections and on new ones, while the
//! running shardd starts a new process that inherits its listening socket,
//! waits for it to be ready, and drains. No request may fail and no
//! connection may be refused; the serving process changes. HTTP/2 clients
//! among them get a GOAWAY from the old process and reconnect to the new
//! one, with no request lost. The admin port
//! passes to the new process with the service socket: health checks on it
//! never fail either, and it answers from the new process afterwards. A new
//! process that fails (exits at start-up, or is never ready) leaves the old
//! one serving, admin port included.
//!
//! The test process becomes the reaper of orphans, so the new process,
//! which outlives its parent (our child), is ours to wait for.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::parse_response;
use support::process::{become_subreaper, process_gone, reap, send_signal, Adopted, Process, BIN};
use support::{H2Client, H2Failure, UnixClient};

const WAIT: Duration = Duration::from_secs(15);

/// A copy of the binary (a hard link if possible) at a path the test may
/// replace, as an administrator installs a new binary over the old one.
struct Installed {
    dir: PathBuf,
    exe: PathBuf,
}

impl Installed {
    fn new(name: &str) -> Installed {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("upgrade-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let exe = dir.join("shardd");
        if std::fs::hard_link(BIN, &exe).is_err() {
            std::fs::copy(BIN, &exe).unwrap();
        }
        Installed { dir, exe }
    }

    /// Install `script` (a shell script) over the binary, atomically.
    fn replace_with_script(&self, script: &str) {
        let next = self.dir.join("shardd.next");
        std::fs::write(&next, script).unwrap();
        std::fs::set_permissions(&next, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::fs::rename(&next, &self.exe).unwrap();
    }

    fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Start `exe` with `args` (plus 2 unpinned shards) and wait for it to serve.
fn start(exe: &Path, args: &[&str]) -> Process {
    let mut command = Command::new(exe);
    command
        .args(args)
        .args(["--shards", "2", "--no-pin", "--drain-timeout-ms", "5000"]);
    let mut process = Process::spawn(command);
    process.wait_for_line("serving on", WAIT);
    process
}

/// The pid in a log line `... process <pid> ...`.
fn pid_in(line: &str) -> u32 {
    let after = line
        .split("process ")
        .nth(1)
        .unwrap_or_else(|| panic!("no pid in {line:?}"));
    after
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .and_then(|digits| digits.parse().ok())
        .unwrap_or_else(|| panic!("no pid in {line:?}"))
}

/// What the clients saw.
#[derive(Debug, Default)]
struct Tally {
    ok: u64,
    /// Requests that got no (or a bad) response, with why.
    failed: Vec<String>,
    /// Connections that could not be made.
    refused: Vec<String>,
    /// Responses that said `Connection: close` (the keep-alive clients reconnect).
    closed_by_server: u64,
    /// Requests the HTTP/2 clients got answered.
    http2_ok: u64,
    /// GOAWAYs the HTTP/2 clients met (each one then reconnected).
    http2_goaways: u64,
}

impl Tally {
    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        self.failed.extend(other.failed);
        self.refused.extend(other.refused);
        self.closed_by_server += other.closed_by_server;
        self.http2_ok += other.http2_ok;
        self.http2_goaways += other.http2_goaways;
    }
}

/// Clients sending requests nonstop until stopped: `keep_alive` of them on
/// keep-alive connections (reconnecting when the server says close),
/// `fresh` that open a new connection for every request, and `http2` on
/// HTTP/2 connections (reconnecting after a GOAWAY).
struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Tally>>,
}

impl Load {
    fn start(addr: SocketAddr, keep_alive: usize, fresh: usize, http2: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for _ in 0..keep_alive {
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || keep_alive_client(addr, &stop)));
        }
        for _ in 0..fresh {
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || fresh_client(addr, &stop)));
        }
        for _ in 0..http2 {
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || http2_client(addr, &stop)));
        }
        Load { stop, threads }
    }

    /// `clients` asking the admin port at `admin` for `/health/live` and
    /// `/metrics` in turn, nonstop, each on a new connection (the admin
    /// port closes after every response).
    fn start_admin(admin: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..clients)
            .map(|_| {
                let stop = stop.clone();
                std::thread::spawn(move || admin_client(admin, &stop))
            })
            .collect();
        Load { stop, threads }
    }

    fn finish(self) -> Tally {
        self.stop.store(true, SeqCst);
        let mut tally = Tally::default();
        for thread in self.threads {
            tally.add(thread.join().expect("a client thread panicked"));
        }
        tally
    }
}

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n";
const REQUEST_CLOSE: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

fn connect(addr: SocketAddr) -> std::io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_nodelay(true)?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    stream.set_write_timeout(Some(Duration::from_secs(5)))?;
    Ok(stream)
}

/// Send one request and read its response; `Ok(closes)`.
fn exchange(stream: &mut TcpStream, request: &[u8], buf: &mut Vec<u8>) -> Result<bool, String> {
    stream
        .write_all(request)
        .map_err(|e| format!("send: {e}"))?;
    let mut eof = false;
    loop {
        match parse_response(buf, "GET", eof) {
            Ok(Some((response, used))) => {
                buf.drain(..used);
                if response.status != 200 || response.body != b"Hello, World!" {
                    return Err(format!("bad response {response:?}"));
                }
                return Ok(response.closes());
            }
            Ok(None) if eof => {
                return Err(format!(
                    "closed before a complete response: {:?}",
                    String::from_utf8_lossy(buf)
                ))
            }
            Ok(None) => {}
            Err(e) => return Err(format!("malformed response: {e}")),
        }
        let mut chunk = [0u8; 4096];
        match stream.read(&mut chunk) {
            Ok(0) => eof = true,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

fn keep_alive_client(addr: SocketAddr, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<(TcpStream, Vec<u8>)> = None;
    while !stop.load(SeqCst) {
        let (stream, buf) = match &mut conn {
            Some(conn) => conn,
            None => match connect(addr) {
                Ok(stream) => conn.insert((stream, Vec::new())),
                Err(e) => {
                    tally.refused.push(e.to_string());
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        match exchange(stream, REQUEST, buf) {
            Ok(closes) => {
                tally.ok += 1;
                if closes {
                    tally.closed_by_server += 1;
                    conn = None;
                }
            }
            Err(why) => {
                tally.failed.push(format!("keep-alive: {why}"));
                conn = None;
            }
        }
    }
    tally
}

fn fresh_client(addr: SocketAddr, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    while !stop.load(SeqCst) {
        let mut stream = match connect(addr) {
            Ok(stream) => stream,
            Err(e) => {
                tally.refused.push(e.to_string());
                std::thread::sleep(Duration::from_millis(5));
                continue;
            }
        };
        match exchange(&mut stream, REQUEST_CLOSE, &mut Vec::new()) {
            Ok(_) => tally.ok += 1,
            Err(why) => tally.failed.push(format!("new connection: {why}")),
        }
    }
    tally
}

/// `GET /plaintext` over one HTTP/2 connection, one stream at a time. A
/// GOAWAY (the old process draining) leaves the next request unprocessed:
/// it is sent again on a new connection, as RFC 9113 §6.8 lets a client
/// do. Anything else (a reset, a broken connection, a bad answer) fails.
fn http2_client(addr: SocketAddr, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<H2Client> = None;
    while !stop.load(SeqCst) {
        let client = match &mut conn {
            Some(client) => client,
            None => match H2Client::try_connect(addr) {
                Ok(client) => conn.insert(client),
                Err(e) => {
                    tally.refused.push(format!("HTTP/2: {e}"));
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                }
            },
        };
        match client.try_get("/plaintext") {
            Ok(answer) if (answer.status, &answer.body[..]) == (200, b"Hello, World!") => {
                tally.ok += 1;
                tally.http2_ok += 1;
            }
            Ok(answer) => tally
                .failed
                .push(format!("HTTP/2: bad response {answer:?}")),
            Err(H2Failure::NotProcessed(_)) => {
                tally.http2_goaways += 1;
                conn = None;
            }
            Err(H2Failure::Failed(why)) => {
                tally.failed.push(format!("HTTP/2: {why}"));
                conn = None;
            }
        }
    }
    tally
}

fn admin_client(admin: SocketAddr, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    for path in ["/health/live", "/metrics"].iter().cycle() {
        if stop.load(SeqCst) {
            break;
        }
        match connect(admin) {
            Ok(stream) => match admin_get(stream, path) {
                Ok(_) => tally.ok += 1,
                Err(why) => tally.failed.push(format!("admin {path}: {why}")),
            },
            Err(e) => {
                tally.refused.push(format!("admin: {e}"));
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    tally
}

/// `GET path` on an admin connection; the body of a 200 response.
fn admin_get(mut stream: TcpStream, path: &str) -> Result<String, String> {
    let request = format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut buf = Vec::new();
    stream
        .read_to_end(&mut buf)
        .map_err(|e| format!("read: {e}"))?;
    match parse_response(&buf, "GET", true) {
        Ok(Some((response, _))) if response.status == 200 => {
            Ok(String::from_utf8_lossy(&response.body).into_owned())
        }
        Ok(Some((response, _))) => Err(format!("status {}", response.status)),
        Ok(None) => Err(format!(
            "closed before a complete response: {:?}",
            String::from_utf8_lossy(&buf)
        )),
        Err(e) => Err(format!("malformed response: {e}")),
    }
}

/// `GET path` on the admin port at `admin`, on a new connection.
fn admin(admin: SocketAddr, path: &str) -> Result<String, String> {
    admin_get(connect(admin).map_err(|e| e.to_string())?, path)
}

/// The pid `/status.json` on the admin port reports.
fn admin_pid(addr: SocketAddr) -> u32 {
    let json = admin(addr, "/status.json").expect("status.json");
    let after = json
        .split("\"pid\":")
        .nth(1)
        .unwrap_or_else(|| panic!("no pid in {json}"));
    pid_in(&format!("process {after}"))
}

/// Run `load` for `during`, then check that it never failed.
fn assert_no_failures(tally: &Tally) {
    assert!(
        tally.failed.is_empty(),
        "{} failed requests (of {}): {:#?}",
        tally.failed.len(),
        tally.ok + tally.failed.len() as u64,
        &tally.failed[..tally.failed.len().min(10)]
    );
    assert!(
        tally.refused.is_empty(),
        "{} refused connections: {:#?}",
        tally.refused.len(),
        &tally.refused[..tally.refused.len().min(10)]
    );
}

/// SIGUSR2 `old`, and return the new process once the old one has drained
/// and exited 0.
fn upgrade_and_wait(old: &mut Process) -> Adopted {
    old.signal(libc::SIGUSR2);
    let ready = old.wait_for_line("upgrade: new process", WAIT);
    let new_pid = pid_in(&ready);
    assert_ne!(new_pid, old.pid(), "{ready}");
    let new = Adopted(new_pid);
    let status = old
        .wait(WAIT)
        .expect("the old process drains and exits after the upgrade");
    assert!(status.success(), "old process: {status}");
    new
}

/// Stop the new process (ours to reap) and check it exits 0.
fn stop_new(new: Adopted) {
    let pid = new.0;
    send_signal(pid, libc::SIGTERM);
    assert_eq!(reap(pid, WAIT), Some(0), "the new process {pid} exits 0");
}

#[test]
fn upgrade_under_load_fails_no_request_and_changes_the_serving_process() {
    become_subreaper();
    let addr = free_addr();
    let mut old = start(Path::new(BIN), &["--bind", &addr.to_string()]);
    let old_pid = old.pid();

    let load = Load::start(addr, 4, 2, HTTP2_CLIENTS);
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let new = upgrade_and_wait(&mut old);
    let new_pid = new.0;
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();

    assert_no_failures(&tally);
    assert!(tally.ok > 100, "the clients kept working: {tally:?}");
    assert!(
        tally.closed_by_server > 0,
        "the old process closed its keep-alive connections: {tally:?}"
    );
    assert!(
        tally.http2_goaways >= HTTP2_CLIENTS as u64,
        "and sent its HTTP/2 connections GOAWAY: {tally:?}"
    );
    // The new process announced itself on the inherited socket.
    let lines = old.lines_so_far(Duration::from_millis(50)).join("\n");
    assert!(
        lines.contains(&format!("http://{addr} (inherited socket)")),
        "{lines}"
    );
    assert_ne!(new_pid, old_pid);
    assert!(process_gone(old_pid) && !process_gone(new_pid));
    eprintln!("upgrade took {took:?}; {tally:?}");

    // The new process is what serves now: once it stops, nothing listens.
    stop_new(new);
    assert!(
        TcpStream::connect(addr).is_err(),
        "nothing listens after the new process stopped"
    );
}

#[test]
fn upgrade_in_reuseport_mode_passes_every_shards_socket() {
    become_subreaper();
    let addr = free_addr();
    let mut old = start(
        Path::new(BIN),
        &["--bind", &addr.to_string(), "--listener", "reuseport"],
    );
    let load = Load::start(addr, 4, 2, 0);
    std::thread::sleep(Duration::from_millis(300));
    let new = upgrade_and_wait(&mut old);
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_no_failures(&tally);
    assert!(tally.ok > 100, "{tally:?}");
    let lines = old.lines_so_far(Duration::from_millis(50)).join("\n");
    assert!(
        lines.contains("listener reuseport, serving on") && lines.contains("(inherited socket)"),
        "{lines}"
    );
    stop_new(new);
    assert!(TcpStream::connect(addr).is_err());
}

#[test]
fn upgrade_on_a_unix_socket_leaves_the_file_to_the_new_process() {
    become_subreaper();
    let installed = Installed::new("unix");
    let path = installed.file("http.sock");
    let bind = format!("unix:{}", path.display());
    let mut old = start(&installed.exe, &["--bind", &bind, "--unix-mode", "0600"]);
    let mut client = UnixClient::connect(&path);
    assert_eq!(client.get("/plaintext").status, 200);

    let new = upgrade_and_wait(&mut old);
    assert!(
        path.exists(),
        "the old process left the file to the new one"
    );
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The old keep-alive connection was closed by the drain; a new one is served.
    assert_eq!(UnixClient::connect(&path).get("/plaintext").status, 200);

    stop_new(new);
    assert!(!path.exists(), "the new process removes the file on exit");
}

#[test]
fn new_process_that_exits_at_start_up_leaves_the_old_one_serving() {
    become_subreaper();
    let installed = Installed::new("exits");
    let config = installed.file("shardd.toml");
    std::fs::write(&config, "drain_timeout_ms = 5000\n").unwrap();
    let addr = free_addr();
    let mut old = start(
        &installed.exe,
        &[
            "--bind",
            &addr.to_string(),
            "--config",
            config.to_str().unwrap(),
        ],
    );

    let load = Load::start(addr, 2, 1, 0);
    // The new process will read a broken config file and exit at once.
    std::fs::write(&config, "shards = \"many\"\n").unwrap();
    old.signal(libc::SIGUSR2);
    let failed = old.wait_for_line("upgrade failed", WAIT);
    assert!(failed.contains("exited"), "{failed}");
    assert!(failed.contains("still serving"), "{failed}");
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_no_failures(&tally);
    assert!(
        old.wait(Duration::from_millis(100)).is_none(),
        "still running"
    );
    let lines = old.lines_so_far(Duration::from_millis(50)).join("\n");
    assert!(
        lines.contains("shards"),
        "the new process said why: {lines}"
    );

    // Fixed, the next upgrade goes through.
    std::fs::write(&config, "drain_timeout_ms = 5000\n").unwrap();
    let new = upgrade_and_wait(&mut old);
    assert_eq!(support::Client::connect(addr).get("/plaintext").status, 200);
    stop_new(new);
}

#[test]
fn new_process_that_is_never_ready_is_stopped_and_the_old_one_keeps_serving() {
    become_subreaper();
    let installed = Installed::new("never-ready");
    let addr = free_addr();
    let admin_addr = free_addr();
    let mut old = start(
        &installed.exe,
        &[
            "--bind",
            &addr.to_string(),
            "--upgrade-timeout-ms",
            "1500",
            "--admin",
            &admin_addr.to_string(),
        ],
    );
    // The "new binary" is shardd itself, but its READY=1 goes nowhere: it
    // serves on the inherited socket without ever telling the old process.
    installed.replace_with_script(&format!(
        "#!/bin/sh\nNOTIFY_SOCKET={} exec {BIN} \"$@\"\n",
        installed.file("nobody-listens-here").display()
    ));

    let load = Load::start(addr, 2, 1, 0);
    let admin_load = Load::start_admin(admin_addr, 1);
    old.signal(libc::SIGUSR2);
    let started = old.wait_for_line("upgrade: started", WAIT);
    let new_pid = pid_in(&started);
    let _new = Adopted(new_pid);
    let failed = old.wait_for_line("upgrade failed", WAIT);
    assert!(failed.contains("not ready within"), "{failed}");
    // The old process stopped the new one, which drained without closing
    // the sockets they share, the admin port's included.
    support::wait_until("the new process to exit", WAIT, || process_gone(new_pid));
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    assert_no_failures(&tally);
    let admin_tally = admin_load.finish();
    assert_no_failures(&admin_tally);
    assert!(
        old.wait(Duration::from_millis(100)).is_none(),
        "still running"
    );
    assert_eq!(support::Client::connect(addr).get("/plaintext").status, 200);
    assert_eq!(admin(admin_addr, "/health/ready").as_deref(), Ok("ready\n"));
    assert_eq!(admin_pid(admin_addr), old.pid(), "the old process answers");
}

/// HTTP/2 clients in the upgrade tests with the admin port.
const HTTP2_CLIENTS: usize = 2;

/// The HTTP/2 clients were served throughout; each met the old process's
/// GOAWAY and reconnected, and what they opened after it went to the new
/// process (its `/metrics` counts their connections).
fn assert_http2_moved_to_the_new_process(tally: &Tally, admin_addr: SocketAddr) {
    assert!(tally.http2_ok > 50, "HTTP/2 clients served: {tally:?}");
    assert!(
        tally.http2_goaways >= HTTP2_CLIENTS as u64,
        "each HTTP/2 client met the old process's GOAWAY: {tally:?}"
    );
    let metrics = admin(admin_addr, "/metrics").expect("/metrics");
    let connections: f64 = metrics
        .lines()
        .filter(|line| line.starts_with("shardd_http2_connections_total{"))
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(
        connections >= HTTP2_CLIENTS as f64,
        "the new process serves the HTTP/2 clients' new connections: {connections}\n{metrics}"
    );
}

/// An upgrade under load with the admin port on a fixed address (`extra`
/// picks the listener): no request fails on either port, and afterwards
/// the new process answers on both.
fn upgrade_under_load_with_a_fixed_admin_port(extra: &[&str]) {
    become_subreaper();
    let (addr, admin_addr) = (free_addr(), free_addr());
    let mut args = vec![
        "--bind".to_owned(),
        addr.to_string(),
        "--admin".to_owned(),
        admin_addr.to_string(),
    ];
    args.extend(extra.iter().map(|arg| arg.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut old = start(Path::new(BIN), &args);
    let old_pid = old.pid();
    assert_eq!(admin_pid(admin_addr), old_pid);

    let load = Load::start(addr, 4, 2, HTTP2_CLIENTS);
    let admin_load = Load::start_admin(admin_addr, 2);
    std::thread::sleep(Duration::from_millis(300));
    let new = upgrade_and_wait(&mut old);
    let new_pid = new.0;
    std::thread::sleep(Duration::from_millis(300));
    let tally = load.finish();
    let admin_tally = admin_load.finish();

    assert_no_failures(&tally);
    assert_no_failures(&admin_tally);
    assert!(tally.ok > 100, "the clients kept working: {tally:?}");
    assert!(
        admin_tally.ok > 20,
        "the admin clients too: {admin_tally:?}"
    );
    let lines = old.lines_so_far(Duration::from_millis(50)).join("\n");
    assert!(
        lines.contains(&format!("admin on http://{admin_addr} (inherited socket)")),
        "the new process took over the admin socket: {lines}"
    );
    assert_ne!(new_pid, old_pid);
    assert_eq!(admin(admin_addr, "/health/ready").as_deref(), Ok("ready\n"));
    assert_eq!(admin_pid(admin_addr), new_pid, "the new process answers");
    assert_http2_moved_to_the_new_process(&tally, admin_addr);
    eprintln!("service {tally:?}; admin {admin_tally:?}");

    stop_new(new);
    assert!(
        TcpStream::connect(admin_addr).is_err(),
        "nothing listens on the admin port after the new process stopped"
    );
}

#[test]
fn upgrade_passes_a_fixed_admin_port_and_fails_no_request_on_either_port() {
    upgrade_under_load_with_a_fixed_admin_port(&[]);
}

#[test]
fn upgrade_in_reuseport_mode_passes_a_fixed_admin_port_too() {
    upgrade_under_load_with_a_fixed_admin_port(&["--listener", "reuseport"]);
}

#[test]
fn upgrade_binds_the_admin_address_the_new_config_names() {
    become_subreaper();
    let installed = Installed::new("admin-moves");
    let config = installed.file("shardd.toml");
    let (addr, before, after) = (free_addr(), free_addr(), free_addr());
    std::fs::write(&config, format!("admin = \"{before}\"\n")).unwrap();
    let mut old = start(
        &installed.exe,
        &[
            "--bind",
            &addr.to_string(),
            "--config",
            config.to_str().unwrap(),
        ],
    );
    assert_eq!(admin_pid(before), old.pid());

    std::fs::write(&config, format!("admin = \"{after}\"\n")).unwrap();
    let new = upgrade_and_wait(&mut old);
    let lines = old.lines_so_far(Duration::from_millis(50)).join("\n");
    assert!(
        lines.contains(&format!(
            "admin = {after} differs from the inherited admin socket {before}: binding {after}"
        )),
        "the new process says it moved the admin port: {lines}"
    );
    assert_eq!(admin_pid(after), new.0);
    assert!(
        TcpStream::connect(before).is_err(),
        "the old admin address closed with the old process"
    );
    stop_new(new);
}

/// Once the new process is ready, health checks on the admin port get its
/// answer (ready), never the draining old process's (503), though the old
/// one is still there finishing a request.
#[test]
fn after_the_handover_only_the_new_process_answers_on_the_admin_port() {
    become_subreaper();
    let (addr, admin_addr) = (free_addr(), free_addr());
    let mut old = start(
        Path::new(BIN),
        &[
            "--bind",
            &addr.to_string(),
            "--admin",
            &admin_addr.to_string(),
        ],
    );
    let old_pid = old.pid();
    // A request in flight (its head not finished) keeps the old process draining.
    let mut in_flight = connect(addr).unwrap();
    in_flight.write_all(b"GET /plaintext HTTP/1.1\r\n").unwrap();
    std::thread::sleep(Duration::from_millis(100));

    old.signal(libc::SIGUSR2);
    let new_pid = pid_in(&old.wait_for_line("upgrade: new process", WAIT));
    let new = Adopted(new_pid);
    // Past the admin workers' accept timeout (100 ms): the old ones have stopped.
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        assert_eq!(admin(admin_addr, "/health/ready").as_deref(), Ok("ready\n"));
        assert_eq!(admin_pid(admin_addr), new_pid);
    }
    assert!(!process_gone(old_pid), "the old process is still draining");

    in_flight.write_all(b"Host: t\r\n\r\n").unwrap();
    let mut buf = Vec::new();
    let closes = exchange(&mut in_flight, b"", &mut buf).expect("the old process answers");
    assert!(closes, "with Connection: close");
    let status = old.wait(WAIT).expect("the old process exits");
    assert!(status.success(), "{status}");
    stop_new(new);
}
