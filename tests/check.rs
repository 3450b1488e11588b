//! The binary's `--check` (like `nginx -t`) and its `--admin` flag.

mod support;

use std::net::{SocketAddr, TcpListener};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use support::process::Process;
use support::{Client, TempConfig};

const BIN: &str = env!("CARGO_BIN_EXE_shardd");

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
        &["/nonexistent/shardd.toml", "No such file"],
    );
}

#[test]
fn an_error_names_its_cause_once() {
    let output = check(&["--config", "/nonexistent/shardd.toml"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(
        stderr.matches("No such file or directory").count(),
        1,
        "{stderr}"
    );
    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let stderr = String::from_utf8_lossy(&check(&["--bind", &addr]).stderr).into_owned();
    assert_eq!(stderr.matches("in use").count(), 1, "{stderr}");
}

#[test]
fn shards_zero_means_one_per_core_as_the_config_file_says() {
    let cores = std::thread::available_parallelism().unwrap().get();
    for args in [
        &["--shards", "0", "--bind", "127.0.0.1:0"][..],
        &["--bind", "127.0.0.1:0"][..],
    ] {
        let output = check(args);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {output:?}");
        assert!(
            stdout.contains(&format!("{cores} shards")),
            "{args:?}: {stdout}"
        );
    }
}

#[test]
fn the_binary_serves_the_admin_port_and_exits_zero_on_sigterm() {
    let mut command = Command::new(BIN);
    command
        .args(["--bind", "127.0.0.1:0", "--shards", "2", "--no-pin"])
        .args(["--admin", "127.0.0.1:0", "--drain-timeout-ms", "2000"]);
    let mut shardd = Process::spawn(command);
    // The admin line comes first; the start-up line ("serving on") once the server runs.
    let line = shardd.wait_for_line("admin on http://", Duration::from_secs(5));
    let rest = line.split("admin on http://").nth(1).unwrap_or_default();
    let addr = rest.split_whitespace().next().unwrap_or_default();
    let admin: SocketAddr = addr.parse().unwrap_or_else(|_| panic!("{line}"));
    shardd.wait_for_line("serving on", Duration::from_secs(5));
    let ready = Client::connect(admin).get("/health/ready");
    assert_eq!((ready.status, ready.body_str()), (200, "ready\n"));
    let metrics = Client::connect(admin).get("/metrics");
    assert!(metrics
        .body_str()
        .contains("shardd_shard_up{shard=\"1\"} 1"));

    shardd.signal(libc::SIGTERM);
    let status = shardd
        .wait(Duration::from_secs(5))
        .expect("shardd exits within 5 s of SIGTERM");
    assert!(status.success(), "{status:?}");
}

#[test]
fn print_config_gives_an_installed_binary_the_documented_config_file() {
    let output = Command::new(BIN)
        .arg("--print-config")
        .stdin(Stdio::null())
        .output()
        .expect("run shardd --print-config");
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let printed = String::from_utf8(output.stdout).expect("UTF-8");
    let shipped = std::fs::read_to_string("config/shardd.toml").unwrap();
    assert_eq!(printed, shipped, "the file in the repository");
    // What it prints is a config file the binary takes as it is.
    let config = TempConfig::new("printed", &printed);
    let output = check(&["--config", config.path(), "--bind", "127.0.0.1:0"]);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
}

#[test]
fn check_names_each_static_mount_and_whether_it_serves_dotfiles() {
    let dir = std::env::temp_dir();
    let config = TempConfig::new(
        "mounts",
        &format!(
            "bind = \"127.0.0.1:0\"\nshards = 1\n[[static]]\nprefix = \"/a\"\ndir = \"{0}\"\n\
             [[static]]\nprefix = \"/b\"\ndir = \"{0}\"\ndotfiles = true\n",
            dir.display()
        ),
    );
    let output = check(&["--config", config.path()]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    for needle in [
        "1 shard,",
        &format!("files under /a from {}, ", dir.display()),
        &format!("files under /b from {} with dotfiles", dir.display()),
    ] {
        assert!(stdout.contains(needle), "{stdout:?} lacks {needle:?}");
    }
}

#[test]
fn check_fails_on_a_static_directory_that_would_not_open() {
    let missing = format!("/files=/nonexistent/shardd-check-{}", std::process::id());
    let output = check(&["--bind", "127.0.0.1:0", "--static", &missing]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot serve /nonexistent/shardd-check-"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "no 'settings ok'");
}

#[test]
fn a_static_table_in_single_brackets_is_refused_naming_double_brackets() {
    let config = TempConfig::new(
        "single-static",
        "[static]\nprefix = \"/assets\"\ndir = \"/tmp\"\n",
    );
    assert_check_fails_naming(&["--config", config.path()], &["[[static]]", "line 1"]);
    // The right spelling passes.
    let config = TempConfig::new(
        "double-static",
        "bind = \"127.0.0.1:0\"\n[[static]]\nprefix = \"/assets\"\ndir = \"/tmp\"\n",
    );
    let output = check(&["--config", config.path()]);
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
