//! The binary's `--check` (like `nginx -t`) and its `--admin` flag.

mod support;

use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use support::Client;

const BIN: &str = env!("CARGO_BIN_EXE_shardd");

/// A config file in the temp dir, removed on drop.
struct TempConfig(PathBuf);

impl TempConfig {
    fn new(name: &str, text: &str) -> TempConfig {
        let path =
            std::env::temp_dir().join(format!("shardd-check-{}-{name}.toml", std::process::id()));
        std::fs::write(&path, text).unwrap();
        TempConfig(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempConfig {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

fn check(args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--check")
        .args(args)
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .output()
        .expect("run shardd --check")
}

/// Asserts `shardd --check ARGS` exits 1, printing nothing on stdout and
/// naming each of `needles` on stderr (a TOML error quotes the line, so it
/// may take more than one line).
fn assert_check_fails_naming(args: &[&str], needles: &[&str]) {
    let output = check(args);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
    assert!(
        output.stdout.is_empty(),
        "{args:?}: a failed check prints no summary"
    );
    assert!(stderr.starts_with("shardd: "), "{stderr}");
    for needle in needles {
        assert!(
            stderr.contains(needle),
            "{args:?}: {stderr:?} does not name {needle:?}"
        );
    }
}

#[test]
fn check_passes_a_good_config_with_a_one_line_summary() {
    let config = TempConfig::new(
        "good",
        "bind = \"127.0.0.1:0\"\nshards = 3\nadmin = \"127.0.0.1:0\"\n[admission]\nmax_pending = 8\n",
    );
    let output = check(&["--config", config.path()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(stdout.lines().count(), 1, "one line: {stdout}");
    let line = stdout.trim_end();
    assert!(line.starts_with("shardd: settings ok"), "{line}");
    for needle in [
        config.path(),
        "3 shards",
        "handoff on 127.0.0.1:",
        "admin on 127.0.0.1:",
    ] {
        assert!(line.contains(needle), "{line:?} lacks {needle:?}");
    }

    // The shipped example checks too (on a free port: 8080 may be taken).
    let output = check(&["--config", "config/shardd.toml", "--bind", "127.0.0.1:0"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn check_names_a_busy_port() {
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    assert_check_fails_naming(&["--bind", &addr], &[&addr, "in use"]);
    assert_check_fails_naming(
        &["--bind", "127.0.0.1:0", "--admin", &addr],
        &["admin", &addr, "in use"],
    );
}

#[test]
fn check_names_a_bad_setting_or_a_missing_file() {
    let unknown = TempConfig::new("unknown", "shardz = 4\n");
    assert_check_fails_naming(&["--config", unknown.path()], &["shardz", unknown.path()]);
    let bad_admin = TempConfig::new("bad-admin", "admin = \"not an address\"\n");
    assert_check_fails_naming(&["--config", bad_admin.path()], &["admin"]);
    let invalid = TempConfig::new("invalid", "[limits]\nmax_headers = 1000\n");
    assert_check_fails_naming(&["--config", invalid.path()], &["limits.max_headers"]);
    assert_check_fails_naming(
        &["--config", "/nonexistent/shardd.toml"],
        &["/nonexistent/shardd.toml"],
    );
}

#[test]
fn the_binary_serves_the_admin_port_and_exits_zero_on_sigterm() {
    let mut child = Command::new(BIN)
        .args(["--bind", "127.0.0.1:0", "--shards", "2", "--no-pin"])
        .args(["--admin", "127.0.0.1:0", "--drain-timeout-ms", "2000"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start shardd");
    let (lines, stderr) = mpsc::channel();
    let pipe = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines().map_while(Result::ok) {
            if lines.send(line).is_err() {
                break;
            }
        }
    });
    // The admin line comes first; the start-up line ("serving on") once the
    // server runs, when the signal handlers are about to be installed.
    let until = Instant::now() + Duration::from_secs(5);
    let mut admin: Option<SocketAddr> = None;
    loop {
        let left = until.saturating_duration_since(Instant::now());
        let Ok(line) = stderr.recv_timeout(left) else {
            let _ = child.kill();
            panic!("no admin and start-up lines within 5 s");
        };
        if let Some(rest) = line.split("admin on http://").nth(1) {
            let addr = rest.split_whitespace().next().unwrap_or_default();
            admin = Some(addr.parse().unwrap_or_else(|_| panic!("{line}")));
        }
        if line.contains("serving on") {
            break;
        }
    }
    let admin = admin.expect("the admin line comes before the start-up line");
    let ready = Client::connect(admin).get("/health/ready");
    assert_eq!((ready.status, ready.body_str()), (200, "ready\n"));
    let metrics = Client::connect(admin).get("/metrics");
    assert!(metrics
        .body_str()
        .contains("shardd_shard_up{shard=\"1\"} 1"));

    // The handlers are installed right after the server starts; leave them a moment.
    std::thread::sleep(Duration::from_millis(200));
    // SAFETY: kill(2) on our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    let until = Instant::now() + Duration::from_secs(5);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > until {
            let _ = child.kill();
            panic!("shardd did not exit within 5 s of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(status.success(), "{status:?}");
}
