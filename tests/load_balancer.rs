//! shardd behind a real load balancer: nginx, as the distribution ships it,
//! started by the test on loopback in front of two `shardd` processes, with
//! the upstream configuration shipped in `config/nginx/shardd-upstream.conf`
//! (its addresses swapped for free loopback ports). A load client sends
//! requests through nginx the whole time and counts what it gets back.
//!
//! Then HTTP/2 to shardd: nginx's `grpc_pass grpc://` and HAProxy's
//! `proto h2`, each with h2c clients in front, through a drain of each
//! instance (HAProxy: `apt-get install -y haproxy`, `HAPROXY=/path`).
//!
//! nginx must be installed (`apt-get install -y nginx`; `.ci/run` does it).
//! Without it these tests fail; they do not skip. `NGINX=/path/to/nginx`
//! picks another binary.
//!
//! What nginx saw is read from its access log, one line per client request:
//! the status the client got, then every upstream attempt (address and
//! status) in order.

mod support;

use std::collections::BTreeMap;
use std::io::{self, BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use support::parse_response;
use support::process::wait_timeout;

const BIN: &str = env!("CARGO_BIN_EXE_shardd");

/// The nginx configuration under test: the deployment kit's example.
const UPSTREAM_EXAMPLE: &str = include_str!("../config/nginx/shardd-upstream.conf");
/// The example's placeholders, replaced by loopback addresses.
const EXAMPLE_FIRST: &str = "10.0.0.11:8080";
const EXAMPLE_SECOND: &str = "10.0.0.12:8080";
const EXAMPLE_LISTEN: &str = "listen 80;";

/// Each instance's `--drain-timeout-ms`.
const DRAIN_TIMEOUT: Duration = Duration::from_millis(5_000);
/// Longest a process may take to start, or to show up in nginx's log.
const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopped instance stays down before it is started again: long
/// enough that nginx surely meets it down under the test's load.
const DOWN_FOR: Duration = Duration::from_millis(300);
/// The load client's limit on a connect, a write, or one response.
const CLIENT_TIMEOUT: Duration = Duration::from_secs(10);

/// The tests in this file run one at a time: each has its own nginx and
/// instances, but on a small machine two loads at once would starve each other.
fn one_at_a_time() -> MutexGuard<'static, ()> {
    static LOCK: Mutex<()> = Mutex::new(());
    LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A port nobody listens on right now.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// Polls `done` every 20 ms until it returns true; panics naming `what`
/// after `timeout`.
fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < until, "{what}: not within {timeout:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// kill(2) `child` with `signal`; false if that failed.
/// GET `path` on an instance's admin port: the status and body, `None` if
/// the port does not answer (the process is gone).
fn admin_get(admin: SocketAddr, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect_timeout(&admin, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: admin\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut text = String::new();
    stream.read_to_string(&mut text).ok()?;
    let status = text.get(9..12)?.parse().ok()?;
    let body = text.split_once("\r\n\r\n")?.1.to_owned();
    Some((status, body))
}

/// The sum of every sample of a metric family on an admin port's /metrics.
fn metric_sum(admin: SocketAddr, family: &str) -> f64 {
    let (status, text) = admin_get(admin, "/metrics").expect("/metrics answers");
    assert_eq!(status, 200, "{text}");
    text.lines()
        .filter(|line| {
            line.strip_prefix(family)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

fn send_signal(child: &Child, signal: i32) -> bool {
    let pid = child.id() as libc::pid_t;
    // SAFETY: kill(2) on the pid of a child we started and have not reaped.
    unsafe { libc::kill(pid, signal) == 0 }
}

// ---------------------------------------------------------------------------
// shardd instances

/// One `shardd` instance on a fixed address, which can be stopped with
/// SIGTERM and started again on the same address; killed on drop.
struct Instance {
    name: &'static str,
    addr: SocketAddr,
    args: Vec<String>,
    child: Option<Child>,
    /// Everything every run of it wrote to stderr, for failure messages.
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Instance {
    /// Start `shardd --bind <free port> --no-pin --drain-timeout-ms 5000 <extra>`.
    fn start(name: &'static str, extra: &[&str]) -> Instance {
        let drain = DRAIN_TIMEOUT.as_millis().to_string();
        let mut args: Vec<String> = ["--no-pin", "--drain-timeout-ms", &drain]
            .iter()
            .map(|arg| arg.to_string())
            .collect();
        args.extend(extra.iter().map(|arg| arg.to_string()));
        let mut instance = Instance {
            name,
            addr: free_addr(),
            args,
            child: None,
            stderr: Arc::default(),
        };
        // The port was free when picked, but another test's client may have
        // taken it as its local port since: pick another and start again.
        for _ in 0..3 {
            if instance.try_run() {
                return instance;
            }
            instance.addr = free_addr();
        }
        instance.run();
        instance
    }

    /// Spawn the process and wait for its start-up line.
    fn run(&mut self) {
        assert!(
            self.try_run(),
            "{} could not bind {}: {}",
            self.name,
            self.addr,
            self.log()
        );
    }

    /// Spawn the process and wait for its start-up line; `false` if it
    /// exited because its address was in use.
    fn try_run(&mut self) -> bool {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let mut child = Command::new(BIN)
            .arg("--bind")
            .arg(self.addr.to_string())
            .args(&self.args)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start shardd");
        let serving = Arc::new(AtomicBool::new(false));
        let pipe = child.stderr.take().unwrap();
        let (lines, flag, name) = (self.stderr.clone(), serving.clone(), self.name);
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if line.contains("serving on") {
                    flag.store(true, Relaxed);
                }
                lines.lock().unwrap().push(format!("[{name}] {line}"));
            }
        });
        self.child = Some(child);
        let until = Instant::now() + START_TIMEOUT;
        while !serving.load(Relaxed) {
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                self.child = None;
                std::thread::sleep(Duration::from_millis(100)); // the log's reader catches up
                if self.log().contains("in use") {
                    return false;
                }
                panic!(
                    "{} exited at start-up ({status}): {}",
                    self.name,
                    self.log()
                );
            }
            assert!(
                Instant::now() < until,
                "{}: no start-up line within {START_TIMEOUT:?}: {}",
                self.name,
                self.log()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }

    /// SIGTERM, then wait for the drain to end and the process to exit 0.
    fn terminate(&mut self) {
        let child = self.child.as_ref().expect("running");
        assert!(send_signal(child, libc::SIGTERM), "SIGTERM {}", self.name);
        self.wait_exit();
    }

    /// Wait for the drain (already started) to end and the process to exit 0.
    fn wait_exit(&mut self) {
        let mut child = self.child.take().expect("running");
        let Some(status) = wait_timeout(&mut child, DRAIN_TIMEOUT + Duration::from_secs(3)) else {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{} still running after SIGTERM: {}", self.name, self.log());
        };
        assert!(
            status.success(),
            "{} exited with {status} after SIGTERM: {}",
            self.name,
            self.log()
        );
    }

    fn log(&self) -> String {
        self.stderr.lock().unwrap().join("\n")
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

// ---------------------------------------------------------------------------
// nginx

/// The nginx binary: `$NGINX`, else `nginx` on `PATH` or in an sbin
/// directory; panics (the test fails) if there is none.
fn nginx_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("NGINX") {
        return path.into();
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/sbin", "/usr/local/sbin", "/usr/local/nginx/sbin"].map(PathBuf::from))
        .map(|dir| dir.join("nginx"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "nginx is not installed, and these tests need it: \
                 `apt-get install -y nginx` (.ci/run does), or set NGINX=/path/to/nginx"
            )
        })
}

/// nginx's access log line: the client's status, the upstream attempts'
/// addresses and statuses, the last upstream response's `Connection` header.
const LOG_FORMAT: &str = "'$status|$upstream_addr|$upstream_status|$upstream_http_connection'";

/// One client request as nginx logged it.
#[derive(Debug)]
struct Logged {
    /// What the client got.
    status: u16,
    /// Every upstream attempt, in order: the instance and its status (502 when
    /// nginx got no response: refused, reset, closed).
    attempts: Vec<(SocketAddr, u16)>,
    /// The last upstream response said `Connection: close` (a draining
    /// instance says so; nginx does not pass it on to the client).
    upstream_closed: bool,
}

impl Logged {
    /// Parses `status|addr, addr|status, status|connection` (see [`LOG_FORMAT`]).
    fn parse(line: &str) -> Logged {
        let fields: Vec<&str> = line.split('|').collect();
        assert_eq!(fields.len(), 4, "access log line {line:?}");
        let addrs: Vec<&str> = fields[1].split(", ").collect();
        let statuses: Vec<&str> = fields[2].split(", ").collect();
        assert_eq!(addrs.len(), statuses.len(), "access log line {line:?}");
        let attempts = addrs
            .into_iter()
            .zip(statuses)
            .map(|(addr, status)| {
                let addr = addr.parse().unwrap_or_else(|_| panic!("{line:?}"));
                (addr, status.parse().unwrap_or_else(|_| panic!("{line:?}")))
            })
            .collect();
        Logged {
            status: fields[0].parse().unwrap_or_else(|_| panic!("{line:?}")),
            attempts,
            upstream_closed: fields[3].eq_ignore_ascii_case("close"),
        }
    }
}

/// nginx (master + one worker) in a temp directory of its own; stopped by
/// PID on drop.
struct Nginx {
    dir: PathBuf,
    addr: SocketAddr,
    child: Child,
}

impl Nginx {
    /// Start nginx on a free loopback port with the example upstream
    /// configuration, `first` and `second` as its instances.
    fn start(first: SocketAddr, second: SocketAddr) -> Nginx {
        let addr = free_addr();
        let mut upstream = UPSTREAM_EXAMPLE.to_string();
        for (placeholder, real) in [
            (EXAMPLE_FIRST, first.to_string()),
            (EXAMPLE_SECOND, second.to_string()),
            (EXAMPLE_LISTEN, format!("listen {addr};")),
        ] {
            assert_eq!(
                upstream.matches(placeholder).count(),
                1,
                "config/nginx/shardd-upstream.conf must say {placeholder:?} once"
            );
            upstream = upstream.replace(placeholder, &real);
        }
        Nginx::run(addr, &upstream)
    }

    /// Start nginx listening on `addr` with `server_conf` (upstream and
    /// server blocks) inside its `http {}` block.
    fn run(addr: SocketAddr, server_conf: &str) -> Nginx {
        static STARTED: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "shardd-lb-{}-{}",
            std::process::id(),
            STARTED.fetch_add(1, Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("shardd-upstream.conf"), server_conf).unwrap();
        let d = dir.display();
        let conf = format!(
            "worker_processes 1;\n\
             events {{ worker_connections 1024; }}\n\
             http {{\n\
             \x20   log_format shardd_lb {LOG_FORMAT};\n\
             \x20   access_log {d}/access.log shardd_lb;\n\
             \x20   client_body_temp_path {d}/client_body;\n\
             \x20   proxy_temp_path {d}/proxy;\n\
             \x20   fastcgi_temp_path {d}/fastcgi;\n\
             \x20   uwsgi_temp_path {d}/uwsgi;\n\
             \x20   scgi_temp_path {d}/scgi;\n\
             \x20   include {d}/shardd-upstream.conf;\n\
             }}\n"
        );
        std::fs::write(dir.join("nginx.conf"), conf).unwrap();

        let globals = format!("daemon off; pid {d}/nginx.pid; error_log {d}/error.log;");
        let binary = nginx_binary();
        let child = Command::new(&binary)
            .arg("-p")
            .arg(&dir)
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-g")
            .arg(globals)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .unwrap_or_else(|e| panic!("start {}: {e}", binary.display()));
        let mut nginx = Nginx { dir, addr, child };
        let until = Instant::now() + START_TIMEOUT;
        while TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err() {
            if let Some(status) = nginx.child.try_wait().unwrap() {
                panic!("nginx exited at start-up ({status}): {}", nginx.error_log());
            }
            assert!(
                Instant::now() < until,
                "nginx not listening on {addr} within {START_TIMEOUT:?}: {}",
                nginx.error_log()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        nginx
    }

    /// What nginx wrote to its stderr and its error log.
    fn error_log(&self) -> String {
        let read = |name| std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
        read("stderr") + &read("error.log")
    }

    /// Every request logged so far (nginx writes each line as the request ends).
    fn access_log(&self) -> Vec<Logged> {
        let text = std::fs::read_to_string(self.dir.join("access.log")).unwrap_or_default();
        // A line still being written has no newline yet.
        let complete = &text[..text.rfind('\n').map_or(0, |end| end + 1)];
        complete.lines().map(Logged::parse).collect()
    }

    /// Wait until the access log has at least `lines` lines (nginx logs a
    /// request just after its response goes out).
    fn wait_for_log_lines(&self, lines: u64) -> Vec<Logged> {
        let mut log = Vec::new();
        wait_for(
            &format!("{lines} requests in nginx's access log"),
            Duration::from_secs(5),
            || {
                log = self.access_log();
                log.len() as u64 >= lines
            },
        );
        log
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // SIGTERM: the master stops its worker and exits.
        let running = self.child.try_wait().ok().flatten().is_none();
        if running
            && (!send_signal(&self.child, libc::SIGTERM)
                || wait_timeout(&mut self.child, Duration::from_secs(5)).is_none())
        {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
        if !std::thread::panicking() {
            let _ = std::fs::remove_dir_all(&self.dir);
        } else {
            eprintln!("nginx's files kept in {}", self.dir.display());
        }
    }
}

/// Requests in `log` that `instance` answered with `status`.
fn answered(log: &[Logged], instance: SocketAddr, status: u16) -> usize {
    log.iter()
        .flat_map(|logged| &logged.attempts)
        .filter(|&&(addr, got)| addr == instance && got == status)
        .count()
}

// ---------------------------------------------------------------------------
// The load client

/// What the load client got back.
#[derive(Debug, Default)]
struct Tally {
    /// `200 Hello, World!`.
    ok: u64,
    /// Every other status, by code.
    other_statuses: BTreeMap<u16, u64>,
    /// Connects refused, resets, closes before a whole response, timeouts, wrong bodies.
    errors: u64,
    /// The first few errors, for the failure message.
    first_errors: Vec<String>,
}

impl Tally {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.first_errors.len() < 10 {
            self.first_errors.push(what);
        }
    }

    fn add(&mut self, other: Tally) {
        self.ok += other.ok;
        for (status, n) in other.other_statuses {
            *self.other_statuses.entry(status).or_default() += n;
        }
        self.errors += other.errors;
        let room = 10 - self.first_errors.len().min(10);
        self.first_errors
            .extend(other.first_errors.into_iter().take(room));
    }

    /// Responses received, whatever their status.
    fn responses(&self) -> u64 {
        self.ok + self.other_statuses.values().sum::<u64>()
    }

    /// No error and no status but 200; else fail, showing nginx's error log.
    fn assert_clean(&self, nginx: &Nginx) {
        assert!(
            self.errors == 0 && self.other_statuses.is_empty(),
            "the client saw failures: {self:#?}\nnginx's error log:\n{}",
            nginx.error_log()
        );
    }
}

/// Clients on threads, each sending `GET /plaintext` over a keep-alive
/// connection to nginx, one request at a time, until told to stop.
struct Load {
    stop: Arc<AtomicBool>,
    /// 200s so far, over all clients.
    ok: Arc<AtomicU64>,
    clients: Vec<JoinHandle<Tally>>,
}

impl Load {
    fn start(addr: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let clients = (0..clients)
            .map(|_| {
                let (stop, ok) = (stop.clone(), ok.clone());
                std::thread::spawn(move || client(addr, &stop, &ok))
            })
            .collect();
        Load { stop, ok, clients }
    }

    fn ok(&self) -> u64 {
        self.ok.load(Relaxed)
    }

    /// Wait until the clients have had `more` 200s beyond `from`.
    fn wait_for_ok(&self, what: &str, from: u64, more: u64) {
        wait_for(what, START_TIMEOUT, || self.ok() >= from + more);
    }

    fn stop(mut self) -> Tally {
        self.stop.store(true, Relaxed);
        let mut tally = Tally::default();
        for client in std::mem::take(&mut self.clients) {
            tally.add(client.join().expect("load client"));
        }
        tally
    }
}

impl Drop for Load {
    /// A test that fails midway stops its clients too.
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
    }
}

/// One load client's loop.
fn client(addr: SocketAddr, stop: &AtomicBool, ok: &AtomicU64) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<Conn> = None;
    while !stop.load(Relaxed) {
        let c = match &mut conn {
            Some(c) => c,
            None => match Conn::connect(addr) {
                Ok(c) => conn.insert(c),
                Err(e) => {
                    tally.error(format!("connect to nginx: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        match c.get("/plaintext") {
            Ok(response) => {
                if response.status != 200 {
                    *tally.other_statuses.entry(response.status).or_default() += 1;
                } else if response.body != b"Hello, World!" {
                    tally.error(format!("200 with body {:?}", response.body_str()));
                } else {
                    tally.ok += 1;
                    ok.fetch_add(1, Relaxed);
                }
                // nginx closes a client connection now and then
                // (keepalive_requests): open another, not an error.
                if response.closes() {
                    conn = None;
                }
            }
            Err(e) => {
                tally.error(format!("GET through nginx: {e}"));
                conn = None;
            }
        }
    }
    tally
}

/// A keep-alive HTTP/1.1 connection to nginx.
struct Conn {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    fn connect(addr: SocketAddr) -> io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, CLIENT_TIMEOUT)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(CLIENT_TIMEOUT))?;
        stream.set_write_timeout(Some(CLIENT_TIMEOUT))?;
        Ok(Conn {
            stream,
            buf: Vec::new(),
        })
    }

    fn get(&mut self, path: &str) -> io::Result<support::HttpResponse> {
        self.stream
            .write_all(format!("GET {path} HTTP/1.1\r\nHost: lb.test\r\n\r\n").as_bytes())?;
        let mut chunk = [0u8; 4096];
        loop {
            if let Some((response, used)) = parse_response(&self.buf, "GET", false)? {
                self.buf.drain(..used);
                return Ok(response);
            }
            match self.stream.read(&mut chunk)? {
                0 => {
                    return Err(io::Error::new(
                        ErrorKind::UnexpectedEof,
                        format!(
                            "closed before a whole response; got {:?}",
                            String::from_utf8_lossy(&self.buf)
                        ),
                    ))
                }
                n => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// The tests

/// Two instances behind nginx. With requests flowing through nginx the whole
/// time, the first instance gets SIGTERM, drains and exits 0, stays down a
/// moment and is started again on the same port; once nginx is sending it
/// requests again, the second gets the same. The client sees only
/// `200 Hello, World!`: no error, no other status. nginx's log shows that it
/// did meet each instance while it was stopping or down, and moved on.
#[test]
fn rolling_restart_under_load_loses_no_request() {
    let _serial = one_at_a_time();
    let mut first = Instance::start("first", &["--shards", "2"]);
    let mut second = Instance::start("second", &["--shards", "2"]);
    let nginx = Nginx::start(first.addr, second.addr);
    let load = Load::start(nginx.addr, 4);

    wait_for(
        "both instances serving through nginx",
        START_TIMEOUT,
        || {
            let log = nginx.access_log();
            answered(&log, first.addr, 200) > 0 && answered(&log, second.addr, 200) > 0
        },
    );

    for instance in [&mut first, &mut second] {
        let before = load.ok();
        instance.terminate();
        std::thread::sleep(DOWN_FOR);
        let down = load.ok();
        assert!(
            down > before,
            "no request served while {} was stopping and down",
            instance.name
        );

        let logged_before = nginx.access_log().len();
        instance.run();
        wait_for(
            &format!("nginx sending requests to {} again", instance.name),
            START_TIMEOUT,
            || answered(&nginx.access_log()[logged_before..], instance.addr, 200) > 0,
        );
        load.wait_for_ok("the load going on after the restart", load.ok(), 100);
    }

    let tally = load.stop();
    tally.assert_clean(&nginx);
    let log = nginx.wait_for_log_lines(tally.responses());
    eprintln!(
        "rolling restart: {tally:?}; first answered {} and failed {} times, second {} and {}; \
         {} answers with Connection: close",
        answered(&log, first.addr, 200),
        answered(&log, first.addr, 502),
        answered(&log, second.addr, 200),
        answered(&log, second.addr, 502),
        log.iter().filter(|logged| logged.upstream_closed).count(),
    );
    assert!(
        tally.ok >= 200,
        "too little load to show anything: {tally:?}"
    );
    for instance in [&first, &second] {
        // Requests that reached the instance while it drained were answered,
        // with `Connection: close`, and nginx passed the answers on.
        let answered_draining = log
            .iter()
            .filter(|logged| {
                logged.upstream_closed && logged.attempts.last() == Some(&(instance.addr, 200))
            })
            .count();
        assert!(
            answered_draining > 0,
            "no request reached {} while it drained, so the test showed nothing",
            instance.name
        );
        // A refused connect or a connection closed under it: logged as 502
        // for that attempt, and the request went on to the other instance.
        let met_down = log
            .iter()
            .filter(|logged| {
                logged.attempts.len() == 2
                    && logged.attempts[0] == (instance.addr, 502)
                    && logged.attempts[1].1 == 200
            })
            .count();
        assert!(
            met_down > 0,
            "nginx never met {} stopped and retried elsewhere, so the test showed nothing",
            instance.name
        );
    }
    assert!(
        log.iter().all(|logged| logged.status == 200),
        "nginx logged a failure the client did not see?"
    );
}

/// Honest overload: the first instance takes one connection (one shard,
/// `max_connections_per_shard = 1`, no pending queue, `overload = reject`),
/// the second has room. Every connection nginx opens to the first beyond
/// its one gets shardd's 503 at once, and nginx retries that request on the
/// second: the client sees no 503, nginx's log shows the first's 503s (each
/// followed by the second's 200), and the first keeps serving what it has
/// room for.
///
/// The rejecter answers once the request's first bytes are in: a 503 sent
/// the moment the connection is accepted, before nginx has written its
/// request, is mishandled by nginx before 1.29.5 (commit d7a2494) on retry
/// (about half of the retried requests became 502s).
#[test]
fn overloaded_instance_503s_are_retried_on_the_other() {
    let _serial = one_at_a_time();
    let (full_admin, roomy_admin) = (free_addr(), free_addr());
    let full = Instance::start(
        "full",
        &[
            "--shards",
            "1",
            "--max-connections-per-shard",
            "1",
            "--max-pending",
            "0",
            "--overload",
            "reject",
            "--admin",
            &full_admin.to_string(),
        ],
    );
    let roomy = Instance::start(
        "roomy",
        &["--shards", "2", "--admin", &roomy_admin.to_string()],
    );
    let nginx = Nginx::start(full.addr, roomy.addr);
    let load = Load::start(nginx.addr, 8);

    wait_for(
        "the full instance rejecting connections",
        START_TIMEOUT,
        || answered(&nginx.access_log(), full.addr, 503) >= 200,
    );
    let tally = load.stop();
    tally.assert_clean(&nginx);
    let log = nginx.wait_for_log_lines(tally.responses());
    let rejected = answered(&log, full.addr, 503);
    eprintln!(
        "overload: {tally:?}; the full instance rejected {rejected} and answered {}; \
         the roomy one answered {}",
        answered(&log, full.addr, 200),
        answered(&log, roomy.addr, 200),
    );

    assert!(rejected >= 200, "the full instance rejected {rejected}");
    assert_eq!(
        answered(&log, roomy.addr, 503),
        0,
        "the instance with room answered 503"
    );
    for logged in &log {
        if logged.attempts.first() == Some(&(full.addr, 503)) {
            assert_eq!(
                logged.attempts,
                [(full.addr, 503), (roomy.addr, 200)],
                "a 503 retried on the other instance"
            );
        }
    }
    assert!(
        answered(&log, full.addr, 200) > 0,
        "the full instance stays in rotation for its one connection"
    );
    // The full instance's own metrics show the rejections nginx saw (one
    // rejected connection per 503), the other's none.
    let counted = metric_sum(full_admin, "shardd_acceptor_rejected_total");
    assert!(
        counted >= rejected as f64,
        "the full instance counted {counted} rejections, nginx saw {rejected}"
    );
    assert_eq!(
        metric_sum(roomy_admin, "shardd_acceptor_rejected_total"),
        0.0
    );
}

#[test]
fn a_draining_instance_is_not_ready_while_it_finishes() {
    let _serial = one_at_a_time();
    let admin = free_addr();
    let mut instance = Instance::start(
        "draining",
        &["--shards", "1", "--admin", &admin.to_string()],
    );
    assert_eq!(
        admin_get(admin, "/health/ready").map(|(status, _)| status),
        Some(200)
    );
    // An idle keep-alive connection keeps the drain going for its grace period.
    let mut idle = TcpStream::connect(instance.addr).unwrap();
    idle.write_all(b"GET /plaintext HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 512];
    let _ = idle.read(&mut first).unwrap();
    let child = instance.child.as_ref().unwrap();
    assert!(send_signal(child, libc::SIGTERM));
    let mut saw = None;
    wait_for(
        "readiness to turn 503 during the drain",
        Duration::from_secs(5),
        || {
            saw = admin_get(admin, "/health/ready").map(|(status, _)| status);
            saw == Some(503)
        },
    );
    // Liveness still says the process runs.
    assert_eq!(
        admin_get(admin, "/health/live").map(|(status, _)| status),
        Some(200)
    );
    instance.wait_exit();
}

// ---------------------------------------------------------------------------
// HTTP/2 to shardd: nginx's grpc_pass and HAProxy's `proto h2`

/// nginx 1.22 speaks HTTP/2 to an upstream only through its gRPC proxy
/// (`grpc_pass grpc://`, h2c), which passes any request, not only gRPC.
/// Clients speak h2c to nginx too (`listen … http2`).
fn nginx_http2_conf(addr: SocketAddr, first: SocketAddr, second: SocketAddr) -> String {
    format!(
        "upstream shardd_h2 {{\n\
         \x20   server {first} max_fails=0;\n\
         \x20   server {second} max_fails=0;\n\
         \x20   keepalive 32;\n\
         }}\n\
         server {{\n\
         \x20   listen {addr} http2;\n\
         \x20   keepalive_requests 100000;\n\
         \x20   location / {{\n\
         \x20       grpc_pass grpc://shardd_h2;\n\
         \x20       grpc_next_upstream error timeout http_503;\n\
         \x20       grpc_next_upstream_tries 2;\n\
         \x20       grpc_connect_timeout 1s;\n\
         \x20   }}\n\
         }}\n"
    )
}

/// HAProxy in `mode http`, h2c on both sides (`proto h2`), in the
/// foreground (`-db`); killed by its PID on drop.
struct HaproxyH2 {
    addr: SocketAddr,
    child: Child,
    dir: PathBuf,
}

impl HaproxyH2 {
    /// A connect refused, or a connection closed with no response, is
    /// retried (`retry-on`) on the other instance (`option redispatch`).
    fn start(first: SocketAddr, second: SocketAddr) -> HaproxyH2 {
        let dir = std::env::temp_dir().join(format!("shardd-lb-haproxy-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let addr = free_addr();
        let config = format!(
            "global\n    maxconn 256\n\
             defaults\n    mode http\n    timeout connect 1s\n    timeout client 30s\n\
             \x20   timeout server 30s\n    retries 3\n    option redispatch 1\n\
             \x20   retry-on conn-failure empty-response response-timeout 503\n\
             frontend in\n    bind {addr} proto h2\n    default_backend shardd\n\
             backend shardd\n    balance roundrobin\n\
             \x20   server first {first} proto h2\n    server second {second} proto h2\n"
        );
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).unwrap();
        let child = Command::new(support::haproxy_binary())
            .arg("-db")
            .arg("-f")
            .arg(&path)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.join("stderr")).unwrap())
            .spawn()
            .expect("start haproxy");
        let haproxy = HaproxyH2 { addr, child, dir };
        wait_for("HAProxy listens", START_TIMEOUT, || {
            TcpStream::connect(addr).is_ok()
        });
        haproxy
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }
}

impl Drop for HaproxyH2 {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// One HTTP/2 load client's loop: `GET /plaintext` on one connection to
/// the balancer, one at a time; a new connection when the balancer sends
/// GOAWAY (a request it left unprocessed is sent again, as RFC 9113 lets a
/// client do) or the connection fails (an error).
fn h2_client(addr: SocketAddr, stop: &AtomicBool, ok: &AtomicU64) -> Tally {
    let mut tally = Tally::default();
    let mut conn: Option<support::H2Client> = None;
    while !stop.load(Relaxed) {
        let client = match &mut conn {
            Some(client) => client,
            None => match support::H2Client::try_connect(addr) {
                Ok(client) => conn.insert(client),
                Err(e) => {
                    tally.error(format!("HTTP/2 to the balancer: {e}"));
                    std::thread::sleep(Duration::from_millis(10));
                    continue;
                }
            },
        };
        match client.try_get("/plaintext") {
            Ok(response) if response.status != 200 => {
                *tally.other_statuses.entry(response.status).or_default() += 1;
            }
            Ok(response) if response.body != b"Hello, World!" => {
                tally.error(format!("200 with body {:?}", response.body_str()));
            }
            Ok(_) => {
                tally.ok += 1;
                ok.fetch_add(1, Relaxed);
            }
            Err(support::H2Failure::NotProcessed(_)) => conn = None,
            Err(support::H2Failure::Failed(why)) => {
                tally.error(format!("GET over HTTP/2 through the balancer: {why}"));
                conn = None;
            }
        }
    }
    tally
}

impl Load {
    /// Like [`Load::start`], with clients that speak HTTP/2 (prior knowledge).
    fn start_http2(addr: SocketAddr, clients: usize) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ok = Arc::new(AtomicU64::new(0));
        let clients = (0..clients)
            .map(|_| {
                let (stop, ok) = (stop.clone(), ok.clone());
                std::thread::spawn(move || h2_client(addr, &stop, &ok))
            })
            .collect();
        Load { stop, ok, clients }
    }
}

/// Two instances behind a balancer speaking HTTP/2 to them, HTTP/2 clients
/// in front: each instance in turn drains (SIGTERM, GOAWAY to the balancer's
/// connections, exit 0), stays down a moment and comes back, while the
/// clients keep sending. Returns what the clients saw.
fn drain_each_behind_an_http2_balancer(
    balancer: SocketAddr,
    first: &mut Instance,
    second: &mut Instance,
    admins: [SocketAddr; 2],
) -> Tally {
    let load = Load::start_http2(balancer, 4);
    load.wait_for_ok("requests through the balancer", 0, 200);
    for (instance, admin) in [(&mut *first, admins[0]), (&mut *second, admins[1])] {
        assert!(
            metric_sum(admin, "shardd_http2_connections_total") > 0.0,
            "the balancer spoke HTTP/2 to {}",
            instance.name
        );
        instance.terminate();
        let from = load.ok();
        load.wait_for_ok("requests while an instance is down", from, 100);
        std::thread::sleep(DOWN_FOR);
        instance.run();
        wait_for(
            &format!("the balancer using {} again over HTTP/2", instance.name),
            START_TIMEOUT,
            || metric_sum(admin, "shardd_requests_total") > 0.0,
        );
    }
    let from = load.ok();
    load.wait_for_ok("requests after both restarts", from, 100);
    load.stop()
}

/// Two instances on `--shards 2` with an admin port each.
fn two_instances() -> (Instance, Instance, [SocketAddr; 2]) {
    let admins = [free_addr(), free_addr()];
    let first = Instance::start(
        "first",
        &["--shards", "2", "--admin", &admins[0].to_string()],
    );
    let second = Instance::start(
        "second",
        &["--shards", "2", "--admin", &admins[1].to_string()],
    );
    (first, second, admins)
}

#[test]
fn nginx_grpc_pass_http2_to_shardd_loses_no_request_through_drains() {
    let _serial = one_at_a_time();
    let (mut first, mut second, admins) = two_instances();
    let addr = free_addr();
    let nginx = Nginx::run(addr, &nginx_http2_conf(addr, first.addr, second.addr));
    let tally = drain_each_behind_an_http2_balancer(nginx.addr, &mut first, &mut second, admins);
    tally.assert_clean(&nginx);
    let log = nginx.access_log();
    for instance in [&first, &second] {
        assert!(
            answered(&log, instance.addr, 200) > 0,
            "nginx's log shows {} answering",
            instance.name
        );
    }
    eprintln!("{} requests over HTTP/2 through nginx", tally.ok);
}

#[test]
fn haproxy_proto_h2_to_shardd_loses_no_request_through_drains() {
    let _serial = one_at_a_time();
    let (mut first, mut second, admins) = two_instances();
    let haproxy = HaproxyH2::start(first.addr, second.addr);
    let tally = drain_each_behind_an_http2_balancer(haproxy.addr, &mut first, &mut second, admins);
    assert!(
        tally.errors == 0 && tally.other_statuses.is_empty(),
        "the client saw failures: {tally:#?}\nHAProxy said:\n{}",
        haproxy.log()
    );
    eprintln!("{} requests over HTTP/2 through HAProxy", tally.ok);
}
