//! The `shardd` binary: start-up, serving, graceful SIGTERM, and errors for
//! bad flags and config files.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::time::{Duration, Instant};

use support::process::{wait_timeout, Process, BIN};
use support::{poll_until, scheduling_policies, Client, TempConfig};

const DRAIN_TIMEOUT: Duration = Duration::from_millis(3_000);

/// A port nobody listens on right now.
fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// A running `shardd` process; killed on drop so a failed test leaves nothing behind.
struct Shardd {
    process: Process,
    addr: SocketAddr,
    /// The start-up line.
    banner: String,
}

impl Shardd {
    /// Start with 2 shards on a free port and wait for the start-up line.
    fn start(extra: &[&str]) -> Shardd {
        let addr = free_addr();
        let drain = DRAIN_TIMEOUT.as_millis().to_string();
        let mut command = Command::new(BIN);
        command
            .args(["--bind", &addr.to_string(), "--shards", "2"])
            .args(["--drain-timeout-ms", &drain])
            .args(extra);
        let mut process = Process::spawn(command);
        let banner = process.wait_for_line("serving on", Duration::from_secs(5));
        Shardd {
            process,
            addr,
            banner,
        }
    }

    fn signal(&self, signal: i32) {
        self.process.signal(signal);
    }

    /// Wait for the process to exit, at most `timeout`.
    fn wait(&mut self, timeout: Duration) -> Option<ExitStatus> {
        self.process.wait(timeout)
    }
}

