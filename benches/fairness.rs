//! Fairness benchmark: how long a new connection waits for its answer while
//! greedy clients pipeline nonstop on the same server.
//!
//! ```text
//! cargo bench --bench fairness -- [--server 'LABEL=CMD ARGS with {port}']...
//!     [--greedy 1,4] [--duration SECS] [--interval-ms MS] [--warmup SECS]
//!     [--timeout SECS] [--batch N] [--settle SECS] [--out DIR]
//! ```
//!
//! For every server in turn (started as an external process on a free port
//! of 127.0.0.1, stopped with SIGTERM at the end) and every greedy count G:
//! G greedy clients, each a writer thread sending pipelined `GET /plaintext`
//! requests nonstop and a reader thread reading (and counting) every
//! response as fast as it comes; after `--warmup`, a fresh connection every
//! `--interval-ms` for `--duration` seconds, open loop (each on its own
//! thread, whether or not the one before was answered), each sending one
//! `GET /plaintext` with `Connection: close`, timed from `connect` to the
//! last byte of its response.
//!
//! Per cell: the fresh requests' latency (median, p90, p99, max over those
//! answered), how many failed or timed out, and the greedy clients'
//! responses/s during the fresh phase. A table, a `csv,...` line per cell,
//! and `<out>/fairness.csv`.
//!
//! Run without `--bench` (as `cargo test --benches` does) it is a smoke
//! test: one greedy client, one second, exit 1 only if the machinery broke
//! (a server did not start or stop, or nothing was answered at all).

