//! Load benchmark: shardd's listener/dispatch modes side by side, driven by a
//! built-in load generator over real loopback sockets (no wrk needed).
//!
//! ```text
//! cargo bench --bench load -- [--duration SECS] [--warmup SECS] [--connections N]
//!     [--churn-connections N] [--depth N] [--threads N] [--shards N] [--no-pin]
//!     [--workloads pipeline,keepalive,churn] [--modes handoff-rr,handoff-lc,reuseport]
//!     [--extra "label=CMD ARGS with {port}"]... [--server-cmd "CMD ARGS with {port}"]
//!     [--out DIR] [--settle SECS] [--timeout SECS] [--path /json] [--body TEXT]
//! ```
//!
//! For every mode it starts the release `shardd` binary on a free port (all
//! servers run for the whole run, idle when not measured), then for every
//! workload and every server in turn: warm-up, a measured window, a pause.
//! Every response is checked (status 200, `Content-Length` present and the
//! body exactly `Hello, World!`, or `{"message":"Hello, World!"}` with
//! `--path /json`); anything else counts as an error.
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
//!
//! This file is the entry: parse the options, start the servers, measure
//! every cell, stop the servers, report.

mod args;
mod axis;
mod cell;
mod chart;
mod cpu;
mod disturbed;
mod generator;
mod histogram;
mod report;
mod servers;
#[path = "../support/mod.rs"]
mod support;
mod workload;

use std::process::exit;
use std::thread;
use std::time::Duration;

use args::Opts;
use cell::Row;
use servers::RunningServer;

fn main() {
    let opts = args::parse_args().unwrap_or_else(|message| {
        eprintln!("load: {message}");
        exit(2);
    });
    support::raise_open_file_limit();
    if let Err(e) = std::fs::create_dir_all(&opts.out) {
        eprintln!("load: cannot create {}: {e}", opts.out.display());
        exit(1);
    }
    let subtitle = report::subtitle(&opts);
    let smoke_note = if opts.smoke {
        "smoke test (no --bench): "
    } else {
        ""
    };
    eprintln!("load: {smoke_note}{subtitle}");

    let mut servers = start_servers(&opts);
    let rows = measure_every_cell(&mut servers, &opts);
    let all_exited_cleanly = servers::stop_all(&mut servers);

    println!();
    print!("{}", report::table(&rows));
    println!("({subtitle})");
    if let Some(kinds) = report::errors_by_kind(&rows) {
        println!("errors by kind: {kinds}");
    }

    if opts.smoke {
        smoke_verdict(&rows);
    } else {
        let modes: Vec<String> = servers.iter().map(|s| s.target.label.clone()).collect();
        write_files(&opts, &rows, &modes, &subtitle);
    }
    if !all_exited_cleanly {
        exit(1);
    }
}

/// Every target, on its own free port; exits if one fails to start.
fn start_servers(opts: &Opts) -> Vec<RunningServer> {
    let mut servers = Vec::new();
    for target in &opts.targets {
        match servers::start_server(target, &opts.out) {
            Ok(server) => servers.push(server),
            Err(message) => {
                eprintln!("load: {message}");
                for server in &mut servers {
                    servers::stop_server(server);
                }
                exit(1);
            }
        }
    }
    servers
}

/// For every workload, every server still alive in turn, `--settle` apart.
fn measure_every_cell(servers: &mut [RunningServer], opts: &Opts) -> Vec<Row> {
    let mut rows = Vec::new();
    for &workload in &opts.workloads {
        for server in servers.iter_mut() {
            if server.dead.is_some() {
                continue;
            }
            let row = cell::run_cell(server, workload, opts);
            eprintln!("load: {}", report::progress_line(&row));
            server.note_if_exited();
            rows.push(row);
            thread::sleep(Duration::from_secs_f64(opts.settle));
        }
    }
    rows
}

/// Smoke test: exit 1 on any error or a cell without responses.
fn smoke_verdict(rows: &[Row]) {
    let errors: u64 = rows.iter().map(Row::total_errors).sum();
    if errors > 0 || rows.iter().any(|r| r.requests == 0) {
        eprintln!("load: smoke test FAILED (errors or a cell without responses)");
        exit(1);
    }
    eprintln!("load: smoke test passed");
}

/// `load.csv` and `load.svg` in `--out`; a failure is reported, not fatal.
fn write_files(opts: &Opts, rows: &[Row], modes: &[String], subtitle: &str) {
    let csv = opts.out.join("load.csv");
    let svg = opts.out.join("load.svg");
    match report::write_csv(&csv, rows) {
        Ok(()) => println!("wrote {}", csv.display()),
        Err(e) => eprintln!("load: cannot write {}: {e}", csv.display()),
    }
    match chart::write_svg(&svg, rows, &opts.workloads, modes, subtitle) {
        Ok(()) => println!("wrote {}", svg.display()),
        Err(e) => eprintln!("load: cannot write {}: {e}", svg.display()),
    }
}
