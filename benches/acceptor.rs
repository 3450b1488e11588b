//! Acceptor capacity: connections one acceptor thread accepts and hands off
//! per second, with no HTTP behind it.
//!
//! Runs a real server through the public API (`Server::bind`, so the same
//! acceptor, dispatcher, channels and wake-ups) with 1 and 2 shards whose
//! listener wraps the builtin one and closes each connection at once (its
//! `establish` fails), so no HTTP runs behind the acceptor; the acceptor and
//! the shards run as `SCHED_BATCH` (`batch_scheduling`). Two cells per
//! shard count:
//!
//! - `loop`: client threads connect over loopback in a loop, each waiting
//!   for the server's close (so the TIME_WAIT is the server's, as in the
//!   load bench's churn). On a small box the clients are the bottleneck and
//!   the acceptor sleeps between connections.
//! - `burst`: `--burst` connections are made first (the kernel completes
//!   their handshakes into the backlog), then the acceptor is started and
//!   timed until it has handed them all off: the acceptor saturated, with
//!   no client competing for the cores. Repeated `--rounds` times.
//!
//! Reports connections accepted and handed off per second, the acceptor
//! thread's CPU per connection (`/proc/self/task/TID/schedstat`) and its
//! sleeps per connection, and where one acceptor would use a whole core.
//!
//! ```text
//! cargo bench --bench acceptor -- [--duration 5] [--warmup 1] [--clients 8] [--shards 1,2] [--burst 4000] [--rounds 5]
//! ```
//!
//! Run without `--bench` (as `cargo test --benches` does) it is a smoke
//! test: 0.3 s per loop cell, 2 clients, one burst of 200; exit 1 if a cell
//! handed nothing off, a client failed, or a burst was not spread evenly.

use std::future::{ready, Future};
use std::io::{self, Read};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardd::listeners::BuiltinListener;
use shardd::{
    app_fn, Accepted, Admission, Config, DispatchPolicy, Listener, PeerAddr, Response, Server,
    ServerHandle, ShardInfo, StatsSnapshot,
};

mod support;

struct Args {
    duration: f64,
    warmup: f64,
    clients: usize,
    shards: Vec<usize>,
    burst: usize,
    rounds: usize,
    smoke: bool,
}

fn parse_args() -> Args {
    let mut args = Args {
        duration: 5.0,
        warmup: 1.0,
        clients: 8,
        shards: vec![1, 2],
        burst: 0,
        rounds: 0,
        smoke: true,
    };
    let (mut duration, mut clients, mut burst, mut rounds) = (None, None, None, None);
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        let mut value = |name: &str| {
            it.next()
                .unwrap_or_else(|| usage(&format!("{name} needs a value")))
        };
        match arg.as_str() {
            "--bench" => args.smoke = false,
            "--duration" => duration = Some(number(&value("--duration"))),
            "--warmup" => args.warmup = number(&value("--warmup")),
            "--clients" => clients = Some(number(&value("--clients")) as usize),
            "--burst" => burst = Some(number(&value("--burst")) as usize),
            "--rounds" => rounds = Some(number(&value("--rounds")) as usize),
            "--shards" => {
                args.shards = value("--shards")
                    .split(',')
                    .map(|n| number(n) as usize)
                    .collect()
            }
            "--help" | "-h" => usage(""),
            other => usage(&format!("unknown argument {other}")),
        }
    }
    let (default_duration, default_clients, default_burst, default_rounds) = if args.smoke {
        (0.3, 2, 200, 1)
    } else {
        (5.0, 8, 4000, 5)
    };
    args.duration = duration.unwrap_or(default_duration);
    args.clients = clients.unwrap_or(default_clients).max(1);
    // The backlog (and net.core.somaxconn, 4096 by default) bounds a burst.
    args.burst = burst.unwrap_or(default_burst).clamp(1, 4096);
    args.rounds = rounds.unwrap_or(default_rounds).max(1);
    if args.smoke {
        args.warmup = args.warmup.min(0.1);
    }
    args
}

fn number(text: &str) -> f64 {
    text.parse()
        .unwrap_or_else(|_| usage(&format!("not a number: {text}")))
}