use std::fmt::Write as _;
use std::fs::File;
use std::io::{self, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

const SHARDD: &str = env!("CARGO_BIN_EXE_shardd");
/// TechEmpower's plaintext request (its `Accept` header, keep-alive).
const GREEDY_REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n";
const FRESH_REQUEST: &[u8] =
    b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n";
const EXPECTED_BODY: &[u8] = b"Hello, World!";
/// How often blocked greedy threads look at the stop flag.
const POLL: Duration = Duration::from_millis(100);

const HELP: &str = "\
fairness: fresh-connection latency beside greedy pipelining clients

  cargo bench --bench fairness -- [options]

  --server 'LABEL=CMD ARGS'  a server to measure (repeatable); {port} in CMD is
                             replaced by a free port; split on whitespace, no shell.
                             Default: shardd=<release shardd> --bind 127.0.0.1:{port} --shards 1 --no-pin
  --greedy LIST              greedy client counts, one cell each (default 1,4)
  --duration SECS            fresh phase per cell (default 10)
  --interval-ms MS           between fresh connections (default 50)
  --warmup SECS              greedy clients alone before the fresh phase (default 1)
  --timeout SECS             a fresh request unanswered by then is a timeout (default 5)
  --batch N                  pipelined requests per greedy write (default 256)
  --settle SECS              pause between cells (default 1)
  --out DIR                  where fairness.csv and server logs go (default target/bench-results)
";

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Target {
    label: String,
    argv: Vec<String>,
}

struct Opts {
    targets: Vec<Target>,
    greedy: Vec<usize>,
    duration: Duration,
    interval: Duration,
    warmup: Duration,
    timeout: Duration,
    batch: usize,
    settle: Duration,
    out: PathBuf,
    smoke: bool,
}

fn parse_args() -> Result<Opts, String> {
    let mut args = std::env::args().skip(1);
    let mut smoke = true;
    let mut targets = Vec::new();
    let mut greedy = None;
    let mut duration = None;
    let mut interval_ms = 50u64;
    let mut warmup = None;
    let mut timeout = None;
    let mut batch = 256usize;
    let mut settle = None;
    let mut out = None;

    fn number<T: std::str::FromStr>(key: &str, value: String) -> Result<T, String> {
        value
            .parse()
            .map_err(|_| format!("{key}: not a valid number: {value:?}"))
    }
    fn seconds(key: &str, value: String) -> Result<Duration, String> {
        let secs: f64 = number(key, value)?;
        Duration::try_from_secs_f64(secs).map_err(|_| format!("{key}: bad duration {secs}"))
    }

    while let Some(arg) = args.next() {
        let (key, mut inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .take()
                .or_else(|| args.next())
                .ok_or_else(|| format!("{key} needs a value"))
        };
        match key.as_str() {
            "--bench" => smoke = false,
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "--server" => {
                let spec = value()?;
                let (label, cmd) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("--server wants LABEL=CMD, got {spec:?}"))?;
                let argv: Vec<String> = cmd.split_whitespace().map(String::from).collect();
                if label.is_empty() || argv.is_empty() {
                    return Err(format!("bad --server {spec:?}"));
                }
                if !argv.iter().any(|a| a.contains("{port}")) {
                    return Err(format!(
                        "--server {label}: the command must contain {{port}}"
                    ));
                }
                targets.push(Target {
                    label: label.into(),
                    argv,
                });
            }
            "--greedy" => {
                greedy = Some(
                    value()?
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(|n| number::<usize>("--greedy", n.into()))
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
            "--duration" => duration = Some(seconds(&key, value()?)?),
            "--interval-ms" => interval_ms = number(&key, value()?)?,
            "--warmup" => warmup = Some(seconds(&key, value()?)?),
            "--timeout" => timeout = Some(seconds(&key, value()?)?),
            "--batch" => batch = number(&key, value()?)?,
            "--settle" => settle = Some(seconds(&key, value()?)?),
            "--out" => out = Some(PathBuf::from(value()?)),
            // libtest-style flags cargo may pass along; nothing to do.
            "--nocapture" | "--quiet" | "-q" | "--show-output" => {}
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    if targets.is_empty() {
        targets.push(Target {
            label: "shardd".into(),
            argv: [
                SHARDD,
                "--bind",
                "127.0.0.1:{port}",
                "--shards",
                "1",
                "--no-pin",
            ]
            .map(String::from)
            .to_vec(),
        });
    }
    if batch == 0 || interval_ms == 0 {
        return Err("--batch and --interval-ms must be at least 1".into());
    }
    let secs = Duration::from_secs_f64;
    Ok(Opts {
        targets,
        greedy: greedy.unwrap_or_else(|| if smoke { vec![1] } else { vec![1, 4] }),
        duration: duration.unwrap_or(if smoke { secs(1.0) } else { secs(10.0) }),
        interval: Duration::from_millis(interval_ms),
        warmup: warmup.unwrap_or(if smoke { secs(0.3) } else { secs(1.0) }),
        timeout: timeout.unwrap_or(if smoke { secs(3.0) } else { secs(5.0) }),
        batch,
        settle: settle.unwrap_or(if smoke { secs(0.0) } else { secs(1.0) }),
        out: out.unwrap_or_else(default_out_dir),
        smoke,
    })
}

/// `target/bench-results`, found from this executable (`target/<profile>/deps/fairness-…`).
fn default_out_dir() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| Some(exe.parent()?.parent()?.parent()?.to_path_buf()))
        .unwrap_or_else(|| PathBuf::from("target"))
        .join("bench-results")
}

// ---------------------------------------------------------------------------
// Servers
// ---------------------------------------------------------------------------

struct Running {
    label: String,
    port: u16,
    child: Child,
    log: PathBuf,
}

fn free_port() -> io::Result<u16> {
    Ok(TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
        .local_addr()?
        .port())
}

fn start_server(target: &Target, out: &Path) -> Result<Running, String> {
    let port = free_port().map_err(|e| format!("no free port: {e}"))?;
    let argv: Vec<String> = target
        .argv
        .iter()
        .map(|a| a.replace("{port}", &port.to_string()))
        .collect();
    let log = out.join(format!(
        "fairness-server-{}.log",
        target.label.replace('/', "_")
    ));
    let log_file = File::create(&log).map_err(|e| format!("{}: {e}", log.display()))?;
    let log_err = log_file.try_clone().map_err(|e| e.to_string())?;
    let mut child = Command::new(&argv[0])
        .args(&argv[1..])
        .stdin(Stdio::null())
        .stdout(log_file)
        .stderr(log_err)
        .spawn()
        .map_err(|e| format!("{}: cannot start {}: {e}", target.label, argv[0]))?;
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let until = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "{} exited before listening ({status}); log {}:\n{}",
                target.label,
                log.display(),
                std::fs::read_to_string(&log).unwrap_or_default()
            ));
        }
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            break;
        }
        if Instant::now() > until {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{} did not listen on {port}", target.label));
        }
        thread::sleep(Duration::from_millis(50));
    }
    eprintln!(
        "fairness: started {} on port {port} (pid {}): {}",
        target.label,
        child.id(),
        argv.join(" ")
    );
    Ok(Running {
        label: target.label.clone(),
        port,
        child,
        log,
    })
}

