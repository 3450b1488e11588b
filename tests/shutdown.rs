//! `wait_for_shutdown` on real processes: the `hello` example (the README's
//! first) and `drain_probe` (hello with a slow route) are built, started,
//! and sent SIGINT or SIGTERM. A request in flight is answered, new
//! connections are refused, the process exits 0; a second signal ends a
//! stuck drain at once. In-process: tests/serve_until.rs.

mod support;

use std::io::{BufRead, BufReader, ErrorKind};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant};

use support::process::Process;
use support::{wait_until, Client};

/// Longest a start, a drain without stuck requests, or an exit may take.
const BOUND: Duration = Duration::from_secs(10);

/// The examples, built once for all tests with the profile of this test
/// (`cargo test --test shutdown` builds none), their paths from cargo.
fn example(name: &str) -> PathBuf {
    static BUILT: OnceLock<Vec<(String, PathBuf)>> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = Command::new(cargo);
        command.args([
            "build",
            "--quiet",
            "--message-format=json",
            "--example",
            "hello",
            "--example",
            "drain_probe",
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"),
        ]);
        if !cfg!(debug_assertions) {
            command.arg("--release");
        }
        let output = command.output().expect("run cargo build --example");
        assert!(
            output.status.success(),
            "cargo build --example failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|message| {
                let name = message["target"]["name"].as_str()?.to_owned();
                let executable = message["executable"].as_str()?;
                Some((name, PathBuf::from(executable)))
            })
            .collect()
    });
    built
        .iter()
        .find(|(built, _)| built == name)
        .map(|(_, path)| path.clone())
        .unwrap_or_else(|| panic!("cargo built no example {name}: {built:?}"))
}

/// An example running as a process: its stdout lines (what it prints for
/// its user) and, through [`Process`], its stderr (the log).
struct Example {
    process: Process,
    stdout: mpsc::Receiver<String>,
    addr: SocketAddr,
}

impl Example {
    /// Start example `name` with `args`; returns once it says where it serves.
    fn start(name: &str, args: &[&str]) -> Example {
        let mut command = Command::new(example(name));
        command.args(args);
        let mut process = Process::spawn_with_stdout(command);
        let pipe = process.child.stdout.take().unwrap();
        let (lines, stdout) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                if lines.send(line).is_err() {
                    break;
                }
            }
        });
        let mut example = Example {
            process,
            stdout,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
        };
        let serving = example.printed("serving on http://");
        let addr = serving["serving on http://".len()..]
            .split_whitespace()
            .next()
            .unwrap();
        example.addr = addr.parse().unwrap_or_else(|_| panic!("{serving:?}"));
        example
    }

    /// The first line printed from now on that contains `needle`; panics after [`BOUND`].
    fn printed(&mut self, needle: &str) -> String {
        let until = Instant::now() + BOUND;
        let mut seen = Vec::new();
        loop {
            let left = until.saturating_duration_since(Instant::now());
            match self.stdout.recv_timeout(left) {
                Ok(line) if line.contains(needle) => return line,
                Ok(line) => seen.push(line),
                Err(_) => panic!("printed no {needle:?} within {BOUND:?}; printed: {seen:#?}"),
            }
        }
    }

    /// Waits for the process to exit; its exit code.
    fn exit_code(&mut self, within: Duration) -> Option<i32> {
        let status = self
            .process
            .wait(within)
            .unwrap_or_else(|| panic!("still running {within:?} later"));
        status.code()
    }
}

/// Whether a new connection to `addr` is refused.
fn refuses_connections(addr: SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
        Err(error) if error.kind() == ErrorKind::ConnectionRefused
    )
}

#[test]
fn hello_serves_until_ctrl_c_then_stops_and_exits_0() {
    let mut hello = Example::start("hello", &["127.0.0.1:0"]);
    let mut client = Client::connect(hello.addr);
    let answer = client.get("/shard");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert!(
        answer.body_str().starts_with("served by shard "),
        "{answer:?}"
    );
    drop(client);

    hello.process.signal(libc::SIGINT);
    hello.printed("stopped");
    assert_eq!(hello.exit_code(BOUND), Some(0));
    assert!(refuses_connections(hello.addr));
}

/// A request in flight when the signal lands is answered, new connections
/// are refused meanwhile, the drain is logged, and the process exits 0.
fn drains_a_request_in_flight_on(signal: i32) {
    let mut probe = Example::start("drain_probe", &["127.0.0.1:0", "10000"]);
    let mut busy = Client::connect(probe.addr);
    busy.send("GET /slow?ms=1500 HTTP/1.1\r\nHost: t\r\n\r\n");
    probe.printed("handling /slow");

    probe.process.signal(signal);
    probe.process.wait_for_line("draining", BOUND);
    wait_until("new connections refused", BOUND, || {
        refuses_connections(probe.addr)
    });
    let answer = busy
        .response_within(BOUND)
        .expect("the request in flight is answered");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body_str(), "slept\n");
    assert!(answer.closes(), "answered while draining: {answer:?}");
    probe.printed("stopped");
    assert_eq!(probe.exit_code(BOUND), Some(0), "signal {signal}");
}

#[test]
fn sigint_drains_a_request_in_flight_and_exits_0() {
    drains_a_request_in_flight_on(libc::SIGINT);
}

#[test]
fn sigterm_drains_a_request_in_flight_and_exits_0() {
    drains_a_request_in_flight_on(libc::SIGTERM);
}

#[test]
fn a_second_signal_ends_a_stuck_drain_at_once() {
    for (first, second, code) in [
        (libc::SIGINT, libc::SIGINT, 130),
        (libc::SIGTERM, libc::SIGTERM, 143),
        (libc::SIGTERM, libc::SIGINT, 130),
    ] {
        // A request that would hold the drain for a minute, under a 60 s drain timeout.
        let mut probe = Example::start("drain_probe", &["127.0.0.1:0", "60000"]);
        let mut stuck = Client::connect(probe.addr);
        stuck.send("GET /slow?ms=60000 HTTP/1.1\r\nHost: t\r\n\r\n");
        probe.printed("handling /slow");
        probe.process.signal(first);
        probe.process.wait_for_line("draining", BOUND);

        let signalled = Instant::now();
        probe.process.signal(second);
        assert_eq!(
            probe.exit_code(Duration::from_secs(5)),
            Some(code),
            "signals {first} then {second}"
        );
        assert!(
            signalled.elapsed() < Duration::from_secs(2),
            "took {:?}",
            signalled.elapsed()
        );
    }
}
