//! Memory with many slow readers of a large file, alone in its own test
//! binary: the process's resident memory is the measure, and tests running
//! beside it in the same process would move it.

mod support;

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use shardd::files::{StaticSettings, WithStaticFiles};
use shardd::TechEmpower;
use support::{config, Client, TestServer};

/// Resident memory of this process, in KiB.
fn rss_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
        .expect("VmRSS in /proc/self/status")
}

/// 200 clients fetch a 100 MiB file and read it slowly (a few KiB each,
/// then nothing): the server's memory stays flat, since `sendfile` takes
/// the file from the page cache and only as fast as each socket drains.
#[test]
fn two_hundred_slow_readers_of_a_large_file_keep_memory_flat() {
    const READERS: usize = 200;
    let www = std::env::temp_dir().join(format!("shardd-static-memory-{}", std::process::id()));
    fs::create_dir_all(&www).unwrap();
    let big = www.join("big.bin");
    let file = fs::File::create(&big).unwrap();
    file.set_len(100 << 20).unwrap(); // sparse: 100 MiB of zeros, no disk
    drop(file);
    let settings = vec![StaticSettings::new("/files", &www)];
    let server = TestServer::start_with(config(1), move |_| {
        WithStaticFiles::open(&settings, TechEmpower).expect("the test's directory opens")
    });
    let before = rss_kib();
    let started = Instant::now();
    let readers: Vec<TcpStream> = (0..READERS)
        .map(|_| slow_reader(server.addr, "/files/big.bin"))
        .collect();
    // Each reader takes a little, now and then, for about two seconds.
    let mut taken = 0u64;
    let mut buf = vec![0u8; 16 * 1024];
    for _round in 0..4 {
        for mut reader in &readers {
            taken += reader.read(&mut buf).unwrap_or(0) as u64;
        }
        std::thread::sleep(Duration::from_millis(400));
    }
    let grown = rss_kib().saturating_sub(before);
    assert!(
        taken > READERS as u64 * 16 * 1024,
        "the readers got {taken} bytes"
    );
    // 200 whole copies would be 20 GiB; a 64 KiB chunk each would be 12.5 MiB.
    assert!(
        grown < 16 * 1024,
        "memory grew by {grown} KiB with {READERS} slow readers"
    );
    assert!(started.elapsed() < Duration::from_secs(30));
    // The server still answers others at once.
    let mut client = Client::connect(server.addr);
    assert_eq!(client.get("/plaintext").status, 200);
    drop(readers);
    let _ = fs::remove_dir_all(&www);
}

/// A client that asked for `path` and reads nothing yet (small receive buffer).
fn slow_reader(addr: SocketAddr, path: &str) -> TcpStream {
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(16 * 1024).unwrap();
    socket
        .connect_timeout(&addr.into(), Duration::from_secs(5))
        .unwrap();
    let mut stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream
        .write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
        .unwrap();
    stream
}