fn usage(error: &str) -> ! {
    if !error.is_empty() {
        eprintln!("acceptor: {error}");
    }
    eprintln!(
        "cargo bench --bench acceptor -- [--duration SECS] [--warmup SECS] [--clients N] [--shards 1,2] [--burst N] [--rounds N]"
    );
    std::process::exit(if error.is_empty() { 0 } else { 2 })
}

/// One measured cell.
struct Cell {
    kind: &'static str,
    shards: usize,
    accepted: u64,
    handed: u64,
    /// Wall time the counts were taken over, seconds.
    wall: f64,
    /// The acceptor thread's CPU time, ns.
    acceptor_ns: u64,
    /// The acceptor thread's voluntary context switches.
    sleeps: u64,
    /// The pretend shards' CPU time, ns.
    consumers_ns: u64,
    client_errors: u64,
    refused: u64,
    /// Connections each pretend shard took (burst: must be even).
    per_shard: Vec<u64>,
}

impl Cell {
    fn per_conn(&self, count: u64) -> f64 {
        count as f64 / self.handed.max(1) as f64
    }

    fn acceptor_us_per_conn(&self) -> f64 {
        self.per_conn(self.acceptor_ns) / 1_000.0
    }
}

/// CPU time (ns) and voluntary context switches of one thread of this process.
fn thread_usage(tid: i32) -> (u64, u64) {
    let read = |file: &str| {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/{file}")).unwrap_or_default()
    };
    // schedstat: time on CPU (ns), time waiting to run (ns), timeslices.
    let cpu_ns = read("schedstat")
        .split_whitespace()
        .next()
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    let sleeps = read("status")
        .lines()
        .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    (cpu_ns, sleeps)
}

/// The shards' listener: the builtin one, but every connection it hands
/// out is closed at once, unanswered (its `establish` fails), as the
/// shard's real bookkeeping (slot, admission counters) sees it.
struct CloseAtOnce(BuiltinListener);

impl Listener for CloseAtOnce {
    type Conn = <BuiltinListener as Listener>::Conn;

    async fn accept(&mut self) -> io::Result<Option<Accepted<Self::Conn>>> {
        self.0.accept().await
    }

    fn establish(_: &mut Self::Conn, _: &mut PeerAddr) -> impl Future<Output = io::Result<()>> {
        ready(Err(io::Error::other("closed by the acceptor bench")))
    }

    fn stop_accepting(&mut self) {
        self.0.stop_accepting()
    }
}

/// A server bound to 127.0.0.1:0 with `shards` shards, not yet serving:
/// clients may connect (the kernel queues them) before [`start`].
fn bind(shards: usize) -> (Server<impl shardd::ConnectionSource>, SocketAddr) {
    let config = Config {
        bind: SocketAddr::from(([127, 0, 0, 1], 0)).into(),
        shards,
        pin: false,
        batch_scheduling: true,
        // The clients send nothing: deferred, their connections would wait
        // a second in the kernel before the acceptor saw them.
        defer_accept: false,
        backlog: 4096,
        channel_capacity: 4096,
        admission: Admission {
            dispatch: DispatchPolicy::RoundRobin,
            ..Admission::default()
        },
        ..Config::default()
    };
    let server = Server::bind(config)
        .expect("the server")
        .wrap_listener(|_: &ShardInfo, builtin| Ok(CloseAtOnce(builtin)));
    let addr = server.local_addr().expect("a TCP address");
    (server, addr)
}

/// A serving bench server, and the ids of its acceptor and shard threads.
struct Running {
    handle: ServerHandle,
    acceptor_tid: i32,
    shard_tids: Vec<i32>,
}

/// Start serving: the acceptor takes what is in the backlog at once.
fn start(server: Server<impl shardd::ConnectionSource>, shards: usize) -> Running {
    // No connection reaches the app: each is closed before it is served.
    let handle = server
        .serve(|_| app_fn(|_| Response::not_found()))
        .expect("serving");
    let acceptor_tid = thread_ids(&["acceptor".to_owned()])[0];
    let names: Vec<String> = (0..shards).map(|index| format!("shard-{index}")).collect();
    Running {
        handle,
        acceptor_tid,
        shard_tids: thread_ids(&names),
    }
}

