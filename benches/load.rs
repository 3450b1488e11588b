//! Load benchmark: shardd's listener/dispatch modes side by side, driven by a
//! built-in load generator over real loopback sockets (no wrk needed).
//!
//! ```text
//! cargo bench --bench load -- [--duration SECS] [--warmup SECS] [--connections N]
//!     [--churn-connections N] [--depth N] [--threads N] [--shards N] [--no-pin]
//!     [--workloads pipeline,keepalive,churn] [--modes handoff-rr,handoff-lc,reuseport]
//!     [--extra "label=CMD ARGS with {port}"]... [--server-cmd "CMD ARGS with {port}"]
//!     [--out DIR] [--settle SECS] [--timeout SECS]
//! ```
//!
//! For every mode it starts the release `shardd` binary on a free port (all
//! servers run for the whole run, idle when not measured), then for every
//! workload and every server in turn: warm-up, a measured window, a pause.
//! Every response is checked (status 200, `Content-Length` present and the
//! body exactly `Hello, World!`); anything else counts as an error.
//!
//! Per cell it reports requests/s, p50/p99 latency (from the write of a
//! request batch to each of its responses, as wrk measures), errors, and the
//! server's CPU per request: utime+stime of the server process tree from
//! `/proc/PID/stat` (fields 14 and 15, in CLK_TCK ticks) over the measured
//! window, divided by the requests completed in it. The generator's own CPU
//! (getrusage) per request is reported beside it: on a 2-core box the two
//! share the cores, so CPU/request is the robust figure, requests/s is not.
//!
//! Results go to `<out>/load.csv` and `<out>/load.svg` (default
//! `target/bench-results/`), the servers' logs to `<out>/server-<label>.log`.
//!
//! Run without `--bench` (as `cargo test --benches` does) it is a smoke
//! test: a fraction of a second per cell, few connections, and a non-zero
//! exit if any cell saw an error or no responses.

use std::fmt::Write as _;
use std::fs::File;
use std::io;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

const SHARDD: &str = env!("CARGO_BIN_EXE_shardd");
/// The `Accept` header TechEmpower's toolset sends (as in ../shared/peers/bench.sh).
const TFB_ACCEPT: &str =
    "text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7";
const EXPECTED_BODY: &[u8] = b"Hello, World!";
/// Read buffer per connection; 16 plaintext responses take about 2.3 KiB.
const CONN_BUF: usize = 32 * 1024;
/// Pause before reconnecting after a failed connect.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

// ---------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Workload {
    /// TechEmpower plaintext: `depth` requests per write, keep-alive.
    Pipeline,
    /// One request at a time per connection, keep-alive.
    KeepAlive,
    /// A new connection per request, `Connection: close`.
    Churn,
}

impl Workload {
    fn name(self) -> &'static str {
        match self {
            Workload::Pipeline => "pipeline",
            Workload::KeepAlive => "keepalive",
            Workload::Churn => "churn",
        }
    }

    fn parse(name: &str) -> Result<Workload, String> {
        match name {
            "pipeline" | "pipelined" => Ok(Workload::Pipeline),
            "keepalive" | "keep-alive" => Ok(Workload::KeepAlive),
            "churn" | "close" => Ok(Workload::Churn),
            _ => Err(format!(
                "unknown workload {name:?} (pipeline, keepalive, churn)"
            )),
        }
    }
}

/// One server under test.
#[derive(Clone, Debug)]
struct Target {
    label: String,
    /// Program and arguments; `{port}` is replaced by the port.
    argv: Vec<String>,
}

#[derive(Debug)]
struct Opts {
    duration: f64,
    warmup: f64,
    settle: f64,
    conns: usize,
    churn_conns: usize,
    depth: usize,
    threads: usize,
    shards: usize,
    no_pin: bool,
    churn_client_close: bool,
    timeout: Duration,
    path: String,
    workloads: Vec<Workload>,
    targets: Vec<Target>,
    out: PathBuf,
    /// Run as a smoke test (no `--bench` on the command line).
    smoke: bool,
}

const HELP: &str = "\
cargo bench --bench load -- [options]

  --duration SECS          measured window per cell [5]
  --warmup SECS            load before each measured window [1]
  --settle SECS            idle pause between cells [0.5]
  --connections N          connections for pipeline and keepalive [256]
  --churn-connections N    concurrent connections for churn [64]
  --depth N                requests per write in the pipeline workload [16]
  --threads N              load generator threads [2]
  --shards N               shardd --shards [number of cores]
  --no-pin                 pass --no-pin to shardd
  --churn-client-close     churn: close right after each response, as wrk does, instead
                           of waiting for the server's FIN when it says Connection: close
                           (needed for servers that never close, e.g. may_minihttp)
  --timeout SECS           a response later than this is an error [8]
  --path PATH              request target [/plaintext]
  --workloads LIST         pipeline,keepalive,churn [all three]
  --modes LIST             handoff-rr,handoff-lc,reuseport [all three]; 'none' for only --extra
  --extra 'LABEL=CMD ARGS' an external server beside shardd; {port} is replaced by
                           its port; repeatable. Arguments are split on whitespace.
  --server-cmd 'CMD ARGS'  same as --extra 'external=CMD ARGS'
  --out DIR                CSV, SVG and server logs [target/bench-results]
";

fn shardd_mode(name: &str, shards: usize, no_pin: bool) -> Result<Target, String> {
    let (label, flags): (&str, &[&str]) = match name {
        "handoff-rr" | "handoff/round-robin" | "handoff" => (
            "handoff-rr",
            &["--listener", "handoff", "--dispatch", "round-robin"],
        ),
        "handoff-lc" | "handoff/least-connections" => (
            "handoff-lc",
            &["--listener", "handoff", "--dispatch", "least-connections"],
        ),
        "reuseport" => ("reuseport", &["--listener", "reuseport"]),
        _ => {
            return Err(format!(
                "unknown mode {name:?} (handoff-rr, handoff-lc, reuseport)"
            ))
        }
    };
    let mut argv: Vec<String> = [
        SHARDD,
        "--bind",
        "127.0.0.1:{port}",
        "--shards",
        &shards.to_string(),
    ]
    .iter()
    .chain(flags)
    .map(|s| s.to_string())
    .collect();
    if no_pin {
        argv.push("--no-pin".into());
    }
    Ok(Target {
        label: label.into(),
        argv,
    })
}

