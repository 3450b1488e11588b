//! Command-line options: parsing, their defaults (smaller for the smoke
//! test), and the servers to measure (shardd modes and `--extra` commands).

use std::path::PathBuf;
use std::thread;
use std::time::Duration;

use crate::servers::{Target, SHARDD};
use crate::support;
use crate::workload::Workload;

/// Everything a run needs, defaults applied.
#[derive(Debug)]
pub struct Opts {
    pub duration: f64,
    pub warmup: f64,
    pub settle: f64,
    pub conns: usize,
    pub churn_conns: usize,
    pub depth: usize,
    pub threads: usize,
    pub shards: usize,
    pub no_pin: bool,
    pub churn_client_close: bool,
    pub timeout: Duration,
    pub path: String,
    /// What every response's body must be.
    pub body: String,
    pub workloads: Vec<Workload>,
    pub targets: Vec<Target>,
    pub out: PathBuf,
    /// Run as a smoke test (no `--bench` on the command line).
    pub smoke: bool,
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
  --path PATH              request target [/plaintext]; /json for TechEmpower's json test
  --body TEXT              the body every response must have [{\"message\":\"Hello, World!\"}
                           for a path ending in /json, else Hello, World!]
  --workloads LIST         pipeline,keepalive,churn [all three]
  --modes LIST             handoff-rr,handoff-lc,reuseport [all three]; 'none' for only --extra
  --extra 'LABEL=CMD ARGS' an external server beside shardd; {port} is replaced by
                           its port; repeatable. Arguments are split on whitespace.
  --server-cmd 'CMD ARGS'  same as --extra 'external=CMD ARGS'
  --out DIR                CSV, SVG and server logs [target/bench-results]
";

/// The defaults that differ between a real run and the smoke test.
struct Defaults {
    duration: f64,
    warmup: f64,
    settle: f64,
    conns: usize,
    churn_conns: usize,
}

const BENCH_DEFAULTS: Defaults = Defaults {
    duration: 5.0,
    warmup: 1.0,
    settle: 0.5,
    conns: 256,
    churn_conns: 64,
};

const SMOKE_DEFAULTS: Defaults = Defaults {
    duration: 0.3,
    warmup: 0.1,
    settle: 0.0,
    conns: 8,
    churn_conns: 4,
};

/// The options of this process's command line; `--help` prints them and exits.
pub fn parse_args() -> Result<Opts, String> {
    let mut given = Given::default();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        given.take(arg, &mut args)?;
    }
    given.into_opts()
}

/// The options as given on the command line; `None` where not given.
#[derive(Default)]
struct Given {
    bench: bool,
    duration: Option<f64>,
    warmup: Option<f64>,
    settle: Option<f64>,
    conns: Option<usize>,
    churn_conns: Option<usize>,
    depth: Option<usize>,
    threads: Option<usize>,
    shards: Option<usize>,
    no_pin: bool,
    churn_client_close: bool,
    timeout: Option<f64>,
    path: Option<String>,
    body: Option<String>,
    workloads: Option<Vec<Workload>>,
    modes: Option<String>,
    extras: Vec<Target>,
    out: Option<PathBuf>,
}

impl Given {
    /// Take one argument; its value is the rest of `--key=value` or the next argument.
    fn take(&mut self, arg: String, rest: &mut impl Iterator<Item = String>) -> Result<(), String> {
        let (key, mut inline) = match arg.split_once('=') {
            Some((k, v)) if k.starts_with("--") => (k.to_string(), Some(v.to_string())),
            _ => (arg.clone(), None),
        };
        let mut value = || {
            inline
                .take()
                .or_else(|| rest.next())
                .ok_or_else(|| format!("{key} needs a value"))
        };
        match key.as_str() {
            "--bench" => self.bench = true,
            "-h" | "--help" => {
                print!("{HELP}");
                std::process::exit(0);
            }
            "--duration" => self.duration = Some(number(&key, value()?)?),
            "--warmup" => self.warmup = Some(number(&key, value()?)?),
            "--settle" => self.settle = Some(number(&key, value()?)?),
            "--connections" | "-c" => self.conns = Some(number(&key, value()?)?),
            "--churn-connections" => self.churn_conns = Some(number(&key, value()?)?),
            "--depth" => self.depth = Some(number(&key, value()?)?),
            "--threads" | "-t" => self.threads = Some(number(&key, value()?)?),
            "--shards" => self.shards = Some(number(&key, value()?)?),
            "--no-pin" => self.no_pin = true,
            "--churn-client-close" => self.churn_client_close = true,
            "--timeout" => self.timeout = Some(number(&key, value()?)?),
            "--path" => self.path = Some(value()?),
            "--body" => self.body = Some(value()?),
            "--workloads" => self.workloads = Some(workloads(&value()?)?),
            "--modes" => self.modes = Some(value()?),
            "--extra" => {
                let spec = value()?;
                let (label, cmd) = spec
                    .split_once('=')
                    .ok_or_else(|| format!("--extra wants LABEL=CMD, got {spec:?}"))?;
                self.extras.push(external(label, cmd)?);
            }
            "--server-cmd" => self.extras.push(external("external", &value()?)?),
            "--out" => self.out = Some(PathBuf::from(value()?)),
            // libtest/criterion-style flags cargo may pass along; nothing to do.
            "--nocapture" | "--quiet" | "-q" | "--show-output" => {}
            other => return Err(format!("unknown argument {other:?}; try --help")),
        }
        Ok(())
    }

