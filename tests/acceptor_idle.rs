//! The acceptor waits while no shard can take a connection, even with no
//! per-shard limit (`max_connections_per_shard = 0`): a full handoff
//! channel counts as no room. It holds the connection it could not place
//! and sleeps until a shard takes one from its channel, instead of
//! retrying in a loop, and meanwhile still accepts, to hold or refuse
//! (`overload = "reject"`) the clients that come.
//!
//! A file of its own: a test measures the CPU time of the thread named
//! `acceptor`, so no other test's server may run meanwhile (the tests here
//! take turns).

mod support;

use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use shardd::{app_fn, Config, OverloadPolicy, Response};
use support::{config, cpu_time, Client, TestServer};

const GET: &[u8] = b"GET / HTTP/1.1\r\nHost: t\r\n\r\n";

/// One test's server at a time in this process.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// A one-shard server with no per-shard limit and a channel of one, whose
/// shard is stalled by a slow app; its connections so far, and the switch
/// that frees the shard.
struct Stalled {
    // Closed before the server drops, so its drain has nothing to wait for.
    clients: Vec<Client>,
    server: TestServer,
    blocking: Arc<AtomicBool>,
}

impl Drop for Stalled {
    /// A failed test does not wait for the app either.
    fn drop(&mut self) {
        self.free();
    }
}

impl Stalled {
    /// The first connection stalls the shard (the app blocks its thread
    /// until [`Stalled::free`]); the second fills its channel; the third
    /// is held by the acceptor.
    fn start(mut config: Config) -> Stalled {
        config.admission.max_connections_per_shard = 0;
        config.channel_capacity = 1;
        config.defer_accept = false;
        let blocking = Arc::new(AtomicBool::new(true));
        let entered = Arc::new(AtomicBool::new(false));
        let server = TestServer::start_with(config, {
            let (blocking, entered) = (blocking.clone(), entered.clone());
            move |_| {
                let (blocking, entered) = (blocking.clone(), entered.clone());
                app_fn(move |_| {
                    entered.store(true, SeqCst);
                    let until = Instant::now() + Duration::from_secs(10);
                    while blocking.load(SeqCst) && Instant::now() < until {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Response::text("done")
                })
            }
        });
        let mut first = server.connect();
        first.send(GET);
        support::wait_until("the app to block its shard", Duration::from_secs(5), || {
            entered.load(SeqCst)
        });
        let mut clients = vec![first];
        for _ in 0..2 {
            let mut client = server.connect();
            client.send(GET);
            clients.push(client);
        }
        server.wait_stats(
            "the acceptor to hold one connection",
            Duration::from_secs(5),
            |s| s.acceptor.accepted == 3 && s.acceptor.pending == 1,
        );
        Stalled {
            clients,
            server,
            blocking,
        }
    }

    /// Let the app answer, and the shard take what waits.
    fn free(&self) {
        self.blocking.store(false, SeqCst);
    }

    /// Every connection is answered `done` once the shard is free.
    fn assert_all_served(&mut self) {
        self.free();
        for (i, client) in self.clients.iter_mut().enumerate() {
            let response = client.response().expect("an answer");
            assert_eq!(response.status, 200, "connection {i}: {response:?}");
            assert_eq!(response.body, b"done", "connection {i}");
        }
    }
}

#[test]
fn a_stalled_shard_with_a_full_channel_leaves_the_acceptor_asleep() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut stalled = Stalled::start(config(1));

    let before = cpu_time("acceptor");
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(1));
    let used = cpu_time("acceptor") - before;
    let elapsed = started.elapsed();
    // Retrying in a loop takes a whole core (or what the scheduler leaves
    // it); waiting takes a few wake-ups. A quarter of a core is far from both.
    assert!(
        used < elapsed / 4,
        "the acceptor used {used:?} of CPU in {elapsed:?} while it waited for room"
    );
    stalled.assert_all_served();
}

#[test]
fn with_the_reject_policy_a_client_past_max_pending_hears_503_at_once() {
    let _turn = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    let mut config = config(1);
    config.admission.overload = OverloadPolicy::Reject;
    config.admission.max_pending = 1;
    let mut stalled = Stalled::start(config);

    // One is held already: the fourth is accepted and refused, not left
    // in the kernel's backlog while the acceptor waits for room.
    let mut fourth = stalled.server.connect();
    fourth.send(GET);
    let response = fourth
        .response_within(Duration::from_secs(2))
        .expect("a 503 while the shard is stalled");
    assert_eq!(response.status, 503, "{response:?}");
    let stats = stalled.server.stats();
    assert_eq!(stats.acceptor.rejected, 1, "{stats:#?}");
    assert_eq!(stats.acceptor.pending, 1, "{stats:#?}");
    stalled.assert_all_served();
}
