//! The access log: lines in the combined and JSON formats with the right
//! fields, the peer shown, one line per HTTP/2 stream with `HTTP/2.0`, lines flushed within a second or two, `-` to
//! the binary's stdout, a stuck writer that drops and counts lines but
//! never holds a shard up; and the binary's JSON log lines.

mod support;

use std::ffi::CString;
use std::fs::OpenOptions;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::Value;
use shardd::{AccessLogFormat, AccessLogTarget, Config, Error, Server};
use support::process::{Process, BIN};
use support::{config, echo_app, poll_until, Client, H2Client, TestServer};

/// A directory in the temp dir, removed with what it holds on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new(name: &str) -> TempDir {
        let path =
            std::env::temp_dir().join(format!("shardd-access-log-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).unwrap();
        TempDir(path)
    }

    fn join(&self, file: &str) -> PathBuf {
        self.0.join(file)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// [`config`] with the access log to `path` in `format`.
fn logging_to(path: &Path, format: AccessLogFormat, shards: usize) -> Config {
    let mut config = config(shards);
    config.log.access_log = AccessLogTarget::File(path.to_owned());
    config.log.access_log_format = format;
    config
}

fn read_lines(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

#[test]
fn combined_lines_show_peer_request_status_bytes_referer_and_agent() {
    let dir = TempDir::new("combined");
    let path = dir.join("access.log");
    // Appended to, not truncated.
    std::fs::write(&path, "an earlier line\n").unwrap();
    let server = TestServer::start(logging_to(&path, AccessLogFormat::Combined, 1));
    let mut client = server.connect();
    let peer = client.stream().local_addr().unwrap();
    client.send(
        "GET /?x=1 HTTP/1.1\r\nHost: t\r\nReferer: http://example.com/page\r\n\
         User-Agent: test-agent/1.0\r\n\r\n",
    );
    assert_eq!(client.response().unwrap().status, 200);
    assert_eq!(client.get("/nope").status, 404);
    client.send("HEAD / HTTP/1.1\r\nHost: t\r\nUser-Agent: say \"hi\"\r\n\r\n");
    assert_eq!(client.response_to_head().unwrap().status, 200);
    server.handle.stop(); // the drain hands the last lines to the writer

    let lines = read_lines(&path);
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert_eq!(lines[0], "an earlier line");
    let host = format!("{} - - [", peer.ip());
    for line in &lines[1..] {
        assert!(line.starts_with(&host), "{line}");
        // [30/Nov/2026:17:04:20 +0000]
        let time = &line[host.len()..host.len() + 27];
        assert!(time.ends_with(" +0000]"), "{line}");
        assert_eq!(&time[2..3], "/", "{line}");
    }
    let after_time = |line: &str| line[host.len() + 28..].to_owned();
    assert_eq!(
        after_time(&lines[1]),
        r#""GET /?x=1 HTTP/1.1" 200 2 "http://example.com/page" "test-agent/1.0""#
    );
    assert_eq!(
        after_time(&lines[2]),
        r#""GET /nope HTTP/1.1" 404 10 "-" "-""#
    );
    // HEAD sends no body ("-"); a quote in a field is escaped.
    assert_eq!(
        after_time(&lines[3]),
        r#""HEAD / HTTP/1.1" 200 - "-" "say \"hi\"""#
    );
}

/// Every stream of an HTTP/2 connection is a request of its own: one line
/// each, with `HTTP/2.0`, its status and its body's bytes.
#[test]
fn each_http2_stream_gets_a_line_with_http2_status_and_bytes() {
    let dir = TempDir::new("http2");
    let path = dir.join("access.log");
    let mut config = logging_to(&path, AccessLogFormat::Combined, 1);
    config.limits.max_body_bytes = 64;
    let server = TestServer::start_with(config, |_| echo_app());
    let mut client = H2Client::connect(server.addr);
    let peer = client.local_addr.unwrap();
    let answers = client.get_many("/plaintext", 3);
    assert!(
        answers.iter().all(|answer| answer.status == 200),
        "{answers:?}"
    );
    assert_eq!(client.get("/nope").status, 404);
    let echoed = client.try_request("POST", "/echo", b"hello").unwrap();
    assert_eq!(echoed.body_str(), "POST /echo len=5 body=hello");
    // Refused before the app: still a line, with what the client sent.
    let refused = client.try_request("POST", "/echo", &[b'x'; 100]).unwrap();
    assert_eq!(refused.status, 413);
    assert_eq!(server.stats().shards[0].http2.connections, 1);
    server.handle.stop();

    let lines = read_lines(&path);
    assert_eq!(lines.len(), 6, "one line per stream: {lines:#?}");
    let host = format!("{} - - [", peer.ip());
    let after_time = |line: &str| {
        assert!(line.starts_with(&host), "{line}");
        line[host.len() + 28..].to_owned()
    };
    let plaintext = r#""GET /plaintext HTTP/2.0" 200 13 "-" "-""#;
    for line in &lines[..3] {
        assert_eq!(after_time(line), plaintext);
    }
    assert_eq!(
        after_time(&lines[3]),
        r#""GET /nope HTTP/2.0" 404 10 "-" "-""#
    );
    assert_eq!(
        after_time(&lines[4]),
        r#""POST /echo HTTP/2.0" 200 27 "-" "-""#
    );
}

#[test]
fn json_lines_have_every_field() {
    let dir = TempDir::new("json");
    let path = dir.join("access.json");
    let server = TestServer::start(logging_to(&path, AccessLogFormat::Json, 2));
    let mut client = server.connect();
    let peer = client.stream().local_addr().unwrap();
    let shard: u64 = client.get("/shard").body_str().parse().unwrap();
    client.send(
        "POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nUser-Agent: json-test\r\n\
         Referer: /from\r\n\r\nhello",
    );
    assert_eq!(client.response().unwrap().body, b"hello");
    assert_eq!(client.get("/sleep?ms=30").status, 200);
    // Refused by the codec (no Host): logged without method or target.
    let mut refused = server.connect();
    let refused_peer = refused.stream().local_addr().unwrap();
    refused.send("GET / HTTP/1.1\r\n\r\n");
    assert_eq!(refused.response().unwrap().status, 400);
    server.handle.stop();

    let lines: Vec<Value> = read_lines(&path)
        .iter()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
        .collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let find = |target: &str| {
        lines
            .iter()
            .find(|line| line["target"] == target)
            .unwrap_or_else(|| panic!("no line for {target}: {lines:#?}"))
    };
    let echo = find("/echo");
    assert_eq!(echo["method"], "POST");
    assert_eq!(echo["version"], "HTTP/1.1");
    assert_eq!(echo["status"], 200);
    assert_eq!(echo["bytes"], 5);
    assert_eq!(echo["shard"], shard);
    assert_eq!(echo["peer"], peer.to_string());
    assert_eq!(echo["user_agent"], "json-test");
    assert_eq!(echo["referer"], "/from");
    let time = echo["time"].as_str().unwrap();
    assert!(time.len() == 20 && time.ends_with('Z'), "{time}");
    assert!(echo["duration_us"].as_u64().unwrap() < 5_000_000);
    // The duration includes the app's time.
    let slept = find("/sleep?ms=30");
    assert!(slept["duration_us"].as_u64().unwrap() >= 30_000, "{slept}");
    assert_eq!(slept["referer"], Value::Null);
    let refusal = lines
        .iter()
        .find(|line| line["status"] == 400)
        .expect("the refusal is logged");
    assert_eq!(refusal["peer"], refused_peer.to_string());
    assert_eq!(refusal["method"], Value::Null);
    assert_eq!(refusal["duration_us"], Value::Null);
}

#[test]
fn lines_reach_the_file_within_a_second_or_two_while_serving() {
    let dir = TempDir::new("flush");
    let path = dir.join("access.log");
    let server = TestServer::start(logging_to(&path, AccessLogFormat::Common, 1));
    let mut client = server.connect();
    assert_eq!(client.get("/flushed").status, 404);
    let lines = poll_until(
        "the line in the file",
        Duration::from_secs(3),
        || read_lines(&path),
        |lines| !lines.is_empty(),
    );
    assert!(
        lines[0].ends_with(r#""GET /flushed HTTP/1.1" 404 10"#),
        "{lines:#?}"
    );
    // The writer counts its bytes just after the write that put the line
    // in the file, so the count may trail the file by a moment.
    poll_until(
        "the written bytes counted",
        Duration::from_secs(3),
        || server.stats().access_log.bytes_written,
        |&written| written > 0,
    );
}

#[test]
fn an_access_log_that_cannot_be_opened_stops_the_start_naming_it() {
    let mut config = config(1);
    config.log.access_log = AccessLogTarget::File("/nonexistent/dir/access.log".into());
    let error = Server::bind(config)
        .unwrap()
        .serve(|_| support::echo_app())
        .err()
        .expect("the start fails");
    assert!(matches!(error, Error::AccessLog { .. }), "{error:?}");
    assert!(
        error.to_string().contains("/nonexistent/dir/access.log"),
        "{error}"
    );
}

/// A writer stuck on a pipe nobody reads (a dead disk): the shard drops
/// lines and counts them, and goes on answering as fast as before.
#[test]
fn a_stuck_writer_drops_and_counts_lines_and_never_holds_up_a_shard() {
    let dir = TempDir::new("stuck");
    let fifo = dir.join("fifo");
    let c_path = CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo(3) on a NUL-terminated path we own.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo");
    // Opened for reading (so the writer's open does not wait) and never read:
    // once the pipe's 64 KiB are full, the writer's write blocks.
    let reader = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .unwrap();
    let mut config = logging_to(&fifo, AccessLogFormat::Combined, 1);
    config.log.access_log_buffers = 1;
    let server = TestServer::start(config);

    // About 3.5 MB of lines: far more than the pipe, the one queued buffer,
    // the one being written and the shard's own hold.
    let request = format!("GET /?pad={} HTTP/1.1\r\nHost: t\r\n\r\n", "x".repeat(300));
    let batch = request.repeat(100);
    let mut client = server.connect();
    let mut slowest = Duration::ZERO;
    for _ in 0..100 {
        let sent = Instant::now();
        client.send(&batch);
        for response in client.responses(100).expect("answered") {
            assert_eq!(response.status, 200);
        }
        slowest = slowest.max(sent.elapsed());
    }
    let stats = server.stats();
    assert_eq!(stats.requests(), 10_000);
    let dropped = stats.access_log_dropped();
    eprintln!("{dropped} of 10000 lines dropped; slowest batch of 100: {slowest:?}");
    assert!(
        dropped > 5_000,
        "most lines are dropped, not waited for: {dropped}"
    );
    assert!(
        slowest < Duration::from_secs(2),
        "a batch of 100 took {slowest:?}: the shard waited for the writer"
    );

    // The reader goes away: the blocked write fails, is counted, and the
    // server stops promptly.
    drop(reader);
    server.wait_stats("a failed write", Duration::from_secs(5), |stats| {
        stats.access_log.write_errors >= 1 && stats.access_log.lines_lost >= 1
    });
    let stopping = Instant::now();
    server.handle.stop();
    assert!(stopping.elapsed() < Duration::from_secs(5));
}

// ---------------------------------------------------------------------------
// The binary
// ---------------------------------------------------------------------------

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
}

/// `shardd` with `extra` flags, stdout piped; returns once the start-up
/// line is out (the process is killed on drop).
struct Running {
    process: Process,
    addr: SocketAddr,
}

impl Running {
    fn start(extra: &[&str]) -> Running {
        let addr = free_addr();
        let mut command = Command::new(BIN);
        command
            .args(["--bind", &addr.to_string(), "--shards", "2", "--no-pin"])
            .args(extra);
        let mut process = Process::spawn_with_stdout(command);
        process.wait_for_line("serving on", Duration::from_secs(5));
        Running { process, addr }
    }

    /// stderr up to and including the start-up line.
    fn startup(&self) -> &[String] {
        &self.process.seen
    }

    /// SIGTERM, wait for a clean exit; everything it wrote to stdout.
    fn stop(mut self) -> String {
        // The binary installs its signal handlers just after the start-up
        // line; a SIGTERM before that would kill it rather than drain it.
        std::thread::sleep(Duration::from_millis(300));
        self.process.signal(libc::SIGTERM);
        let mut stdout = String::new();
        let child = &mut self.process.child;
        child
            .stdout
            .take()
            .unwrap()
            .read_to_string(&mut stdout)
            .unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "exit status {status}");
        stdout
    }
}

#[test]
fn dash_writes_the_access_log_to_stdout() {
    let shardd = Running::start(&["--access-log", "-"]);
    let mut client = Client::connect(shardd.addr);
    let peer = client.stream().local_addr().unwrap();
    assert_eq!(client.get("/plaintext").body, b"Hello, World!");
    assert_eq!(client.get("/json").status, 200);
    drop(client);
    let stdout = shardd.stop();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "stdout holds the access log only: {stdout}");
    for (line, target, bytes) in [(lines[0], "/plaintext", 13), (lines[1], "/json", 27)] {
        assert!(line.starts_with(&format!("{} - - [", peer.ip())), "{line}");
        assert!(
            line.ends_with(&format!(r#""GET {target} HTTP/1.1" 200 {bytes} "-" "-""#)),
            "{line}"
        );
    }
}

#[test]
fn log_format_json_makes_every_log_line_json() {
    let shardd = Running::start(&["--log-format", "json"]);
    for line in shardd.startup() {
        let parsed: Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: not JSON: {line}"));
        assert!(parsed["timestamp"].is_string(), "{line}");
        assert!(parsed["level"].is_string(), "{line}");
    }
    let banner: Value = serde_json::from_str(shardd.startup().last().unwrap()).unwrap();
    assert_eq!(banner["level"], "INFO");
    assert_eq!(banner["target"], "shardd::server");
    let message = banner["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("serving on http://{}", shardd.addr)),
        "{message}"
    );
    // No access log without --access-log: stdout stays empty.
    let stdout = shardd.stop();
    assert_eq!(stdout, "");
}

#[test]
fn log_format_text_is_the_default() {
    let mut shardd = Running::start(&[]);
    let banner = shardd.startup().last().unwrap();
    assert!(serde_json::from_str::<Value>(banner).is_err(), "{banner}");
    assert!(banner.contains(" INFO "), "{banner}");
    for line in shardd.process.lines_so_far(Duration::ZERO) {
        assert!(!line.starts_with('{'), "{line}");
    }
}

#[test]
fn a_stop_with_an_access_log_takes_no_longer_than_one_without() {
    let dir = TempDir::new("prompt-stop");
    let path = dir.join("access.log");
    let mut config = logging_to(&path, AccessLogFormat::Combined, 2);
    // Long enough that a stop waiting it out cannot pass for a quick one.
    config.drain_timeout_ms = 10_000;
    let server = TestServer::start(config);
    server.connect().get("/one-line");
    let started = Instant::now();
    server.handle.stop();
    let took = started.elapsed();
    assert!(
        took < Duration::from_secs(5),
        "the stop took {took:?}: the access-log writer waited out the drain timeout"
    );
    assert_eq!(read_lines(&path).len(), 1, "the line was written");
}