/// SIGTERM by pid, wait for the drain (up to 15 s), then SIGKILL.
fn stop_server(server: &mut Running) -> Option<ExitStatus> {
    if let Ok(Some(status)) = server.child.try_wait() {
        return Some(status);
    }
    // SAFETY: plain kill(2) on our own child's pid.
    unsafe { libc::kill(server.child.id() as libc::pid_t, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(15);
    while Instant::now() < until {
        if let Ok(Some(status)) = server.child.try_wait() {
            return Some(status);
        }
        thread::sleep(Duration::from_millis(20));
    }
    eprintln!(
        "fairness: {} did not exit 15 s after SIGTERM; killing it",
        server.label
    );
    let _ = server.child.kill();
    server.child.wait().ok()
}

// ---------------------------------------------------------------------------
// Responses
// ---------------------------------------------------------------------------

/// Status, head length and `Content-Length` of the response at the front of
/// `bytes`, once its head is complete.
fn parse_head(bytes: &[u8]) -> Result<Option<(u16, usize, usize)>, String> {
    let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let head = &bytes[..end];
    let status = head
        .strip_prefix(b"HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| std::str::from_utf8(code).ok()?.parse().ok())
        .ok_or_else(|| format!("bad status line in {:?}", String::from_utf8_lossy(head)))?;
    let length = head
        .split(|&b| b == b'\n')
        .skip(1)
        .filter_map(|line| {
            let colon = line.iter().position(|&b| b == b':')?;
            let (name, value) = line.split_at(colon);
            if !name.eq_ignore_ascii_case(b"content-length") {
                return None;
            }
            std::str::from_utf8(&value[1..]).ok()?.trim().parse().ok()
        })
        .next()
        .ok_or_else(|| format!("no Content-Length in {:?}", String::from_utf8_lossy(head)))?;
    Ok(Some((status, end + 4, length)))
}

/// Counts whole responses in a stream: `200` with the expected body, or not.
#[derive(Default)]
struct ResponseCounter {
    pending: Vec<u8>,
    good: u64,
    bad: u64,
}

impl ResponseCounter {
    fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        self.pending.extend_from_slice(data);
        let mut at = 0;
        while let Some((status, head_len, length)) = parse_head(&self.pending[at..])? {
            let whole = head_len + length;
            if self.pending.len() - at < whole {
                break;
            }
            let body = &self.pending[at + head_len..at + whole];
            if status == 200 && body == EXPECTED_BODY {
                self.good += 1;
            } else {
                self.bad += 1;
            }
            at += whole;
        }
        self.pending.drain(..at);
        Ok(())
    }
}

// ---------------------------------------------------------------------------
// Greedy clients
// ---------------------------------------------------------------------------

/// Pipelines nonstop from one thread, reads every response on another.
struct Greedy {
    stream: TcpStream,
    stop: Arc<AtomicBool>,
    good: Arc<AtomicU64>,
    writer: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<Result<u64, String>>>,
}

impl Greedy {
    fn start(addr: SocketAddr, batch: usize) -> io::Result<Greedy> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(POLL))?;
        stream.set_write_timeout(Some(POLL))?;
        let stop = Arc::new(AtomicBool::new(false));
        let good = Arc::new(AtomicU64::new(0));

        let mut out = stream.try_clone()?;
        let stopping = stop.clone();
        let writer = thread::spawn(move || {
            let requests = GREEDY_REQUEST.repeat(batch);
            let mut sent = 0;
            while !stopping.load(Relaxed) {
                match out.write(&requests[sent..]) {
                    Ok(0) => return,
                    Ok(n) => sent = (sent + n) % requests.len(),
                    Err(e) if retry(&e) => {}
                    Err(_) => return,
                }
            }
        });

        let mut input = stream.try_clone()?;
        let (stopping, count) = (stop.clone(), good.clone());
        let reader = thread::spawn(move || {
            let mut counter = ResponseCounter::default();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match input.read(&mut buf) {
                    Ok(0) if stopping.load(Relaxed) => break,
                    Ok(0) => {
                        return Err(format!(
                            "the server closed a greedy connection after {} responses",
                            counter.good
                        ))
                    }
                    Ok(n) => {
                        counter.feed(&buf[..n])?;
                        count.store(counter.good, Relaxed);
                    }
                    Err(e) if retry(&e) => {
                        if stopping.load(Relaxed) {
                            break;
                        }
                    }
                    Err(_) if stopping.load(Relaxed) => break,
                    Err(e) => return Err(format!("greedy read: {e}")),
                }
            }
            Ok(counter.bad)
        });
        Ok(Greedy {
            stream,
            stop,
            good,
            writer: Some(writer),
            reader: Some(reader),
        })
    }

    fn responses(&self) -> u64 {
        self.good.load(Relaxed)
    }

    /// Stop, close, and return the count of bad responses (or what went wrong).
    fn finish(mut self, until: Instant) -> Result<u64, String> {
        self.stop.store(true, Relaxed);
        let _ = self.stream.shutdown(Shutdown::Both);
        if join_until(self.writer.take().unwrap(), until).is_none() {
            return Err("a greedy writer did not stop".into());
        }
        join_until(self.reader.take().unwrap(), until)
            .unwrap_or_else(|| Err("a greedy reader did not stop".into()))
    }
}