/// The ids of this process's threads with these names, once each has
/// named itself (a new thread does that first thing).
fn thread_ids(names: &[String]) -> Vec<i32> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let mut found = vec![None; names.len()];
        for entry in std::fs::read_dir("/proc/self/task")
            .expect("/proc/self/task")
            .flatten()
        {
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            if let Some(index) = names.iter().position(|name| *name == comm.trim_end()) {
                found[index] = entry.file_name().to_str().and_then(|tid| tid.parse().ok());
            }
        }
        if let Some(tids) = found.iter().copied().collect::<Option<Vec<i32>>>() {
            return tids;
        }
        assert!(
            Instant::now() < deadline,
            "no threads named {names:?} (found {found:?})"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Connections answered 503 or ever held pending (should stay 0).
fn refused(stats: &StatsSnapshot) -> u64 {
    stats.acceptor.rejected + stats.acceptor.queued
}

/// Connections each shard took.
fn per_shard(stats: &StatsSnapshot) -> Vec<u64> {
    stats.shards.iter().map(|shard| shard.accepted).collect()
}

fn consumers_cpu(tids: &[i32]) -> u64 {
    tids.iter().map(|&t| thread_usage(t).0).sum()
}

/// Connect, wait for the server's close, again, until `stop`.
fn client(addr: SocketAddr, stop: &AtomicBool, errors: &AtomicU64) {
    let mut byte = [0u8; 1];
    while !stop.load(Relaxed) {
        match TcpStream::connect(addr) {
            Ok(mut stream) => {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                if !matches!(stream.read(&mut byte), Ok(0)) {
                    errors.fetch_add(1, Relaxed);
                }
            }
            Err(_) => {
                errors.fetch_add(1, Relaxed);
                std::thread::sleep(Duration::from_millis(1));
            }
        }
    }
}

/// Clients connecting in a loop for `--duration`.
fn measure_loop(args: &Args, shards: usize) -> Cell {
    let (server, addr) = bind(shards);
    let running = start(server, shards);
    let stop = Arc::new(AtomicBool::new(false));
    let errors = Arc::new(AtomicU64::new(0));
    let clients: Vec<_> = (0..args.clients)
        .map(|_| {
            let (stop, errors) = (stop.clone(), errors.clone());
            std::thread::spawn(move || client(addr, &stop, &errors))
        })
        .collect();
    std::thread::sleep(Duration::from_secs_f64(args.warmup));
    let (errors_before, started) = (errors.load(Relaxed), Instant::now());
    let before = running.handle.stats();
    let (cpu_before, sleeps_before) = thread_usage(running.acceptor_tid);
    let consumers_before = consumers_cpu(&running.shard_tids);
    std::thread::sleep(Duration::from_secs_f64(args.duration));
    let (cpu_after, sleeps_after) = thread_usage(running.acceptor_tid);
    let consumers_after = consumers_cpu(&running.shard_tids);
    let after = running.handle.stats();
    let elapsed = started.elapsed().as_secs_f64();
    let client_errors = errors.load(Relaxed) - errors_before;
    stop.store(true, Relaxed);
    for client in clients {
        let _ = client.join();
    }
    let last = running.handle.stats();
    running.handle.stop();
    Cell {
        kind: "loop",
        shards,
        accepted: after.acceptor.accepted - before.acceptor.accepted,
        handed: after.acceptor.handed_off - before.acceptor.handed_off,
        wall: elapsed,
        acceptor_ns: cpu_after - cpu_before,
        sleeps: sleeps_after - sleeps_before,
        consumers_ns: consumers_after - consumers_before,
        client_errors,
        refused: refused(&last),
        per_shard: per_shard(&last),
    }
}

/// `--burst` connections waiting in the backlog before the acceptor starts,
/// `--rounds` times.
fn measure_burst(args: &Args, shards: usize) -> Cell {
    let (mut wall, mut cpu, mut sleeps, mut consumer_cpu) = (0.0, 0, 0, 0);
    let (mut accepted, mut handed, mut client_errors, mut refused) = (0, 0, 0, 0);
    let mut per_shard = vec![0; shards];
    for _ in 0..args.rounds {
        let (server, addr) = bind(shards);
        let clients: Vec<TcpStream> = (0..args.burst)
            .filter_map(|_| match TcpStream::connect(addr) {
                Ok(stream) => Some(stream),
                Err(_) => {
                    client_errors += 1;
                    None
                }
            })
            .collect();
        // The wall time includes starting the shards and the acceptor
        // thread (well under a millisecond against the burst's handoffs).
        let started = Instant::now();
        let running = start(server, shards);
        let deadline = started + Duration::from_secs(10);
        while running.handle.stats().acceptor.handed_off < clients.len() as u64
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        wall += started.elapsed().as_secs_f64();
        let (acceptor_cpu, acceptor_sleeps) = thread_usage(running.acceptor_tid);
        cpu += acceptor_cpu;
        sleeps += acceptor_sleeps;
        consumer_cpu += consumers_cpu(&running.shard_tids);
        // The shards have taken what was handed off once `accepted` catches up.
        while self::per_shard(&running.handle.stats()).iter().sum::<u64>()
            < running.handle.stats().acceptor.handed_off
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_micros(200));
        }
        let stats = running.handle.stats();
        accepted += stats.acceptor.accepted;
        handed += stats.acceptor.handed_off;
        refused += self::refused(&stats);
        for (total, taken) in per_shard.iter_mut().zip(self::per_shard(&stats)) {
            *total += taken;
        }
        running.handle.stop();
        drop(clients);
    }
    Cell {
        kind: "burst",
        shards,
        accepted,
        handed,
        wall,
        acceptor_ns: cpu,
        sleeps,
        consumers_ns: consumer_cpu,
        client_errors,
        refused,
        per_shard,
    }
}

