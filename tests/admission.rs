//! Admission control over real sockets: per-shard limits, the pending queue,
//! `reject` (503 from the main thread) versus `backlog`, least-connections.

mod support;

use std::time::Duration;

use shardd::{DispatchPolicy, OverloadPolicy, StatsSnapshot};
use support::{shard_of, Client, Closed, TestServer};

const GET_HOLD: &[u8] = b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n";
const GET_SHARD: &[u8] = b"GET /shard HTTP/1.1\r\nHost: t\r\n\r\n";

/// The tests' limits, with connections accepted as soon as they connect
/// (no `defer_accept`): these tests hold connections open that have sent
/// nothing yet, and count them from the moment they are accepted.
fn bounded_config(shards: usize) -> shardd::Config {
    let mut config = support::bounded_config(shards);
    config.defer_accept = false;
    config
}

/// Connect and wait until the acceptor has taken the connection, so
/// connections reach the acceptor in the order the test opens them.
fn connect_in_order(server: &TestServer, accepted_before: u64) -> Client {
    let client = server.connect();
    server.wait_stats("the acceptor to accept", Duration::from_secs(5), |s| {
        s.acceptor.accepted > accepted_before
    });
    client
}

/// The counters must add up at a quiet moment.
fn assert_counters_add_up(stats: &StatsSnapshot) {
    let a = &stats.acceptor;
    assert_eq!(
        a.accepted,
        a.handed_off + a.rejected + a.pending as u64,
        "every accepted connection is handed off, rejected or pending: {stats:#?}"
    );
    let per_shard: u64 = stats.shards.iter().map(|s| s.handed_off).sum();
    assert_eq!(
        per_shard, a.handed_off,
        "per-shard handed_off sums to the acceptor's: {stats:#?}"
    );
    for (i, shard) in stats.shards.iter().enumerate() {
        assert_eq!(
            shard.handed_off,
            shard.accepted + shard.queued as u64,
            "shard {i}: handed off = picked up + still queued: {stats:#?}"
        );
    }
}

fn reject_config() -> shardd::Config {
    let mut config = bounded_config(2);
    config.admission.max_connections_per_shard = 3;
    config.admission.max_pending = 2;
    config.admission.overload = OverloadPolicy::Reject;
    config.admission.retry_after_secs = 7;
    config
}

