//! Reporting the rows as text: the run's one-line description, a progress
//! line per cell, the table, the errors by kind, and `load.csv`.

use std::fmt::Write as _;
use std::io;
use std::path::Path;
use std::thread;

use crate::args::Opts;
use crate::cell::Row;
use crate::disturbed;
use crate::generator::ERROR_KINDS;

/// The table's columns: heading and width. The first two are left-aligned,
/// the others right-aligned.
const COLUMNS: [(&str, usize); 11] = [
    ("mode", 12),
    ("workload", 10),
    ("conns", 6),
    ("req/s", 11),
    ("p50", 9),
    ("p99", 9),
    ("errors", 7),
    ("srv µs/req", 11),
    ("srv cores", 9),
    ("gen µs/req", 11),
    ("other cores", 11),
];
const LEFT_ALIGNED: usize = 2;

/// The run's settings in one line (under the table, and the SVG's subtitle).
pub fn subtitle(opts: &Opts) -> String {
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    format!(
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
    )
}

/// A cell's result as it finishes.
pub fn progress_line(row: &Row) -> String {
    format!(
        "{:<12} {:<10} {:>10.0} req/s  p99 {:>8}  errors {:>5}  server {:.2} µs/req  generator {:.2} µs/req",
        row.mode,
        row.workload.name(),
        row.rps,
        fmt_latency(row.p99_us),
        row.total_errors(),
        row.server_us_per_req(),
        row.gen_us_per_req()
    )
}

pub fn fmt_latency(us: f64) -> String {
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

/// The results table: a heading line, then a line per row; disturbed rows
/// have their `other cores` flagged, and a line under the table says what
/// the flag means.
pub fn table(rows: &[Row]) -> String {
    let mut t = String::new();
    table_line(&mut t, COLUMNS.map(|(heading, _)| heading.to_string()));
    for r in rows {
        table_line(
            &mut t,
            [
                r.mode.clone(),
                r.workload.name().to_string(),
                r.connections.to_string(),
                fmt_thousands(r.rps),
                fmt_latency(r.p50_us),
                fmt_latency(r.p99_us),
                r.total_errors().to_string(),
                format!("{:.2}", r.server_us_per_req()),
                format!("{:.2}", r.server_cpu_s / r.window_s),
                format!("{:.2}", r.gen_us_per_req()),
                disturbed::other_cores_cell(r.other_cores()),
            ],
        );
    }
    if rows
        .iter()
        .any(|r| disturbed::is_disturbed(r.other_cores()))
    {
        t.push_str(&disturbed::legend());
        t.push('\n');
    }
    t
}

fn table_line(out: &mut String, cells: [String; COLUMNS.len()]) {
    for (i, (cell, (_, width))) in cells.iter().zip(COLUMNS).enumerate() {
        if i > 0 {
            out.push(' ');
        }
        let _ = if i < LEFT_ALIGNED {
            write!(out, "{cell:<width$}")
        } else {
            write!(out, "{cell:>width$}")
        };
    }
    out.push('\n');
}

/// "kind=N …" over all rows, for the kinds that occurred; `None` without errors.
pub fn errors_by_kind(rows: &[Row]) -> Option<String> {
    let mut by_kind = [0u64; ERROR_KINDS.len()];
    for r in rows {
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
    (!kinds.is_empty()).then(|| kinds.join(" "))
}

/// Every figure of every row, one line per row.
pub fn write_csv(path: &Path, rows: &[Row]) -> io::Result<()> {
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
