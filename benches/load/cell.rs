//! One measured cell (one server × one workload): load it, warm up, sample
//! CPU around the measured window, and collect the figures into a `Row`.

use std::thread;
use std::time::{Duration, Instant};

use crate::args::Opts;
use crate::cpu::CpuSample;
use crate::generator::{self, GenConfig, Load, ERROR_KINDS};
use crate::servers::RunningServer;
use crate::workload::Workload;

/// The figures of one cell.
#[derive(Clone, Debug)]
pub struct Row {
    pub mode: String,
    pub workload: Workload,
    pub connections: usize,
    pub depth: usize,
    pub window_s: f64,
    pub requests: u64,
    pub rps: f64,
    pub p50_us: f64,
    pub p90_us: f64,
    pub p99_us: f64,
    pub max_us: f64,
    pub errors: [u64; ERROR_KINDS.len()],
    pub other_errors: u64,
    pub opens: u64,
    pub server_cpu_s: f64,
    /// Busy CPU of the machine not charged to the server or the generator:
    /// other workloads, plus kernel time charged to no process.
    pub other_cpu_s: f64,
    pub gen_cpu_s: f64,
}

impl Row {
    pub fn total_errors(&self) -> u64 {
        self.errors.iter().sum()
    }
    pub fn server_us_per_req(&self) -> f64 {
        per_request_us(self.server_cpu_s, self.requests)
    }
    pub fn gen_us_per_req(&self) -> f64 {
        per_request_us(self.gen_cpu_s, self.requests)
    }
    /// Cores busy with other work during the window (see [`Row::other_cpu_s`]).
    pub fn other_cores(&self) -> f64 {
        self.other_cpu_s / self.window_s
    }
}

fn per_request_us(cpu_s: f64, requests: u64) -> f64 {
    if requests == 0 {
        f64::NAN
    } else {
        cpu_s * 1e6 / requests as f64
    }
}

/// Measure `workload` against `server`: `--warmup`, then a `--duration` window.
pub fn run_cell(server: &RunningServer, workload: Workload, opts: &Opts) -> Row {
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
    let (batch, batch_requests) = workload.request_batch(server.port, &opts.path, opts.depth);
    let cfg = GenConfig {
        addr: generator::loopback(server.port),
        workload,
        batch,
        batch_requests,
        timeout: opts.timeout,
        client_close: opts.churn_client_close,
        expected_body: opts.body.clone().into_bytes(),
    };
    let load = Load::start(cfg, connections, opts.threads);
    let pid = server.child.id();
    thread::sleep(Duration::from_secs_f64(opts.warmup));
    let cpu_before = CpuSample::take(pid);
    let t0 = Instant::now();
    load.measure();
    thread::sleep(Duration::from_secs_f64(opts.duration));
    load.stop();
    let window = t0.elapsed().as_secs_f64();
    let cpu = CpuSample::take(pid).since(&cpu_before);
    let seen = load.join();
    let hist = &seen.hist;
    Row {
        mode: server.target.label.clone(),
        workload,
        connections,
        depth,
        window_s: window,
        requests: seen.completed,
        rps: seen.completed as f64 / window,
        p50_us: hist.quantile_us(0.50),
        p90_us: hist.quantile_us(0.90),
        p99_us: hist.quantile_us(0.99),
        max_us: hist.max_us(),
        errors: seen.errors,
        other_errors: seen.other_errors,
        opens: seen.opens,
        server_cpu_s: cpu.server,
        other_cpu_s: cpu.other,
        gen_cpu_s: cpu.generator,
    }
}