fn main() {
    let args = parse_args();
    // A burst holds both ends of up to 4096 connections at once.
    support::raise_open_file_limit();
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!(
        "acceptor: {} s per cell after {} s warm-up; {} client threads; {cores} cores",
        args.duration, args.warmup, args.clients
    );
    let mut cells = Vec::new();
    for &shards in &args.shards {
        cells.push(measure_loop(&args, shards));
        cells.push(measure_burst(&args, shards));
    }
    println!();
    println!(
        "{:<6} {:>6} {:>12} {:>12} {:>14} {:>9} {:>13} {:>14} {:>14} {:>7}  per shard",
        "cell",
        "shards",
        "accepted/s",
        "handed/s",
        "acceptor µs/c",
        "busy",
        "sleeps/conn",
        "consumer µs/c",
        "saturates at",
        "errors"
    );
    let mut failed = false;
    for cell in &cells {
        println!(
            "{:<6} {:>6} {:>12.0} {:>12.0} {:>14.2} {:>9.2} {:>13.3} {:>14.2} {:>12.0}/s {:>7}  {:?}",
            cell.kind,
            cell.shards,
            cell.accepted as f64 / cell.wall,
            cell.handed as f64 / cell.wall,
            cell.acceptor_us_per_conn(),
            cell.acceptor_ns as f64 / 1e9 / cell.wall,
            cell.per_conn(cell.sleeps),
            cell.per_conn(cell.consumers_ns) / 1_000.0,
            1e6 / cell.acceptor_us_per_conn().max(1e-3),
            cell.client_errors + cell.refused,
            cell.per_shard,
        );
        // Round-robin: a burst is split evenly (a loop's connections may
        // still be in flight when it stops, so only within one).
        let (most, least) = (
            cell.per_shard.iter().max().copied().unwrap_or(0),
            cell.per_shard.iter().min().copied().unwrap_or(0),
        );
        let uneven = match cell.kind {
            "burst" => most - least > args.rounds as u64,
            _ => false,
        };
        failed |= cell.handed == 0 || cell.client_errors > 0 || cell.refused > 0 || uneven;
    }
    println!(
        "(acceptor µs/c: the acceptor thread's CPU per connection handed off; busy: its CPU ÷ wall time; \
         saturates at: 1 s ÷ acceptor µs/c, the rate at which it would use a whole core)"
    );
    if failed {
        eprintln!("acceptor: a cell handed nothing off, clients saw errors, or a burst was uneven");
        std::process::exit(1);
    }
}