fn parse_args() -> Result<Opts, String> {
    let cores = thread::available_parallelism().map_or(2, |n| n.get());
    let mut args = std::env::args().skip(1);
    let mut smoke = true;
    let mut duration = None;
    let mut warmup = None;
    let mut settle = None;
    let mut conns = None;
    let mut churn_conns = None;
    let mut depth = 16;
    let mut threads = 2;
    let mut shards = cores;
    let mut no_pin = false;
    let mut churn_client_close = false;
    let mut timeout = 8.0;
    let mut path = "/plaintext".to_string();
    let mut workloads = None;
    let mut modes = None;
    let mut extras: Vec<Target> = Vec::new();
    let mut out = None;

    fn number<T: std::str::FromStr>(key: &str, value: String) -> Result<T, String> {
        value
            .parse()
            .map_err(|_| format!("{key}: not a valid number: {value:?}"))
    }
    fn external(label: &str, cmd: &str) -> Result<Target, String> {
        let argv: Vec<String> = cmd.split_whitespace().map(String::from).collect();
        if argv.is_empty() || label.is_empty() {
            return Err(format!("bad external server {label:?}={cmd:?}"));
        }
        if !argv.iter().any(|a| a.contains("{port}")) {
            return Err(format!(
                "external server {label:?}: its command must contain {{port}}"
            ));
        }
        Ok(Target {
            label: label.into(),
            argv,
        })
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
            "--duration" => duration = Some(number::<f64>(&key, value()?)?),
            "--warmup" => warmup = Some(number::<f64>(&key, value()?)?),
            "--settle" => settle = Some(number::<f64>(&key, value()?)?),
            "--connections" | "-c" => conns = Some(number::<usize>(&key, value()?)?),
            "--churn-connections" => churn_conns = Some(number::<usize>(&key, value()?)?),
            "--depth" => depth = number(&key, value()?)?,
            "--threads" | "-t" => threads = number(&key, value()?)?,
            "--shards" => shards = number(&key, value()?)?,
            "--no-pin" => no_pin = true,
            "--churn-client-close" => churn_client_close = true,
            "--timeout" => timeout = number(&key, value()?)?,
            "--path" => path = value()?,
            "--workloads" => {
                workloads = Some(
                    value()?
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(Workload::parse)
                        .collect::<Result<Vec<_>, _>>()?,
                )
            }
            "--modes" => modes = Some(value()?),
            "--extra" => {
                let spec = value()?;
                let (label, cmd) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("--extra wants LABEL=CMD, got {spec:?}"))?;
                extras.push(external(label, cmd)?);
            }
            "--server-cmd" => extras.push(external("external", &value()?)?),
            "--out" => out = Some(PathBuf::from(value()?)),
            // libtest/criterion-style flags cargo may pass along; nothing to do.
            "--nocapture" | "--quiet" | "-q" | "--show-output" => {}
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
    }
    let mut targets = Vec::new();
    let modes = modes.unwrap_or_else(|| "handoff-rr,handoff-lc,reuseport".into());
    if modes != "none" {
        for mode in modes.split(',').filter(|s| !s.is_empty()) {
            targets.push(shardd_mode(mode, shards, no_pin)?);
        }
    }
    targets.extend(extras);
    if targets.is_empty() {
        return Err("nothing to measure: no modes and no --extra".into());
    }
    let out = out.unwrap_or_else(default_out_dir);
    let (def_duration, def_warmup, def_settle, def_conns, def_churn) = if smoke {
        (0.3, 0.1, 0.0, 8, 4)
    } else {
        (5.0, 1.0, 0.5, 256, 64)
    };
    if depth == 0 || threads == 0 {
        return Err("--depth and --threads must be at least 1".into());
    }
    Ok(Opts {
        duration: duration.unwrap_or(def_duration),
        warmup: warmup.unwrap_or(def_warmup),
        settle: settle.unwrap_or(def_settle),
        conns: conns.unwrap_or(def_conns).max(1),
        churn_conns: churn_conns.unwrap_or(def_churn).max(1),
        depth,
        threads,
        shards,
        no_pin,
        churn_client_close,
        timeout: Duration::from_secs_f64(timeout),
        path,
        workloads: workloads
            .unwrap_or_else(|| vec![Workload::Pipeline, Workload::KeepAlive, Workload::Churn]),
        targets,
        out,
        smoke,
    })
}

/// `target/bench-results`, found from this executable (`target/<profile>/deps/load-…`).
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
    target: Target,
    port: u16,
    child: Child,
    log: PathBuf,
    /// Set once the server died or failed to start; its cells are skipped.
    dead: Option<String>,
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
    let log = out.join(format!("server-{}.log", target.label.replace('/', "_")));
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
        "load: started {} on port {port} (pid {}): {}",
        target.label,
        child.id(),
        argv.join(" ")
    );
    Ok(Running {
        target: target.clone(),
        port,
        child,
        log,
        dead: None,
    })
}

/// SIGTERM, wait for the drain (up to 15 s), then SIGKILL.
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
        "load: {} did not exit 15 s after SIGTERM; killing it",
        server.target.label
    );
    let _ = server.child.kill();
    server.child.wait().ok()
}

// ---------------------------------------------------------------------------
// CPU accounting
// ---------------------------------------------------------------------------