#[test]
fn over_capacity_gets_a_readable_503_and_pending_is_served_oldest_first() {
    let server = TestServer::start(reject_config());
    server.controls.hold();

    // 2 shards x 3: six connections are handed off; odd ones have a request in flight.
    let mut served: Vec<(Client, bool)> = Vec::new();
    for i in 0..6u64 {
        let mut client = connect_in_order(&server, i);
        let in_flight = i % 2 == 0;
        if in_flight {
            client.send(GET_HOLD);
        }
        served.push((client, in_flight));
    }
    let stats = server.wait_stats("six connections open", Duration::from_secs(5), |s| {
        s.open_connections() == 6
    });
    assert_eq!(stats.acceptor.handed_off, 6, "{stats:#?}");
    assert!(stats.shards.iter().all(|s| s.open == 3), "{stats:#?}");

    // Two more wait in the pending queue (each with its request already sent).
    let mut pending = Vec::new();
    for i in 6..8u64 {
        let mut client = connect_in_order(&server, i);
        client.send(GET_SHARD);
        pending.push(client);
    }
    let stats = server.stats();
    assert_eq!(stats.acceptor.queued, 2, "{stats:#?}");
    assert_eq!(stats.acceptor.pending, 2, "{stats:#?}");
    assert_eq!(stats.acceptor.rejected, 0, "{stats:#?}");

    // The ninth (beyond 2*3+2) is answered 503 from the main thread, and the
    // client reads all of it even though it had sent a request.
    let mut rejected = connect_in_order(&server, 8);
    rejected.send(GET_SHARD);
    let response = rejected.response().expect("the 503 is readable");
    assert_eq!(response.status, 503, "{response:?}");
    assert_eq!(response.reason, "Service Unavailable");
    assert_eq!(response.header("retry-after"), Some("7"), "{response:?}");
    assert!(response.closes(), "{response:?}");
    assert!(!response.body.is_empty());
    assert_eq!(
        rejected.expect_nothing_more_then_close(Duration::from_secs(4)),
        Closed::Eof,
        "a graceful close, not a reset"
    );

    let stats = server.stats();
    assert_eq!(stats.acceptor.rejected, 1, "{stats:#?}");
    assert_eq!(stats.acceptor.queued, 2, "{stats:#?}");
    assert_eq!(stats.acceptor.accepted, 9, "{stats:#?}");
    assert_counters_add_up(&stats);

    // Pending connections are not answered while every shard is full.
    pending[0].expect_silent_and_open(Duration::from_millis(200));
    pending[1].expect_silent_and_open(Duration::from_millis(50));

    // Close one idle shard connection: the oldest pending one is served, the other still waits.
    assert!(!served[1].1);
    drop(served.remove(1));
    let first = pending[0].response().expect("oldest pending is served");
    assert_eq!(first.status, 200, "{first:?}");
    pending[1].expect_silent_and_open(Duration::from_millis(300));
    let stats = server.stats();
    assert_eq!(stats.acceptor.pending, 1, "{stats:#?}");

    // Close another: the second pending connection is served too.
    assert!(!served[2].1);
    drop(served.remove(2));
    let second = pending[1].response().expect("second pending is served");
    assert_eq!(second.status, 200, "{second:?}");

    // In-flight requests complete once released.
    server.controls.release();
    for (client, in_flight) in &mut served {
        if *in_flight {
            let response = client.response().expect("held request completes");
            assert_eq!(response.body, b"released");
        }
    }
    let stats = server.wait_stats("pending queue empty", Duration::from_secs(5), |s| {
        s.acceptor.pending == 0 && s.shards.iter().all(|s| s.queued == 0)
    });
    assert_eq!(stats.acceptor.handed_off, 8, "{stats:#?}");
    assert_eq!(stats.acceptor.rejected, 1, "{stats:#?}");
    assert_counters_add_up(&stats);
}

#[test]
fn backlog_policy_waits_instead_of_rejecting() {
    let mut config = bounded_config(1);
    config.admission.max_connections_per_shard = 1;
    config.admission.max_pending = 1;
    config.admission.overload = OverloadPolicy::Backlog;
    let server = TestServer::start(config);

    let mut first = connect_in_order(&server, 0);
    first.send(GET_SHARD);
    assert_eq!(first.response().unwrap().status, 200);
    let mut second = connect_in_order(&server, 1); // waits in the pending queue
    second.send(GET_SHARD);
    // The third is not accepted at all: it waits in the kernel's backlog.
    let mut third = server.connect();
    third.send(GET_SHARD);
    third.expect_silent_and_open(Duration::from_millis(300));
    second.expect_silent_and_open(Duration::from_millis(10));
    let stats = server.stats();
    assert_eq!(stats.acceptor.accepted, 2, "{stats:#?}");
    assert_eq!(stats.acceptor.rejected, 0, "{stats:#?}");
    assert_eq!(stats.acceptor.pending, 1, "{stats:#?}");

    drop(first);
    let response = second.response().expect("pending connection is served");
    assert_eq!(response.status, 200);
    third.expect_silent_and_open(Duration::from_millis(200));

    drop(second);
    let response = third.response().expect("backlogged connection is served");
    assert_eq!(response.status, 200);

    let stats = server.stats();
    assert_eq!(stats.acceptor.rejected, 0, "never rejected: {stats:#?}");
    assert_eq!(stats.acceptor.accepted, 3, "{stats:#?}");
    assert_eq!(stats.acceptor.handed_off, 3, "{stats:#?}");
    assert_counters_add_up(&stats);
}