/// Run shardd with `args` to completion (killed after 5 s), capturing output.
fn run(args: &[&str]) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shardd");
    if wait_timeout(&mut child, Duration::from_secs(5)).is_none() {
        let _ = child.kill();
        let output = child.wait_with_output().unwrap();
        panic!(
            "shardd {args:?} still running after 5 s; stderr: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    child.wait_with_output().unwrap()
}

/// Run shardd with a bad flag or file; it must fail and its message must contain `needle`.
fn assert_fails_naming(args: &[&str], needle: &str) {
    let output = run(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "shardd {args:?} succeeded; stderr: {stderr}"
    );
    assert!(
        stderr.contains(needle),
        "shardd {args:?}: stderr does not mention {needle:?}: {stderr}"
    );
}

#[test]
fn starts_logs_one_startup_line_and_serves_plaintext() {
    let mut shardd = Shardd::start(&["--listener", "handoff"]);
    let banner = &shardd.banner;
    assert!(banner.contains("2 shards"), "{banner}");
    assert!(banner.contains("pinned to cores 0-1"), "{banner}");
    assert!(banner.contains("listener handoff"), "{banner}");
    assert!(
        banner.contains(&format!("http://{}", shardd.addr)),
        "{banner}"
    );

    let mut client = Client::connect(shardd.addr);
    let response = client.get("/plaintext");
    assert_eq!(response.status, 200);
    assert_eq!(response.body, b"Hello, World!");
    // Exactly one start-up line.
    let lines = shardd.process.lines_so_far(Duration::ZERO);
    assert!(
        lines
            .iter()
            .filter(|line| line.contains("serving on"))
            .count()
            == 1,
        "a second start-up line: {lines:#?}"
    );
}

#[test]
fn unpinned_reuseport_startup_line_says_so() {
    let shardd = Shardd::start(&["--no-pin", "--listener", "reuseport"]);
    let banner = &shardd.banner;
    assert!(banner.contains("2 shards unpinned"), "{banner}");
    assert!(banner.contains("listener reuseport"), "{banner}");
    assert!(
        banner.contains(&format!("http://{}", shardd.addr)),
        "{banner}"
    );
    let mut client = Client::connect(shardd.addr);
    assert_eq!(client.get("/plaintext").body, b"Hello, World!");
}

/// SO_REUSEPORT lets any process of the same user bind a port reuseport
/// sockets listen on: without a check a second shardd would start and take
/// half of the first one's connections. It must fail as in handoff mode.
#[test]
fn a_second_reuseport_shardd_on_the_same_port_fails_and_the_first_keeps_serving() {
    let first = Shardd::start(&["--no-pin", "--listener", "reuseport"]);
    let addr = first.addr.to_string();
    let second = ["--bind", &addr, "--listener", "reuseport", "--shards", "2"];
    for args in [&second[..], &[&second[..], &["--check"]].concat()] {
        let output = run(args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "shardd {args:?}: {stderr}");
        assert!(
            stderr.contains(&format!("cannot bind {addr}: Address already in use")),
            "shardd {args:?} names the address in use: {stderr}"
        );
        assert!(output.stdout.is_empty(), "no 'settings ok' from {args:?}");
    }
    // Every new connection still reaches the first, which serves it.
    for _ in 0..20 {
        assert_eq!(
            Client::connect(first.addr).get("/plaintext").body,
            b"Hello, World!"
        );
    }
}

#[test]
fn sigterm_finishes_in_flight_request_closes_idle_and_exits_zero() {
    let mut shardd = Shardd::start(&["--no-pin"]);

    // An idle keep-alive connection.
    let mut idle = Client::connect(shardd.addr);
    assert_eq!(idle.get("/plaintext").status, 200);

    // A connection with a request half received: head and 5 of 10 body bytes.
    let mut busy = Client::connect(shardd.addr);
    assert_eq!(busy.get("/plaintext").status, 200);
    // `Expect: 100-continue` makes the server say when it has read the head,
    // so the request is surely in flight when the signal lands.
    busy.send(
        "POST /plaintext HTTP/1.1\r\nHost: test\r\nContent-Length: 10\r\n\
         Expect: 100-continue\r\n\r\n01234",
    );
    assert_eq!(busy.response().unwrap().status, 100);

    let signalled = Instant::now();
    shardd.signal(libc::SIGTERM);

    // The drain closes the idle connection...
    idle.expect_nothing_more_then_close(Duration::from_secs(3));
    // ...but lets the in-flight request finish, and then closes it too.
    busy.send("56789");
    let response = busy.response().unwrap();
    assert_eq!(
        response.status, 405,
        "POST /plaintext is answered (Method Not Allowed)"
    );
    assert!(response.closes(), "headers: {:?}", response.headers);
    busy.expect_nothing_more_then_close(Duration::from_secs(3));

    let status = shardd
        .wait(DRAIN_TIMEOUT + Duration::from_secs(2))
        .expect("shardd exits after SIGTERM");
    assert!(status.success(), "exit status {status}");
    assert!(
        signalled.elapsed() < DRAIN_TIMEOUT,
        "the drain took {:?}, not cut short when the last connection closed",
        signalled.elapsed()
    );
}

#[test]
fn a_signal_right_after_the_start_up_line_drains_instead_of_killing() {
    for signal in [libc::SIGTERM, libc::SIGHUP] {
        let mut shardd = Shardd::start(&["--no-pin"]);
        // No pause: the start-up line is logged as the acceptor starts,
        // before the binary could finish setting up anything else.
        shardd.signal(signal);
        if signal == libc::SIGHUP {
            // A reload: still serving.
            let mut client = Client::connect(shardd.addr);
            assert_eq!(client.get("/plaintext").status, 200);
            shardd.signal(libc::SIGTERM);
        }
        let status = shardd
            .wait(DRAIN_TIMEOUT + Duration::from_secs(2))
            .expect("shardd exits after SIGTERM");
        assert!(status.success(), "signal {signal}: exit status {status}");
    }
}

#[test]
fn bad_flags_exit_nonzero_naming_the_flag() {
    assert_fails_naming(&["--shards", "zero"], "--shards");
    assert_fails_naming(&["--shards", "1025"], "--shards");
    assert_fails_naming(&["--listener", "nope"], "--listener");
    assert_fails_naming(&["--bind", "not-an-address"], "--bind");
    assert_fails_naming(&["--bind", "unix:"], "unix:/path");
    assert_fails_naming(&["--unix-mode", "0999"], "--unix-mode");
}

#[test]
fn bad_config_file_exits_nonzero_naming_the_setting() {
    let out_of_range = TempConfig::new("range", "[limits]\nmax_headers = 1000\n");
    assert_fails_naming(&["--config", out_of_range.path()], "limits.max_headers");

    let unknown = TempConfig::new("unknown", "shardz = 4\n");
    assert_fails_naming(&["--config", unknown.path()], "shardz");

    let wrong_type = TempConfig::new("type", "[limits]\nidle_timeout_ms = \"soon\"\n");
    assert_fails_naming(&["--config", wrong_type.path()], "idle_timeout_ms");

    assert_fails_naming(
        &["--config", "/nonexistent/shardd.toml"],
        "/nonexistent/shardd.toml",
    );
}

#[test]
fn help_lists_the_flags() {
    let output = run(&["--help"]);
    assert!(output.status.success());
    let help = String::from_utf8_lossy(&output.stdout);
    for flag in [
        "--config",
        "--bind",
        "--shards",
        "--listener",
        "--no-pin",
        "--no-defer-accept",
        "--drain-timeout-ms",
        "--unix-mode",
        "--upgrade-timeout-ms",
        "--help",
    ] {
        assert!(help.contains(flag), "--help does not list {flag}:\n{help}");
    }
}

#[test]
fn batch_scheduling_is_on_by_default_and_can_be_turned_off() {
    for (flags, policy) in [
        (&[][..], libc::SCHED_BATCH),
        (&["--no-batch-scheduling"][..], libc::SCHED_OTHER),
    ] {
        let server = Shardd::start(flags);
        let response = Client::connect(server.addr).get("/plaintext");
        assert_eq!(response.status, 200);
        // A thread has its name a moment before its policy: look again for
        // a while before calling a thread with the wrong policy a failure.
        for name in ["acceptor", "shard-0", "shard-1"] {
            let policies = poll_until(
                &format!("{name} with {flags:?} to run as policy {policy}"),
                Duration::from_secs(5),
                || scheduling_policies(Some(server.process.pid()), name),
                |policies| *policies == [policy],
            );
            assert_eq!(policies, vec![policy], "{name} with {flags:?}");
        }
    }
}

/// `shardd_acceptor_accepted_total` from the admin port's `/metrics`.
fn accepted_total(admin: SocketAddr) -> u64 {
    let metrics = Client::connect(admin).get("/metrics");
    let body = String::from_utf8_lossy(&metrics.body).into_owned();
    body.lines()
        .find_map(|line| line.strip_prefix("shardd_acceptor_accepted_total "))
        .and_then(|value| value.trim().parse().ok())
        .unwrap_or_else(|| panic!("no accepted count in /metrics:\n{body}"))
}

#[test]
fn defer_accept_is_on_by_default_and_can_be_turned_off() {
    for (flags, accepted_while_silent) in [(&[][..], 0), (&["--no-defer-accept"][..], 1)] {
        let admin = free_addr();
        let admin_flag = admin.to_string();
        let mut args = vec!["--admin", &admin_flag];
        args.extend_from_slice(flags);
        let server = Shardd::start(&args);
        let silent = std::net::TcpStream::connect(server.addr).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        assert_eq!(accepted_total(admin), accepted_while_silent, "{flags:?}");
        // Either way, a client that speaks is served at once.
        assert_eq!(Client::connect(server.addr).get("/plaintext").status, 200);
        drop(silent);
    }
}

#[test]
fn compress_turns_compression_on_for_both_apps_and_a_bad_level_is_refused() {
    // TechEmpower's bodies are smaller than the default min_size.
    let file = TempConfig::new("compress", "[compression]\nmin_size = 0\n");
    for app in ["techempower", "router"] {
        let shardd = Shardd::start(&["--compress", "--config", file.path(), "--app", app]);
        let mut client = Client::connect(shardd.addr);
        client.send("GET /json HTTP/1.1\r\nHost: t\r\nAccept-Encoding: br;q=0, gzip\r\n\r\n");
        let response = client.response().unwrap();
        assert_eq!(response.status, 200, "{app}");
        assert_eq!(response.header("Content-Encoding"), Some("gzip"), "{app}");
        assert_eq!(response.header("Vary"), Some("Accept-Encoding"), "{app}");
    }
    // Without --compress, the file's `enabled = false` stands.
    let shardd = Shardd::start(&["--config", file.path()]);
    let mut client = Client::connect(shardd.addr);
    client.send("GET /json HTTP/1.1\r\nHost: t\r\nAccept-Encoding: gzip\r\n\r\n");
    let response = client.response().unwrap();
    assert_eq!(response.header("Content-Encoding"), None);
    assert_eq!(response.body, br#"{"message":"Hello, World!"}"#);

    let bad = TempConfig::new("bad-level", "[compression]\ngzip_level = 12\n");
    assert_fails_naming(&["--config", bad.path()], "compression.gzip_level");
}