fn clk_tck() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// (pid, ppid, utime + stime) from a `/proc/PID/stat` line: fields 4, 14 and 15.
fn parse_stat(stat: &str) -> Option<(i32, i32, u64)> {
    let pid = stat.split_whitespace().next()?.parse().ok()?;
    // The command name may contain spaces and ')': the fields resume after the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // fields[0] is field 3 (state), so field N is fields[N - 3].
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((pid, ppid, utime + stime))
}

/// CPU seconds used so far by `root` and all its descendants (a thread-group
/// leader's stat already covers all its threads).
fn tree_cpu_seconds(root: u32) -> f64 {
    let root = root as i32;
    let mut procs = Vec::new();
    if let Ok(dir) = std::fs::read_dir("/proc") {
        for entry in dir.flatten() {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if !name.bytes().all(|b| b.is_ascii_digit()) {
                continue;
            }
            if let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) {
                if let Some(p) = parse_stat(&stat) {
                    procs.push(p);
                }
            }
        }
    }
    let mut tree = vec![root];
    let mut ticks = 0u64;
    let mut i = 0;
    while i < tree.len() {
        let pid = tree[i];
        for &(p, ppid, t) in &procs {
            if p == pid {
                ticks += t;
            }
            if ppid == pid && !tree.contains(&p) {
                tree.push(p);
            }
        }
        i += 1;
    }
    ticks as f64 / clk_tck()
}

/// Busy CPU seconds of the whole machine so far (`/proc/stat`: all but idle and iowait).
fn machine_busy_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else {
        return 0.0;
    };
    let ticks: Vec<u64> = line
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user).
    let busy: u64 = ticks.iter().take(8).sum::<u64>()
        - ticks.get(3).copied().unwrap_or(0)
        - ticks.get(4).copied().unwrap_or(0);
    busy as f64 / clk_tck()
}

/// CPU seconds used so far by this process (all generator threads).
fn self_cpu_seconds() -> f64 {
    // SAFETY: getrusage fills the struct we pass.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) };
    let secs = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    secs(usage.ru_utime) + secs(usage.ru_stime)
}

// ---------------------------------------------------------------------------
// Latency histogram: log-linear, 32 sub-buckets per power of two (≤ 3 % error)
// ---------------------------------------------------------------------------

const SUB_BITS: u32 = 5;
const SUB: u64 = 1 << SUB_BITS;
const BUCKETS: usize = (64 - SUB_BITS as usize) * SUB as usize + SUB as usize;

#[derive(Clone)]
struct Histogram {
    counts: Vec<u64>,
    total: u64,
    max: u64,
}

impl Histogram {
    fn new() -> Self {
        Histogram {
            counts: vec![0; BUCKETS],
            total: 0,
            max: 0,
        }
    }

    fn index(ns: u64) -> usize {
        if ns < SUB {
            return ns as usize;
        }
        let exp = 63 - ns.leading_zeros();
        let shift = exp - SUB_BITS;
        let sub = (ns >> shift) & (SUB - 1);
        (exp - SUB_BITS + 1) as usize * SUB as usize + sub as usize
    }

    /// The middle of a bucket's range, in ns.
    fn value(index: usize) -> u64 {
        if index < SUB as usize {
            return index as u64;
        }
        let exp = (index / SUB as usize) as u32 + SUB_BITS - 1;
        let sub = (index % SUB as usize) as u64;
        let shift = exp - SUB_BITS;
        ((SUB + sub) << shift) + ((1u64 << shift) >> 1)
    }

    fn record_n(&mut self, ns: u64, n: u64) {
        self.counts[Self::index(ns)] += n;
        self.total += n;
        self.max = self.max.max(ns);
    }

    fn merge(&mut self, other: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    /// The `q` quantile (0..=1) in µs; 0 when empty.
    fn quantile_us(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i).min(self.max) as f64 / 1e3;
            }
        }
        self.max as f64 / 1e3
    }
}

// ---------------------------------------------------------------------------
// Load generator: one epoll loop per thread, level-triggered, non-blocking sockets
// ---------------------------------------------------------------------------

#[derive(Clone, Copy)]
enum ErrorKind {
    /// connect(2) failed or was refused.
    Connect = 0,
    /// Reset, or closed by the server with requests outstanding.
    Io = 1,
    /// A response that is not `200` with the expected body.
    Status = 2,
    /// Not a parseable HTTP/1.1 response, or bytes nobody asked for.
    Parse = 3,
    /// No response within `--timeout`.
    Timeout = 4,
}
const ERROR_KINDS: [&str; 5] = ["connect", "io", "status", "parse", "timeout"];

/// What one generator thread saw.
struct GenResult {
    /// Good responses in the measured window.
    completed: u64,
    errors: [u64; 5],
    /// Responses and errors outside the measured window (warm-up, stop).
    other_completed: u64,
    other_errors: u64,
    /// Connections opened in the measured window.
    opens: u64,
    hist: Histogram,
}

struct GenConfig {
    addr: libc::sockaddr_in,
    workload: Workload,
    /// Bytes written per batch, and the requests they hold.
    batch: Vec<u8>,
    batch_requests: usize,
    timeout: Duration,
    /// Churn: close right after the response instead of waiting for the server's FIN.
    client_close: bool,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Connecting,
    /// A batch is partly written (socket buffer full).
    Writing,
    Reading,
}

struct Conn {
    fd: i32,
    state: State,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Responses still expected for the batch in flight.
    outstanding: usize,
    /// When the batch was written (churn: when the connect began).
    sent_at: Instant,
    written: usize,
    /// Churn: the one response arrived; now waiting for the server's FIN.
    answered: bool,
    retry_at: Option<Instant>,
    /// Bumped on every close, so callers can tell the connection was replaced.
    generation: u64,
    /// The last response said `Connection: close`.
    server_closes: bool,
}

enum Parsed {
    Incomplete,
    Bad,
    Response {
        len: usize,
        status: u16,
        body: (usize, usize),
        /// `Connection: close`: the server will close after this response.
        close: bool,
    },
}

