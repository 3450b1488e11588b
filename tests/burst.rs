//! Many connections arriving at once: the acceptor takes them from the
//! backlog back to back, and every one is answered, spread round-robin; a
//! drain in the middle of a burst answers every connection it accepted.

mod support;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use support::{config, parse_response, TestServer};

const REQUEST: &[u8] = b"GET /shard HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n";

/// Connect `n` clients as fast as one thread can, each sending its request
/// at once, before any response is read.
fn burst(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    (0..n)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).expect("connect");
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            stream.write_all(REQUEST).expect("send the request");
            stream
        })
        .collect()
}

/// What a client got: the shard id of a `200` answer, or `None` for a close
/// (FIN or reset) before any byte; panics on a partial or other answer.
fn outcome(stream: &mut TcpStream) -> Option<usize> {
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => bytes.extend_from_slice(&chunk[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset && bytes.is_empty() => return None,
            Err(e) => panic!("read: {e}; got {:?}", String::from_utf8_lossy(&bytes)),
        }
    }
    if bytes.is_empty() {
        return None;
    }
    let (response, used) = parse_response(&bytes, "GET", true)
        .expect("a well-formed response")
        .expect("a whole response");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(used, bytes.len(), "one response, nothing after it");
    Some(response.body_str().parse().expect("a shard id"))
}

fn burst_is_answered_round_robin(shards: usize, per_shard: usize) {
    let server = TestServer::start(config(shards));
    let mut clients = burst(server.addr, shards * per_shard);
    let mut served = vec![0; shards];
    for client in &mut clients {
        let shard = outcome(client).expect("every connection of the burst is answered");
        served[shard] += 1;
    }
    assert_eq!(
        served,
        vec![per_shard; shards],
        "round-robin over the shards"
    );
    let stats = server.stats();
    assert_eq!(stats.acceptor.accepted, (shards * per_shard) as u64);
    assert_eq!(stats.acceptor.handed_off, (shards * per_shard) as u64);
    assert_eq!(stats.acceptor.rejected, 0);
}

#[test]
fn a_burst_on_two_shards_is_answered_round_robin() {
    burst_is_answered_round_robin(2, 150);
}

#[test]
fn a_burst_on_three_shards_is_answered_round_robin() {
    burst_is_answered_round_robin(3, 100);
}

#[test]
fn a_drain_during_a_burst_answers_every_connection_it_accepted() {
    let server = TestServer::start(config(2));
    let drain = server.handle.drain_trigger();
    let addr = server.addr;
    // The drain starts while the burst is still arriving.
    let clients = std::thread::spawn(move || burst_until_refused(addr, 400));
    // Drain once the acceptor has taken a connection (a fixed sleep raced a
    // busy machine, where the drain came before the first connect).
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while server.stats().acceptor.accepted == 0 && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
    drain.drain();
    let mut clients = clients.join().unwrap();
    let answered = clients.iter_mut().filter_map(outcome).count();
    let stats = server.stats();
    assert!(answered > 0, "the burst began before the drain");
    assert_eq!(
        answered as u64, stats.acceptor.accepted,
        "every connection accepted is answered; the others are closed before any byte"
    );
    assert_eq!(stats.acceptor.rejected, 0);
    server.handle.wait();
}

/// [`burst`] that stops at the first refused connection (the drain closed
/// the listening socket) and keeps the clients that connected.
fn burst_until_refused(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
    let mut clients = Vec::new();
    for _ in 0..n {
        let Ok(mut stream) = TcpStream::connect(addr) else {
            break;
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        // A connection reset before the request went out still counts: its
        // outcome must then be a close without an answer.
        let _ = stream.write_all(REQUEST);
        clients.push(stream);
    }
    clients
}