    /// Apply the defaults and check what needs checking.
    fn into_opts(self) -> Result<Opts, String> {
        let smoke = !self.bench;
        let shards = self
            .shards
            .unwrap_or_else(|| thread::available_parallelism().map_or(2, |n| n.get()));
        let targets = targets(self.modes, shards, self.no_pin, self.extras)?;
        let out = self
            .out
            .unwrap_or_else(|| support::target_dir().join("bench-results"));
        let defaults = if smoke {
            SMOKE_DEFAULTS
        } else {
            BENCH_DEFAULTS
        };
        let depth = self.depth.unwrap_or(16);
        let threads = self.threads.unwrap_or(2);
        if depth == 0 || threads == 0 {
            return Err("--depth and --threads must be at least 1".into());
        }
        let path = self.path.unwrap_or_else(|| "/plaintext".into());
        Ok(Opts {
            duration: self.duration.unwrap_or(defaults.duration),
            warmup: self.warmup.unwrap_or(defaults.warmup),
            settle: self.settle.unwrap_or(defaults.settle),
            conns: self.conns.unwrap_or(defaults.conns).max(1),
            churn_conns: self.churn_conns.unwrap_or(defaults.churn_conns).max(1),
            depth,
            threads,
            shards,
            no_pin: self.no_pin,
            churn_client_close: self.churn_client_close,
            timeout: Duration::from_secs_f64(self.timeout.unwrap_or(8.0)),
            body: self.body.unwrap_or_else(|| default_body(&path).into()),
            path,
            workloads: self
                .workloads
                .unwrap_or_else(|| vec![Workload::Pipeline, Workload::KeepAlive, Workload::Churn]),
            targets,
            out,
            smoke,
        })
    }
}

/// What TechEmpower's test at `path` answers: json for `/json`, else plaintext.
fn default_body(path: &str) -> &'static str {
    if path.split('?').next().is_some_and(|p| p.ends_with("/json")) {
        r#"{"message":"Hello, World!"}"#
    } else {
        "Hello, World!"
    }
}

fn number<T: std::str::FromStr>(key: &str, value: String) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{key}: not a valid number: {value:?}"))
}

/// `--workloads`: a comma-separated list.
fn workloads(list: &str) -> Result<Vec<Workload>, String> {
    list.split(',')
        .filter(|s| !s.is_empty())
        .map(Workload::parse)
        .collect()
}

/// The shardd modes (all three unless `--modes`; none for `--modes none`),
/// then the external servers.
fn targets(
    modes: Option<String>,
    shards: usize,
    no_pin: bool,
    extras: Vec<Target>,
) -> Result<Vec<Target>, String> {
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
    Ok(targets)
}

/// An `--extra`/`--server-cmd` server: its command split on whitespace.
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

/// The shardd command line for a mode name (`handoff-rr`, `handoff-lc`, `reuseport`).
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