/// Parse one response at the start of `b`: status line, header fields
/// (`Content-Length` required), and a body of exactly that length.
fn parse_response(b: &[u8]) -> Parsed {
    let mut at = 0;
    let mut status = 0u16;
    let mut length: Option<usize> = None;
    let mut close = false;
    loop {
        let Some(nl) = b[at..].iter().position(|&c| c == b'\n') else {
            return if b.len() > 16 * 1024 {
                Parsed::Bad
            } else {
                Parsed::Incomplete
            };
        };
        let Some(line) = b[at..at + nl].strip_suffix(b"\r") else {
            return Parsed::Bad;
        };
        let first = at == 0;
        at += nl + 1;
        if first {
            // "HTTP/1.x NNN" then a space and a reason phrase (which may be empty).
            let well_formed = line.len() >= 12
                && line.starts_with(b"HTTP/1.")
                && line[8] == b' '
                && line[9..12].iter().all(u8::is_ascii_digit)
                && (line.len() == 12 || line[12] == b' ');
            if !well_formed {
                return Parsed::Bad;
            }
            let code = &line[9..12];
            status = code.iter().fold(0u16, |n, &d| n * 10 + u16::from(d - b'0'));
            continue;
        }
        if line.is_empty() {
            break;
        }
        let Some(colon) = line.iter().position(|&c| c == b':') else {
            return Parsed::Bad;
        };
        if line[..colon].eq_ignore_ascii_case(b"content-length") {
            let value = line[colon + 1..].trim_ascii();
            if value.is_empty() || !value.iter().all(u8::is_ascii_digit) || value.len() > 12 {
                return Parsed::Bad;
            }
            let n = value
                .iter()
                .fold(0usize, |n, &d| n * 10 + usize::from(d - b'0'));
            if length.is_some_and(|seen| seen != n) {
                return Parsed::Bad;
            }
            length = Some(n);
        } else if line[..colon].eq_ignore_ascii_case(b"connection") {
            close |= line[colon + 1..]
                .split(|&c| c == b',')
                .any(|token| token.trim_ascii().eq_ignore_ascii_case(b"close"));
        }
    }
    let Some(length) = length else {
        return Parsed::Bad;
    };
    if b.len() < at + length {
        return Parsed::Incomplete;
    }
    Parsed::Response {
        len: at + length,
        status,
        body: (at, at + length),
        close,
    }
}

struct Generator<'a> {
    epfd: i32,
    cfg: &'a GenConfig,
    conns: Vec<Conn>,
    result: GenResult,
    phase: u8,
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

