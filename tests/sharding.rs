//! Connections are spread round-robin over the shards; the ReusePort
//! listener serves too; the acceptor and the shards run as `SCHED_BATCH`.

mod support;

use std::time::{Duration, Instant};

use shardd::{ListenerMode, TechEmpower};
use support::{config, scheduling_policies, TestServer};

/// Open `shards * per_shard` connections, keep them all open, and check every
/// shard serves exactly `per_shard` of them.
fn round_robin_spreads_connections_evenly(shards: usize, per_shard: usize) {
    let server = TestServer::start_with(config(shards), |_| TechEmpower);
    let mut clients = Vec::new();
    for _ in 0..shards * per_shard {
        let mut client = server.connect();
        // Answered: the connection has reached a shard and is being served.
        assert_eq!(client.get("/plaintext").body, b"Hello, World!");
        clients.push(client);
    }
    let stats = server.wait_stats(
        &format!(
            "{} connections over {shards} shards: {per_shard} open and accepted per shard",
            shards * per_shard
        ),
        Duration::from_secs(2),
        |s| {
            s.shards
                .iter()
                .all(|s| s.open == per_shard && s.accepted == per_shard as u64)
        },
    );
    assert_eq!(stats.shards.len(), shards);
    assert_eq!(stats.open_connections(), shards * per_shard);
    assert_eq!(stats.requests(), (shards * per_shard) as u64);
    assert_eq!(stats.acceptor.accepted, (shards * per_shard) as u64);

    // Closing the clients brings every shard's open count back to zero.
    drop(clients);
    server.wait_stats(
        "no connection open after the clients left",
        Duration::from_secs(2),
        |s| s.open_connections() == 0,
    );
}

#[test]
fn two_shards_each_serve_exactly_k_connections() {
    round_robin_spreads_connections_evenly(2, 3);
}

#[test]
fn three_shards_each_serve_exactly_k_connections() {
    round_robin_spreads_connections_evenly(3, 2);
}

#[test]
fn reuseport_listener_serves_plaintext() {
    let mut config = config(2);
    config.listener = ListenerMode::Reuseport;
    let server = TestServer::start_with(config, |_| TechEmpower);
    assert_ne!(server.addr.port(), 0, "an ephemeral port was picked");
    for _ in 0..4 {
        let mut client = server.connect();
        let response = client.get("/plaintext");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"Hello, World!");
        assert_eq!(response.header("Content-Type"), Some("text/plain"));
    }
    assert_eq!(server.stats().requests(), 4);
}

#[test]
fn the_acceptor_and_the_shards_run_as_sched_batch() {
    let server = TestServer::start_with(config(2), |_| TechEmpower);
    server.connect().get("/plaintext");
    // Tests run side by side in this process; every server's threads of
    // these names must be SCHED_BATCH, so any found will do. A thread another
    // test has just spawned has its name a moment before its policy (the
    // policy is the first thing it sets), so look again for a while before
    // calling a thread that is not SCHED_BATCH a failure.
    for name in ["acceptor", "shard-0", "shard-1"] {
        let deadline = Instant::now() + Duration::from_secs(5);
        let policies = loop {
            let policies = scheduling_policies(None, name);
            let all_batch = policies.iter().all(|&p| p == libc::SCHED_BATCH);
            if (!policies.is_empty() && all_batch) || Instant::now() > deadline {
                break policies;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert!(!policies.is_empty(), "no thread named {name}");
        assert!(
            policies.iter().all(|&p| p == libc::SCHED_BATCH),
            "{name}: {policies:?}"
        );
    }
}