impl Drop for Greedy {
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

fn retry(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

fn join_until<T>(thread: JoinHandle<T>, until: Instant) -> Option<T> {
    while !thread.is_finished() {
        if Instant::now() >= until {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
    thread.join().ok()
}

// ---------------------------------------------------------------------------
// Fresh connections
// ---------------------------------------------------------------------------

enum Fresh {
    Answered(Duration),
    TimedOut,
    Failed(String),
}

/// One `GET /plaintext` on a new connection, connect to full response.
fn fresh_request(addr: SocketAddr, timeout: Duration) -> Fresh {
    let started = Instant::now();
    let deadline = started + timeout;
    let timed_out = |e: &io::Error| retry(e) || Instant::now() >= deadline;
    let mut stream = match TcpStream::connect_timeout(&addr, timeout) {
        Ok(stream) => stream,
        Err(e) if timed_out(&e) => return Fresh::TimedOut,
        Err(e) => return Fresh::Failed(format!("connect: {e}")),
    };
    let _ = stream.set_nodelay(true);
    let _ = stream.set_write_timeout(Some(timeout));
    if let Err(e) = stream.write_all(FRESH_REQUEST) {
        return if timed_out(&e) {
            Fresh::TimedOut
        } else {
            Fresh::Failed(format!("write: {e}"))
        };
    }
    let mut received = Vec::with_capacity(512);
    let mut buf = [0u8; 4096];
    loop {
        match parse_head(&received) {
            Ok(Some((status, head_len, length))) if received.len() >= head_len + length => {
                let elapsed = started.elapsed();
                let body = &received[head_len..head_len + length];
                return if status == 200 && body == EXPECTED_BODY {
                    Fresh::Answered(elapsed)
                } else {
                    Fresh::Failed(format!("status {status}"))
                };
            }
            Ok(_) => {}
            Err(e) => return Fresh::Failed(e),
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Fresh::TimedOut;
        }
        let _ = stream.set_read_timeout(Some(left));
        match stream.read(&mut buf) {
            Ok(0) => return Fresh::Failed("closed before the full response".into()),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if timed_out(&e) => return Fresh::TimedOut,
            Err(e) => return Fresh::Failed(format!("read: {e}")),
        }
    }
}

// ---------------------------------------------------------------------------
// A cell: one server, G greedy clients
// ---------------------------------------------------------------------------

struct Row {
    label: String,
    greedy: usize,
    /// Fresh connections attempted.
    fresh: usize,
    /// Latencies of the answered ones, sorted.
    latencies: Vec<Duration>,
    failed: usize,
    timed_out: usize,
    greedy_rps: f64,
    /// Greedy clients that got no response at all during the fresh phase.
    stalled: usize,
    /// Greedy clients' problems (bad responses, a reader error).
    greedy_errors: Vec<String>,
    first_failure: Option<String>,
}

impl Row {
    fn percentile(&self, p: f64) -> Option<Duration> {
        if self.latencies.is_empty() {
            return None;
        }
        let rank = ((p / 100.0) * self.latencies.len() as f64).ceil() as usize;
        Some(self.latencies[rank.clamp(1, self.latencies.len()) - 1])
    }
}

fn run_cell(server: &Running, greedy: usize, opts: &Opts) -> Row {
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, server.port));
    let mut row = Row {
        label: server.label.clone(),
        greedy,
        fresh: 0,
        latencies: Vec::new(),
        failed: 0,
        timed_out: 0,
        greedy_rps: 0.0,
        stalled: 0,
        greedy_errors: Vec::new(),
        first_failure: None,
    };
    let mut clients = Vec::new();
    for _ in 0..greedy {
        match Greedy::start(addr, opts.batch) {
            Ok(client) => clients.push(client),
            Err(e) => row.greedy_errors.push(format!("greedy connect: {e}")),
        }
    }
    thread::sleep(opts.warmup);

    // Open loop: a thread per fresh connection, on schedule.
    let (results, finished) = mpsc::channel();
    let before: Vec<u64> = clients.iter().map(Greedy::responses).collect();
    let started = Instant::now();
    let mut fresh = 0;
    loop {
        let due = started + opts.interval * fresh as u32;
        if due >= started + opts.duration {
            break;
        }
        thread::sleep(due.saturating_duration_since(Instant::now()));
        let (results, timeout) = (results.clone(), opts.timeout);
        thread::spawn(move || {
            let _ = results.send(fresh_request(addr, timeout));
        });
        fresh += 1;
    }
    drop(results);
    // Greedy throughput over the fresh phase proper.
    let window = started.elapsed();
    let after: Vec<u64> = clients.iter().map(Greedy::responses).collect();
    let during: Vec<u64> = after.iter().zip(&before).map(|(a, b)| a - b).collect();
    row.greedy_rps = during.iter().sum::<u64>() as f64 / window.as_secs_f64();
    row.stalled = during.iter().filter(|&&n| n == 0).count();
    row.fresh = fresh;
    // Every fresh request ends by its own timeout; allow a margin past it.
    let until = Instant::now() + opts.timeout + Duration::from_secs(2);
    while row.latencies.len() + row.failed + row.timed_out < fresh {
        let left = until.saturating_duration_since(Instant::now());
        match finished.recv_timeout(left) {
            Ok(Fresh::Answered(latency)) => row.latencies.push(latency),
            Ok(Fresh::TimedOut) => row.timed_out += 1,
            Ok(Fresh::Failed(why)) => {
                row.failed += 1;
                row.first_failure.get_or_insert(why);
            }
            Err(_) => {
                row.timed_out += fresh - (row.latencies.len() + row.failed + row.timed_out);
                break;
            }
        }
    }
    row.latencies.sort();

    let until = Instant::now() + Duration::from_secs(10);
    for client in clients {
        match client.finish(until) {
            Ok(0) => {}
            Ok(bad) => row
                .greedy_errors
                .push(format!("{bad} greedy responses were not 200 Hello, World!")),
            Err(e) => row.greedy_errors.push(e),
        }
    }
    row
}

// ---------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------

fn ms(latency: Option<Duration>) -> String {
    latency.map_or("-".into(), |d| format!("{:.1}", d.as_secs_f64() * 1e3))
}

fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:>6} {:>6} {:>6} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>12} {:>7}",
        "server",
        "greedy",
        "fresh",
        "ok",
        "failed",
        "timeouts",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms",
        "greedy rps",
        "stalled"
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:<16} {:>6} {:>6} {:>6} {:>6} {:>8} {:>9} {:>9} {:>9} {:>9} {:>12.0} {:>7}",
            r.label,
            r.greedy,
            r.fresh,
            r.latencies.len(),
            r.failed,
            r.timed_out,
            ms(r.percentile(50.0)),
            ms(r.percentile(90.0)),
            ms(r.percentile(99.0)),
            ms(r.latencies.last().copied()),
            r.greedy_rps,
            r.stalled
        );
    }
    out
}