impl Generator<'_> {
    fn ctl(&self, op: i32, i: usize, events: u32) -> bool {
        let mut event = libc::epoll_event {
            events,
            u64: i as u64,
        };
        // SAFETY: valid epoll fd and socket fd; the event is a plain struct.
        unsafe { libc::epoll_ctl(self.epfd, op, self.conns[i].fd, &mut event) == 0 }
    }

    fn count_error(&mut self, kind: ErrorKind) {
        if self.phase == MEASURE {
            self.result.errors[kind as usize] += 1;
        } else {
            self.result.other_errors += 1;
        }
    }

    fn close(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if conn.fd >= 0 {
            // SAFETY: our own fd; close also removes it from the epoll set.
            unsafe { libc::close(conn.fd) };
        }
        conn.fd = -1;
        conn.generation += 1;
        conn.state = State::Closed;
        conn.start = 0;
        conn.end = 0;
        conn.outstanding = 0;
        conn.answered = false;
    }

    fn fail(&mut self, i: usize, kind: ErrorKind) {
        self.count_error(kind);
        self.close(i);
        if matches!(kind, ErrorKind::Connect) {
            self.conns[i].retry_at = Some(Instant::now() + CONNECT_BACKOFF);
        } else {
            self.open(i);
        }
    }

    fn open(&mut self, i: usize) {
        if self.phase == STOP {
            return;
        }
        self.conns[i].retry_at = None;
        // SAFETY: plain socket calls on a fresh fd.
        let fd = unsafe {
            libc::socket(
                libc::AF_INET,
                libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                0,
            )
        };
        if fd < 0 {
            self.count_error(ErrorKind::Connect);
            self.conns[i].retry_at = Some(Instant::now() + CONNECT_BACKOFF);
            return;
        }
        let one: libc::c_int = 1;
        // SAFETY: fd is ours; option value is a c_int.
        let rc = unsafe {
            libc::setsockopt(
                fd,
                libc::IPPROTO_TCP,
                libc::TCP_NODELAY,
                (&one as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as libc::socklen_t,
            );
            libc::connect(
                fd,
                (&self.cfg.addr as *const libc::sockaddr_in).cast(),
                std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        let now = Instant::now();
        if self.phase == MEASURE {
            self.result.opens += 1;
        }
        let conn = &mut self.conns[i];
        conn.fd = fd;
        conn.sent_at = now;
        if rc == 0 {
            conn.state = State::Reading;
            if !self.ctl(libc::EPOLL_CTL_ADD, i, libc::EPOLLIN as u32) {
                return self.fail(i, ErrorKind::Connect);
            }
            self.send_batch(i);
        } else if errno() == libc::EINPROGRESS {
            conn.state = State::Connecting;
            if !self.ctl(libc::EPOLL_CTL_ADD, i, libc::EPOLLOUT as u32) {
                self.fail(i, ErrorKind::Connect);
            }
        } else {
            self.fail(i, ErrorKind::Connect);
        }
    }

    fn connected(&mut self, i: usize) {
        let mut error: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: fd is ours; error/len are valid out-pointers.
        let rc = unsafe {
            libc::getsockopt(
                self.conns[i].fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut error as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 || error != 0 {
            return self.fail(i, ErrorKind::Connect);
        }
        self.conns[i].state = State::Reading;
        if !self.ctl(libc::EPOLL_CTL_MOD, i, libc::EPOLLIN as u32) {
            return self.fail(i, ErrorKind::Connect);
        }
        self.send_batch(i);
    }

    fn send_batch(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if self.cfg.workload != Workload::Churn {
            conn.sent_at = Instant::now();
        }
        conn.outstanding = self.cfg.batch_requests;
        conn.written = 0;
        self.write_more(i);
    }

    fn write_more(&mut self, i: usize) {
        let batch = &self.cfg.batch;
        loop {
            let conn = &mut self.conns[i];
            if conn.written == batch.len() {
                if conn.state == State::Writing {
                    conn.state = State::Reading;
                    if !self.ctl(libc::EPOLL_CTL_MOD, i, libc::EPOLLIN as u32) {
                        self.fail(i, ErrorKind::Io);
                    }
                }
                return;
            }
            let rest = &batch[conn.written..];
            // SAFETY: writing from a live slice to our fd.
            let n = unsafe {
                libc::send(
                    conn.fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n > 0 {
                conn.written += n as usize;
                continue;
            }
            let e = errno();
            if n < 0 && (e == libc::EAGAIN || e == libc::EINTR) {
                if e == libc::EAGAIN && conn.state != State::Writing {
                    conn.state = State::Writing;
                    let events = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
                    if !self.ctl(libc::EPOLL_CTL_MOD, i, events) {
                        return self.fail(i, ErrorKind::Io);
                    }
                }
                if e == libc::EAGAIN {
                    return;
                }
                continue;
            }
            return self.fail(i, ErrorKind::Io);
        }
    }

    fn readable(&mut self, i: usize) {
        loop {
            let conn = &mut self.conns[i];
            if conn.end == conn.buf.len() {
                if conn.start == 0 {
                    return self.fail(i, ErrorKind::Parse);
                }
                conn.buf.copy_within(conn.start..conn.end, 0);
                conn.end -= conn.start;
                conn.start = 0;
            }
            let space = conn.buf.len() - conn.end;
            // SAFETY: reading into the unused tail of our own buffer.
            let n = unsafe { libc::read(conn.fd, conn.buf[conn.end..].as_mut_ptr().cast(), space) };
            if n > 0 {
                conn.end += n as usize;
                let generation = conn.generation;
                self.consume(i);
                if self.conns[i].generation != generation {
                    return; // failed and replaced
                }
                let conn = &self.conns[i];
                // Level-triggered: one read per event unless it filled the buffer,
                // except that churn looks for the FIN right behind the response.
                if (n as usize) < space && !(conn.answered && conn.state == State::Reading) {
                    return;
                }
                continue;
            }
            if n == 0 {
                return self.eof(i);
            }
            match errno() {
                libc::EAGAIN => return,
                libc::EINTR => continue,
                _ => return self.fail(i, ErrorKind::Io),
            }
        }
    }

    fn eof(&mut self, i: usize) {
        let conn = &self.conns[i];
        let clean = conn.outstanding == 0 && conn.start == conn.end;
        if self.cfg.workload == Workload::Churn {
            if clean && conn.answered {
                self.close(i);
                return self.open(i);
            }
            return self.fail(i, ErrorKind::Io);
        }
        if clean {
            // The server closed an idle keep-alive connection: not an error.
            self.close(i);
            return self.open(i);
        }
        self.fail(i, ErrorKind::Io)
    }

    /// Take every complete response from the buffer, then send the next
    /// batch. The connection may be failed (and replaced) on the way.
    fn consume(&mut self, i: usize) {
        let now = Instant::now();
        let mut good = 0u64;
        loop {
            let conn = &mut self.conns[i];
            if conn.start == conn.end {
                conn.start = 0;
                conn.end = 0;
                break;
            }
            match parse_response(&conn.buf[conn.start..conn.end]) {
                Parsed::Incomplete => break,
                Parsed::Bad => {
                    self.record(i, good, now);
                    return self.fail(i, ErrorKind::Parse);
                }
                Parsed::Response {
                    len,
                    status,
                    body,
                    close,
                } => {
                    if conn.outstanding == 0 || conn.answered {
                        self.record(i, good, now);
                        return self.fail(i, ErrorKind::Parse);
                    }
                    let body = &conn.buf[conn.start + body.0..conn.start + body.1];
                    let ok = status == 200 && body == EXPECTED_BODY;
                    conn.start += len;
                    conn.outstanding -= 1;
                    conn.server_closes = close;
                    if !ok {
                        self.record(i, good, now);
                        good = 0;
                        self.count_error(ErrorKind::Status);
                        continue;
                    }
                    good += 1;
                }
            }
        }
        self.record(i, good, now);
        let conn = &mut self.conns[i];
        if conn.outstanding == 0 && conn.state == State::Reading {
            if self.cfg.workload == Workload::Churn {
                if conn.server_closes && !self.cfg.client_close {
                    // The server said it closes: wait for its FIN (as an HTTP
                    // client should), so the TIME_WAIT lands on its side.
                    conn.answered = true;
                } else {
                    // Close ourselves, as wrk does.
                    self.close(i);
                    self.open(i);
                }
            } else if self.phase != STOP {
                self.send_batch(i);
            }
        }
    }

    fn record(&mut self, i: usize, good: u64, now: Instant) {
        if good == 0 {
            return;
        }
        if self.phase == MEASURE {
            let ns = now
                .saturating_duration_since(self.conns[i].sent_at)
                .as_nanos() as u64;
            self.result.hist.record_n(ns, good);
            self.result.completed += good;
        } else {
            self.result.other_completed += good;
        }
    }

    /// Timeouts and delayed reconnects.
    fn sweep(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let conn = &self.conns[i];
            let waited = now.saturating_duration_since(conn.sent_at);
            if conn.state == State::Closed {
                if conn.retry_at.is_some_and(|at| at <= now) {
                    self.open(i);
                }
            } else if waited > self.cfg.timeout
                && (conn.outstanding > 0 || conn.state == State::Connecting || conn.answered)
            {
                // No response in time (or, churn: answered but never closed).
                self.fail(i, ErrorKind::Timeout);
            }
        }
    }
}

fn generate(cfg: &GenConfig, connections: usize, phase: &AtomicU8) -> GenResult {
    // SAFETY: creating an epoll instance.
    let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    assert!(epfd >= 0, "epoll_create1: {}", io::Error::last_os_error());
    let now = Instant::now();
    let mut g = Generator {
        epfd,
        cfg,
        conns: (0..connections)
            .map(|_| Conn {
                fd: -1,
                state: State::Closed,
                buf: vec![0; CONN_BUF].into_boxed_slice(),
                start: 0,
                end: 0,
                outstanding: 0,
                sent_at: now,
                written: 0,
                answered: false,
                retry_at: None,
                generation: 0,
                server_closes: false,
            })
            .collect(),
        result: GenResult {
            completed: 0,
            errors: [0; 5],
            other_completed: 0,
            other_errors: 0,
            opens: 0,
            hist: Histogram::new(),
        },
        phase: phase.load(Relaxed),
    };
    for i in 0..connections {
        g.open(i);
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut last_sweep = Instant::now();
    loop {
        g.phase = phase.load(Relaxed);
        if g.phase == STOP {
            break;
        }
        // SAFETY: events is a valid buffer of the given length.
        let n = unsafe { libc::epoll_wait(g.epfd, events.as_mut_ptr(), events.len() as i32, 20) };
        if n < 0 && errno() != libc::EINTR {
            panic!("epoll_wait: {}", io::Error::last_os_error());
        }
        for event in &events[..n.max(0) as usize] {
            let i = event.u64 as usize;
            let flags = event.events;
            match g.conns[i].state {
                State::Closed => {}
                State::Connecting => g.connected(i),
                State::Writing => {
                    if flags & (libc::EPOLLOUT as u32) != 0 {
                        g.write_more(i);
                    }
                    if g.conns[i].state != State::Closed
                        && flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
                    {
                        g.readable(i);
                    }
                }
                State::Reading => g.readable(i),
            }
        }
        let now = Instant::now();
        if now.duration_since(last_sweep) >= Duration::from_millis(50) {
            last_sweep = now;
            g.sweep(now);
        }
    }
    for i in 0..g.conns.len() {
        g.close(i);
    }
    // SAFETY: our epoll fd.
    unsafe { libc::close(g.epfd) };
    g.result
}

fn build_batch(workload: Workload, port: u16, path: &str, depth: usize) -> (Vec<u8>, usize) {
    let connection = if workload == Workload::Churn {
        "close"
    } else {
        "keep-alive"
    };
    let one = format!(
        "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nAccept: {TFB_ACCEPT}\r\nConnection: {connection}\r\n\r\n"
    );
    let n = if workload == Workload::Pipeline {
        depth
    } else {
        1
    };
    (one.repeat(n).into_bytes(), n)
}

// ---------------------------------------------------------------------------
// One measured cell
// ---------------------------------------------------------------------------

#[derive(Clone, Debug)]
struct Row {
    mode: String,
    workload: Workload,
    connections: usize,
    depth: usize,
    window_s: f64,
    requests: u64,
    rps: f64,
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    max_us: f64,
    errors: [u64; 5],
    other_errors: u64,
    opens: u64,
    server_cpu_s: f64,
    /// Busy CPU of the machine not charged to the server or the generator:
    /// other workloads, plus kernel time charged to no process.
    other_cpu_s: f64,
    gen_cpu_s: f64,
}

impl Row {
    fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }
    fn server_us_per_req(&self) -> f64 {
        per_request_us(self.server_cpu_s, self.requests)
    }
    fn gen_us_per_req(&self) -> f64 {
        per_request_us(self.gen_cpu_s, self.requests)
    }
}

fn per_request_us(cpu_s: f64, requests: u64) -> f64 {
    if requests == 0 {
        f64::NAN
    } else {
        cpu_s * 1e6 / requests as f64
    }
}

fn run_cell(server: &Running, workload: Workload, opts: &Opts) -> Row {
    let connections = if workload == Workload::Churn {
        opts.churn_conns
    } else {
        opts.conns
    };
    let depth = if workload == Workload::Pipeline {
        opts.depth
    } else {
        1
    };
    let (batch, batch_requests) = build_batch(workload, server.port, &opts.path, opts.depth);
    let cfg = Arc::new(GenConfig {
        addr: libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: server.port.to_be(),
            sin_addr: libc::in_addr {
                s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
            },
            sin_zero: [0; 8],
        },
        workload,
        batch,
        batch_requests,
        timeout: opts.timeout,
        client_close: opts.churn_client_close,
    });
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let threads = opts.threads.min(connections);
    let handles: Vec<_> = (0..threads)
        .map(|t| {
            let n = connections / threads + usize::from(t < connections % threads);
            let (cfg, phase) = (cfg.clone(), phase.clone());
            thread::Builder::new()
                .name(format!("loadgen-{t}"))
                .spawn(move || generate(&cfg, n, &phase))
                .expect("spawn a load generator thread")
        })
        .collect();
    let pid = server.child.id();
    thread::sleep(Duration::from_secs_f64(opts.warmup));
    let (srv0, gen0, box0) = (
        tree_cpu_seconds(pid),
        self_cpu_seconds(),
        machine_busy_seconds(),
    );
    let t0 = Instant::now();
    phase.store(MEASURE, Relaxed);
    thread::sleep(Duration::from_secs_f64(opts.duration));
    phase.store(STOP, Relaxed);
    let window = t0.elapsed().as_secs_f64();
    let (srv1, gen1, box1) = (
        tree_cpu_seconds(pid),
        self_cpu_seconds(),
        machine_busy_seconds(),
    );
    let mut hist = Histogram::new();
    let mut row = Row {
        mode: server.target.label.clone(),
        workload,
        connections,
        depth,
        window_s: window,
        requests: 0,
        rps: 0.0,
        p50_us: 0.0,
        p90_us: 0.0,
        p99_us: 0.0,
        max_us: 0.0,
        errors: [0; 5],
        other_errors: 0,
        opens: 0,
        server_cpu_s: srv1 - srv0,
        other_cpu_s: ((box1 - box0) - (srv1 - srv0) - (gen1 - gen0)).max(0.0),
        gen_cpu_s: gen1 - gen0,
    };
    for handle in handles {
        let r = handle.join().expect("load generator thread panicked");
        row.requests += r.completed;
        for (a, b) in row.errors.iter_mut().zip(r.errors) {
            *a += b;
        }
        row.other_errors += r.other_errors;
        row.opens += r.opens;
        hist.merge(&r.hist);
        let _ = r.other_completed;
    }
    row.rps = row.requests as f64 / window;
    row.p50_us = hist.quantile_us(0.50);
    row.p90_us = hist.quantile_us(0.90);
    row.p99_us = hist.quantile_us(0.99);
    row.max_us = hist.max as f64 / 1e3;
    row
}

// ---------------------------------------------------------------------------
// Output: table, CSV, SVG
// ---------------------------------------------------------------------------

fn fmt_latency(us: f64) -> String {
    if us >= 10_000.0 {
        format!("{:.1}ms", us / 1e3)
    } else if us >= 1_000.0 {
        format!("{:.2}ms", us / 1e3)
    } else {
        format!("{us:.0}µs")
    }
}

fn fmt_thousands(n: f64) -> String {
    let s = format!("{:.0}", n);
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn table(rows: &[Row]) -> String {
    let mut t = String::new();
    let _ = writeln!(
        t,
        "{:<12} {:<10} {:>6} {:>11} {:>9} {:>9} {:>7} {:>11} {:>9} {:>11} {:>11}",
        "mode",
        "workload",
        "conns",
        "req/s",
        "p50",
        "p99",
        "errors",
        "srv µs/req",
        "srv cores",
        "gen µs/req",
        "other cores"
    );
    for r in rows {
        let _ = writeln!(
            t,
            "{:<12} {:<10} {:>6} {:>11} {:>9} {:>9} {:>7} {:>11.2} {:>9.2} {:>11.2} {:>11.2}",
            r.mode,
            r.workload.name(),
            r.connections,
            fmt_thousands(r.rps),
            fmt_latency(r.p50_us),
            fmt_latency(r.p99_us),
            r.total_errors(),
            r.server_us_per_req(),
            r.server_cpu_s / r.window_s,
            r.gen_us_per_req(),
            r.other_cpu_s / r.window_s,
        );
    }
    t
}

fn write_csv(path: &Path, rows: &[Row]) -> io::Result<()> {
    let mut s = String::from(
        "mode,workload,connections,depth,window_s,requests,rps,p50_us,p90_us,p99_us,max_us,errors",
    );
    for kind in ERROR_KINDS {
        let _ = write!(s, ",err_{kind}");
    }
    s.push_str(
        ",errors_outside_window,opens,server_cpu_s,server_cores,server_us_per_req,gen_cpu_s,gen_us_per_req,other_cpu_s\n",
    );
    for r in rows {
        let _ = write!(
            s,
            "{},{},{},{},{:.3},{},{:.0},{:.1},{:.1},{:.1},{:.1},{}",
            r.mode,
            r.workload.name(),
            r.connections,
            r.depth,
            r.window_s,
            r.requests,
            r.rps,
            r.p50_us,
            r.p90_us,
            r.p99_us,
            r.max_us,
            r.total_errors()
        );
        for e in r.errors {
            let _ = write!(s, ",{e}");
        }
        let _ = writeln!(
            s,
            ",{},{},{:.3},{:.3},{:.4},{:.3},{:.4},{:.3}",
            r.other_errors,
            r.opens,
            r.server_cpu_s,
            r.server_cpu_s / r.window_s,
            r.server_us_per_req(),
            r.gen_cpu_s,
            r.gen_us_per_req(),
            r.other_cpu_s
        );
    }
    std::fs::write(path, s)
}

/// One panel per workload: server CPU µs/request by mode (top row) and requests/s (bottom row).
fn write_svg(
    path: &Path,
    rows: &[Row],
    workloads: &[Workload],
    modes: &[String],
    subtitle: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    let panel_w = (110 * modes.len() as u32 + 120).max(320);
    let size = ((panel_w * workloads.len() as u32).max(760), 700);
    let root = SVGBackend::new(path, size).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(50);
    title.draw(&Text::new(
        "shardd load benchmark: server CPU per request and throughput by mode",
        (10, 8),
        ("sans-serif", 18).into_font(),
    ))?;
    title.draw(&Text::new(
        subtitle.to_string(),
        (10, 30),
        ("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90)),
    ))?;
    let panels = body.split_evenly((2, workloads.len()));
    type Metric = (&'static str, fn(&Row) -> f64);
    let metrics: [Metric; 2] = [
        ("server CPU µs / request", |r| r.server_us_per_req()),
        ("requests / s (thousands)", |r| r.rps / 1e3),
    ];
    for (m, (metric, value_of)) in metrics.iter().enumerate() {
        for (w, workload) in workloads.iter().enumerate() {
            let area = &panels[m * workloads.len() + w];
            let values: Vec<(usize, f64)> = modes
                .iter()
                .enumerate()
                .filter_map(|(i, mode)| {
                    rows.iter()
                        .find(|r| &r.mode == mode && r.workload == *workload)
                        .map(|r| (i, value_of(r)))
                        .filter(|(_, v)| v.is_finite())
                })
                .collect();
            let top = values.iter().map(|&(_, v)| v).fold(0.0, f64::max);
            let top = if top > 0.0 { top * 1.2 } else { 1.0 };
            let labels = modes.to_vec();
            let mut chart = ChartBuilder::on(area)
                .caption(format!("{}: {metric}", workload.name()), ("sans-serif", 14))
                .margin(10)
                .x_label_area_size(30)
                .y_label_area_size(50)
                .build_cartesian_2d(
                    (0..modes.len().saturating_sub(1).max(1)).into_segmented(),
                    0.0..top,
                )?;
            chart
                .configure_mesh()
                .disable_x_mesh()
                .light_line_style(TRANSPARENT)
                .x_labels(modes.len() + 1)
                .x_label_formatter(&|v| match v {
                    SegmentValue::CenterOf(i) => labels.get(*i).cloned().unwrap_or_default(),
                    _ => String::new(),
                })
                .y_label_formatter(&|v| format!("{v:.1}"))
                .draw()?;
            chart.draw_series(values.iter().map(|&(i, v)| {
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), v),
                    ],
                    Palette99::pick(i).filled(),
                );
                bar.set_margin(0, 0, 12, 12);
                bar
            }))?;
            chart.draw_series(values.iter().map(|&(i, v)| {
                Text::new(
                    if v >= 100.0 {
                        format!("{v:.0}")
                    } else {
                        format!("{v:.2}")
                    },
                    (SegmentValue::CenterOf(i), v + top * 0.02),
                    ("sans-serif", 12)
                        .into_font()
                        .into_text_style(area)
                        .pos(Pos::new(HPos::Center, VPos::Bottom)),
                )
            }))?;
        }
    }
    root.present()?;
    Ok(())
}

// ---------------------------------------------------------------------------

fn raise_nofile_limit() {
    // SAFETY: get/setrlimit on a struct we own.
    unsafe {
        let mut limit: libc::rlimit = std::mem::zeroed();
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

fn main() {
    let opts = match parse_args() {
        Ok(opts) => opts,
        Err(message) => {
            eprintln!("load: {message}");
            std::process::exit(2);
        }
    };
    raise_nofile_limit();
    if let Err(e) = std::fs::create_dir_all(&opts.out) {
        eprintln!("load: cannot create {}: {e}", opts.out.display());
        std::process::exit(1);
    }
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let subtitle = format!(
        "{} s per cell after {} s warm-up; {} conns ({} for churn), pipeline depth {}; {} generator threads; {} shards{}; {} cores",
        opts.duration,
        opts.warmup,
        opts.conns,
        opts.churn_conns,
        opts.depth,
        opts.threads,
        opts.shards,
        if opts.no_pin { ", not pinned" } else { "" },
        cores
    );
    eprintln!(
        "load: {}{}",
        if opts.smoke {
            "smoke test (no --bench): "
        } else {
            ""
        },
        subtitle
    );

    let mut servers = Vec::new();
    for target in &opts.targets {
        match start_server(target, &opts.out) {
            Ok(server) => servers.push(server),
            Err(message) => {
                eprintln!("load: {message}");
                for server in &mut servers {
                    stop_server(server);
                }
                std::process::exit(1);
            }
        }
    }

    let mut rows = Vec::new();
    for &workload in &opts.workloads {
        for server in &mut servers {
            if server.dead.is_some() {
                continue;
            }
            let row = run_cell(server, workload, &opts);
            eprintln!(
                "load: {:<12} {:<10} {:>10.0} req/s  p99 {:>8}  errors {:>5}  server {:.2} µs/req  generator {:.2} µs/req",
                row.mode,
                workload.name(),
                row.rps,
                fmt_latency(row.p99_us),
                row.total_errors(),
                row.server_us_per_req(),
                row.gen_us_per_req()
            );
            if let Ok(Some(status)) = server.child.try_wait() {
                server.dead = Some(format!("exited during the run ({status})"));
                eprintln!(
                    "load: {} {}; log {}",
                    server.target.label,
                    server.dead.as_deref().unwrap_or_default(),
                    server.log.display()
                );
            }
            rows.push(row);
            thread::sleep(Duration::from_secs_f64(opts.settle));
        }
    }

    let mut failed = false;
    for server in &mut servers {
        let status = stop_server(server);
        if server.target.argv[0] == SHARDD && !status.is_some_and(|s| s.success()) {
            eprintln!(
                "load: {} did not exit cleanly on SIGTERM ({status:?}); log {}",
                server.target.label,
                server.log.display()
            );
            failed = true;
        }
    }

    println!();
    print!("{}", table(&rows));
    println!("({subtitle})");
    let errors: u64 = rows.iter().map(Row::total_errors).sum();
    if errors > 0 {
        let mut by_kind = [0u64; 5];
        for r in &rows {
            for (a, b) in by_kind.iter_mut().zip(r.errors) {
                *a += b;
            }
        }
        let kinds: Vec<String> = ERROR_KINDS
            .iter()
            .zip(by_kind)
            .filter(|(_, n)| *n > 0)
            .map(|(k, n)| format!("{k}={n}"))
            .collect();
        println!("errors by kind: {}", kinds.join(" "));
    }

    if opts.smoke {
        if errors > 0 || rows.iter().any(|r| r.requests == 0) {
            eprintln!("load: smoke test FAILED (errors or a cell without responses)");
            std::process::exit(1);
        }
        eprintln!("load: smoke test passed");
        if failed {
            std::process::exit(1);
        }
        return;
    }
    let csv = opts.out.join("load.csv");
    let svg = opts.out.join("load.svg");
    match write_csv(&csv, &rows) {
        Ok(()) => println!("wrote {}", csv.display()),
        Err(e) => eprintln!("load: cannot write {}: {e}", csv.display()),
    }
    let modes: Vec<String> = servers.iter().map(|s| s.target.label.clone()).collect();
    match write_svg(&svg, &rows, &opts.workloads, &modes, &subtitle) {
        Ok(()) => println!("wrote {}", svg.display()),
        Err(e) => eprintln!("load: cannot write {}: {e}", svg.display()),
    }
    if failed {
        std::process::exit(1);
    }
}
