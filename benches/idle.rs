//! Memory per idle keep-alive connection (seed 002, c10k).
//!
//! Starts the release `shardd` binary, opens N keep-alive connections (each
//! sends one request and reads its response, then idles), and reports the
//! growth of the server's resident memory per connection.
//!
//! ```text
//! cargo bench --bench idle -- [--connections 10000] [--shards 2]
//! ```

mod support;

use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: bench\r\n\r\n";

fn main() {
    let mut connections = 10_000usize;
    let mut shards = 2usize;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--connections" => connections = parse(args.next(), "--connections"),
            "--shards" => shards = parse(args.next(), "--shards"),
            "--bench" => {}
            other => {
                eprintln!(
                    "idle: unknown argument {other}\nusage: idle [--connections N] [--shards N]"
                );
                std::process::exit(2);
            }
        }
    }
    support::raise_open_file_limit();
    let port = support::free_port().expect("a free port");
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut server = start_server(addr, shards);
    let pid = server.id();

    // Warm up: one connection, so start-up allocations are not counted.
    let mut warm = connect(addr);
    let baseline_after_warmup = rss_kib(pid);
    let started = Instant::now();
    let mut idle = Vec::with_capacity(connections);
    for _ in 0..connections {
        idle.push(connect(addr));
    }
    let opened_in = started.elapsed();
    std::thread::sleep(Duration::from_millis(500));
    let loaded = rss_kib(pid);
    // Prove they are all still open and served.
    let probe = idle.len() / 2;
    exchange(&mut idle[probe]);
    exchange(&mut warm);
    let growth = loaded.saturating_sub(baseline_after_warmup);
    println!(
        "idle keep-alive connections: {connections} on {shards} shards (opened in {opened_in:.2?})"
    );
    println!("server RSS: {baseline_after_warmup} KiB after warm-up, {loaded} KiB with all open");
    println!(
        "RSS growth per idle connection: {:.2} KiB (target <= 2 KiB)",
        growth as f64 / connections as f64
    );
    drop(idle);
    stop(&mut server);
}

fn parse(value: Option<String>, flag: &str) -> usize {
    value.and_then(|v| v.parse().ok()).unwrap_or_else(|| {
        eprintln!("idle: {flag} needs a number");
        std::process::exit(2)
    })
}

fn connect(addr: SocketAddr) -> TcpStream {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    exchange(&mut stream);
    stream
}

/// One request, one complete plaintext response.
fn exchange(stream: &mut TcpStream) {
    stream.write_all(REQUEST).expect("send");
    let mut response = Vec::new();
    let mut chunk = [0u8; 512];
    while !response.ends_with(b"Hello, World!") {
        let n = stream.read(&mut chunk).expect("read response");
        assert!(n > 0, "server closed an idle connection");
        response.extend_from_slice(&chunk[..n]);
    }
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .expect("VmRSS in /proc status")
}

fn start_server(addr: SocketAddr, shards: usize) -> Child {
    let child = Command::new(env!("CARGO_BIN_EXE_shardd"))
        .args(["--bind", &addr.to_string(), "--shards", &shards.to_string()])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .expect("start shardd");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "shardd did not start listening");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

fn stop(server: &mut Child) {
    // SAFETY: signalling the child we started.
    unsafe { libc::kill(server.id() as i32, libc::SIGTERM) };
    let _ = server.wait();
}