const CSV_HEADER: &str = "server,greedy,fresh,ok,failed,timeouts,p50_ms,p90_ms,p99_ms,max_ms,greedy_rps,greedy_stalled,duration_s,interval_ms,timeout_s,batch";

fn csv_line(r: &Row, opts: &Opts) -> String {
    let ms =
        |d: Option<Duration>| d.map_or(String::new(), |d| format!("{:.3}", d.as_secs_f64() * 1e3));
    format!(
        "{},{},{},{},{},{},{},{},{},{},{:.0},{},{},{},{},{}",
        r.label,
        r.greedy,
        r.fresh,
        r.latencies.len(),
        r.failed,
        r.timed_out,
        ms(r.percentile(50.0)),
        ms(r.percentile(90.0)),
        ms(r.percentile(99.0)),
        ms(r.latencies.last().copied()),
        r.greedy_rps,
        r.stalled,
        opts.duration.as_secs_f64(),
        opts.interval.as_millis(),
        opts.timeout.as_secs_f64(),
        opts.batch
    )
}

fn main() {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("fairness: {message}");
            std::process::exit(2);
        }
    };
    if let Err(e) = std::fs::create_dir_all(&opts.out) {
        eprintln!("fairness: cannot create {}: {e}", opts.out.display());
        std::process::exit(1);
    }
    let subtitle = format!(
        "{}greedy clients {:?} (batch {} requests per write); a fresh connection every {} ms for {:.1} s after {:.1} s warm-up; timeout {:.1} s; {} cores",
        if opts.smoke { "smoke test (no --bench): " } else { "" },
        opts.greedy,
        opts.batch,
        opts.interval.as_millis(),
        opts.duration.as_secs_f64(),
        opts.warmup.as_secs_f64(),
        opts.timeout.as_secs_f64(),
        thread::available_parallelism().map_or(0, |n| n.get())
    );
    eprintln!("fairness: {subtitle}");

    let mut rows = Vec::new();
    let mut broken = false;
    for target in &opts.targets {
        let mut server = match start_server(target, &opts.out) {
            Ok(server) => server,
            Err(message) => {
                eprintln!("fairness: {message}");
                broken = true;
                continue;
            }
        };
        for (i, &greedy) in opts.greedy.iter().enumerate() {
            if i > 0 {
                thread::sleep(opts.settle);
            }
            let row = run_cell(&server, greedy, &opts);
            eprintln!(
                "fairness: {:<12} greedy {:>2}: {} of {} fresh answered, p50 {} ms, max {} ms, {} failed, {} timeouts; greedy {:.0} responses/s, {} stalled",
                row.label,
                row.greedy,
                row.latencies.len(),
                row.fresh,
                ms(row.percentile(50.0)),
                ms(row.latencies.last().copied()),
                row.failed,
                row.timed_out,
                row.greedy_rps,
                row.stalled
            );
            if let Some(why) = &row.first_failure {
                eprintln!("fairness:   first failure: {why}");
            }
            for e in &row.greedy_errors {
                eprintln!("fairness:   greedy: {e}");
            }
            if row.latencies.is_empty() && row.greedy_rps == 0.0 {
                broken = true;
            }
            rows.push(row);
            if let Ok(Some(status)) = server.child.try_wait() {
                eprintln!(
                    "fairness: {} exited during the run ({status}); log {}",
                    server.label,
                    server.log.display()
                );
                broken = true;
                break;
            }
        }
        let status = stop_server(&mut server);
        if target.argv[0] == SHARDD && !status.is_some_and(|s| s.success()) {
            eprintln!(
                "fairness: {} did not exit cleanly on SIGTERM ({status:?}); log {}",
                server.label,
                server.log.display()
            );
            broken = true;
        }
        thread::sleep(opts.settle);
    }

    println!();
    print!("{}", table(&rows));
    println!("({subtitle})");
    println!("csv,{CSV_HEADER}");
    for r in &rows {
        println!("csv,{}", csv_line(r, &opts));
    }
    if !opts.smoke {
        let path = opts.out.join("fairness.csv");
        let mut text = format!("{CSV_HEADER}\n");
        for r in &rows {
            text.push_str(&csv_line(r, &opts));
            text.push('\n');
        }
        match std::fs::write(&path, text) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("fairness: cannot write {}: {e}", path.display()),
        }
    }
    if broken || rows.is_empty() {
        eprintln!(
            "fairness: FAILED (a server did not start or stop cleanly, or nothing was answered)"
        );
        std::process::exit(1);
    }
    if opts.smoke {
        eprintln!("fairness: smoke test passed");
    }
}