#[test]
fn least_connections_sends_new_connections_to_the_emptier_shard() {
    let mut config = bounded_config(2);
    config.admission.dispatch = DispatchPolicy::LeastConnections;
    let server = TestServer::start(config);

    let mut clients: Vec<Client> = (0..4u64).map(|i| connect_in_order(&server, i)).collect();
    let shards: Vec<usize> = clients.iter_mut().map(shard_of).collect();
    assert_eq!(
        shards.iter().filter(|&&s| s == 0).count(),
        2,
        "balanced: {shards:?}"
    );

    // Close both connections of shard 0: it is now the emptier one.
    let mut keep = Vec::new();
    for (client, shard) in clients.into_iter().zip(&shards) {
        if *shard != 0 {
            keep.push(client);
        }
    }
    let stats = server.wait_stats("shard 0 empty", Duration::from_secs(5), |s| {
        s.shards[0].open == 0 && s.shards[1].open == 2
    });
    let before = stats.shards[0].handed_off;

    // Round-robin would alternate; least-connections sends both new ones to shard 0.
    let mut a = connect_in_order(&server, 4);
    let mut b = connect_in_order(&server, 5);
    assert_eq!(shard_of(&mut a), 0);
    assert_eq!(shard_of(&mut b), 0);
    let stats = server.stats();
    assert_eq!(stats.shards[0].handed_off, before + 2, "{stats:#?}");
    assert_eq!(stats.shards[1].handed_off, 2, "{stats:#?}");
    assert_counters_add_up(&stats);
    drop(keep);
}

#[test]
fn round_robin_counters_add_up_under_churn() {
    let mut config = bounded_config(2);
    config.admission.max_connections_per_shard = 2;
    config.admission.max_pending = 1;
    let server = TestServer::start(config);

    // Many short connections, a few at a time: none is rejected, all are counted.
    for round in 0..10u64 {
        let mut clients: Vec<Client> = (0..4)
            .map(|i| connect_in_order(&server, round * 4 + i))
            .collect();
        for client in &mut clients {
            client.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
            assert_eq!(client.response().unwrap().status, 200);
        }
        drop(clients);
        server.wait_stats("connections closed", Duration::from_secs(5), |s| {
            s.open_connections() == 0 && s.acceptor.pending == 0
        });
    }
    let stats = server.stats();
    assert_eq!(stats.acceptor.accepted, 40, "{stats:#?}");
    assert_eq!(stats.acceptor.rejected, 0, "{stats:#?}");
    assert_eq!(stats.acceptor.handed_off, 40, "{stats:#?}");
    assert_eq!(stats.shards[0].handed_off, 20, "round-robin: {stats:#?}");
    assert_eq!(stats.requests(), 40, "{stats:#?}");
    assert_counters_add_up(&stats);
}

#[test]
fn with_defer_accept_a_connection_is_accepted_when_its_first_bytes_arrive() {
    let server = TestServer::start(support::bounded_config(1));
    let started = std::time::Instant::now();
    let silent = server.connect();
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(
        server.stats().acceptor.accepted,
        0,
        "accepted before it sent anything"
    );
    // A client that speaks is accepted and answered at once.
    let mut speaking = server.connect();
    assert_eq!(speaking.get("/").status, 200);
    assert_eq!(server.stats().acceptor.accepted, 1);
    // The silent one is not lost: the kernel hands it over after about a second.
    server.wait_stats(
        "the silent connection accepted",
        Duration::from_secs(5),
        |s| s.acceptor.accepted == 2,
    );
    assert!(
        started.elapsed() >= Duration::from_secs(shardd::DEFER_ACCEPT_SECS as u64) / 2,
        "the silent connection was accepted early"
    );
    drop(silent);
}

#[test]
fn without_defer_accept_a_silent_connection_is_accepted_at_once() {
    let server = TestServer::start(bounded_config(1));
    let _silent = server.connect();
    server.wait_stats(
        "the silent connection accepted",
        Duration::from_millis(500),
        |s| s.acceptor.accepted == 1,
    );
}
