//! Faults and shutdown: handler panics, a shard thread dying and being
//! restarted, and graceful shutdown draining what is in flight or queued.

mod support;

use std::time::{Duration, Instant};

use shardd::OverloadPolicy;
use support::{bounded_config, poll_until, shard_of, wait_until, Client, Closed, TestServer};

#[test]
fn handler_panic_is_500_and_close_while_the_shard_keeps_serving() {
    let server = TestServer::start(bounded_config(1));
    for boom in ["/boom", "/boom-later"] {
        // A slow request in flight on the same (only) shard.
        let mut slow = server.connect();
        slow.send(b"GET /sleep?ms=300 HTTP/1.1\r\nHost: t\r\n\r\n");
        server.wait_stats("the slow request to start", Duration::from_secs(5), |s| {
            s.shards[0].open == 1
        });

        let mut client = server.connect();
        // A second request pipelined behind the panicking one is not answered.
        client.send(
            format!("GET {boom} HTTP/1.1\r\nHost: t\r\n\r\nGET / HTTP/1.1\r\nHost: t\r\n\r\n")
                .as_bytes(),
        );
        let response = client.response().expect("a 500");
        assert_eq!(response.status, 500, "{boom}: {response:?}");
        assert!(response.closes(), "{boom}: {response:?}");
        client.expect_nothing_more_then_close(Duration::from_secs(4));

        let response = slow.response().expect("the concurrent request completes");
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"slept");
        server.assert_serves();
    }
    let stats = server.stats();
    assert_eq!(stats.shards[0].handler_panics, 2, "{stats:#?}");
    assert_eq!(stats.shards[0].restarts, 0, "{stats:#?}");
    assert!(stats.shards[0].alive);
}

#[test]
fn killed_shard_is_restarted_and_serves_again() {
    let server = TestServer::start(bounded_config(2));
    server.wait_stats("shards up", Duration::from_secs(5), |s| {
        s.shards.iter().all(|s| s.alive)
    });
    server.handle.kill_shard(0).unwrap();
    // A shard that dies young is restarted after a short pause: it is seen dead first.
    server.wait_stats("shard 0 dead", Duration::from_secs(5), |s| {
        !s.shards[0].alive
    });
    let stats = server.wait_stats("shard 0 restarted", Duration::from_secs(5), |s| {
        s.shards[0].alive && s.shards[0].restarts == 1
    });
    assert_eq!(stats.shards[1].restarts, 0, "{stats:#?}");
    assert!(stats.shards[1].alive);
    let accepted_before = stats.shards[0].accepted;

    // New connections are served by both shards again.
    let mut seen = [0usize; 2];
    for _ in 0..6 {
        let mut client = server.connect();
        seen[shard_of(&mut client)] += 1;
    }
    assert!(seen[0] >= 1 && seen[1] >= 1, "served by {seen:?}");
    let stats = server.stats();
    assert!(
        stats.shards[0].accepted > accepted_before,
        "shard 0 accepts again: {stats:#?}"
    );
    assert_eq!(stats.shards[0].restarts, 1);
    assert!(server.handle.kill_shard(7).is_err(), "no such shard");
}

#[test]
fn a_connection_held_while_every_shard_is_dead_is_served_once_one_restarts() {
    let server = TestServer::start(bounded_config(1));
    server.handle.kill_shard(0).unwrap();
    server.wait_stats("shard 0 dead", Duration::from_secs(5), |s| {
        !s.shards[0].alive
    });
    // No shard can take it: the acceptor holds it, asleep until a shard
    // has room again. The restart must wake it; nothing else will (no other
    // client comes).
    let mut client = server.connect();
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = client
        .response_within(Duration::from_secs(3))
        .expect("served by the restarted shard");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(server.stats().shards[0].restarts, 1);
}

#[test]
fn killed_shard_does_not_strand_its_connections_or_capacity() {
    let mut config = bounded_config(1);
    config.admission.max_connections_per_shard = 2;
    config.admission.max_pending = 0;
    let server = TestServer::start(config);

    // Two keep-alive connections fill the only shard.
    let mut victims: Vec<Client> = (0..2).map(|_| server.connect()).collect();
    for victim in &mut victims {
        assert_eq!(shard_of(victim), 0);
    }
    server.handle.kill_shard(0).unwrap();
    // Their connections end (closed or reset), they do not hang.
    for victim in &mut victims {
        victim.read_until_closed(Duration::from_secs(4));
    }
    server.wait_stats("shard 0 restarted", Duration::from_secs(5), |s| {
        s.shards[0].alive && s.shards[0].restarts == 1
    });
    // The dead connections no longer count against the shard's limit:
    // two new connections are served, none is rejected.
    let mut fresh: Vec<Client> = (0..2).map(|_| server.connect()).collect();
    for client in &mut fresh {
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
        let response = client.response().expect("served after the restart");
        assert_eq!(response.status, 200, "{response:?}");
    }
    let stats = server.stats();
    assert_eq!(stats.acceptor.rejected, 0, "{stats:#?}");
    assert_eq!(stats.shards[0].open, 2, "{stats:#?}");
}

#[test]
fn shutdown_lets_an_in_flight_request_finish_and_closes_idle_ones() {
    let mut config = bounded_config(1);
    config.drain_timeout_ms = 2_000;
    config.limits.drain_grace = Duration::from_millis(300);
    let TestServer {
        handle,
        addr,
        controls,
    } = TestServer::start(config);
    let mut idle = Client::connect(addr);
    idle.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(idle.response().unwrap().status, 200);

    let mut busy = Client::connect(addr);
    busy.send(b"GET /sleep?ms=400 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("the slow request to start", Duration::from_secs(5), || {
        controls.seen().iter().any(|p| p.starts_with("/sleep"))
    });

    let started = Instant::now();
    let stopper = std::thread::spawn(move || handle.stop());
    // The idle keep-alive connection is closed once its drain grace (300 ms)
    // has passed with nothing from its client.
    assert_eq!(
        idle.expect_nothing_more_then_close(Duration::from_secs(2)),
        Closed::Eof
    );
    let closed_after = started.elapsed();
    assert!(
        closed_after >= Duration::from_millis(250) && closed_after < Duration::from_millis(1500),
        "idle connection closed after {closed_after:?}"
    );
    // The in-flight request is answered, then the connection closes.
    let response = busy.response().expect("in-flight request finishes");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.body, b"slept");
    busy.expect_nothing_more_then_close(Duration::from_secs(2));
    stopper.join().unwrap();
    assert!(
        started.elapsed() < Duration::from_millis(2_000),
        "stop returned within the drain deadline: {:?}",
        started.elapsed()
    );
    // Nothing listens any more.
    assert!(std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_err());
}

#[test]
fn response_in_flight_at_shutdown_says_connection_close() {
    let TestServer {
        handle,
        addr,
        controls,
    } = TestServer::start(bounded_config(1));
    let mut busy = Client::connect(addr);
    busy.send(b"GET /sleep?ms=400 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("the slow request to start", Duration::from_secs(5), || {
        !controls.seen().is_empty()
    });
    let stopper = std::thread::spawn(move || handle.stop());
    let response = busy.response().expect("in-flight request finishes");
    assert_eq!(response.status, 200, "{response:?}");
    // The server closes right after this response, so it must say so: a
    // client that reuses the connection would otherwise race the close.
    assert!(response.closes(), "{response:?}");
    stopper.join().unwrap();
}

#[test]
fn shutdown_answers_every_pending_connection() {
    let mut config = bounded_config(1);
    config.drain_timeout_ms = 1_000;
    config.admission.max_connections_per_shard = 1;
    config.admission.max_pending = 3;
    config.admission.overload = OverloadPolicy::Reject;
    let TestServer {
        handle,
        addr,
        controls,
    } = TestServer::start(config);
    controls.hold();
    let mut busy = Client::connect(addr);
    busy.send(b"GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("the held request", Duration::from_secs(5), || {
        controls.seen() == ["/hold"]
    });
    let mut pending: Vec<Client> = (0..3).map(|_| Client::connect(addr)).collect();
    for client in &mut pending {
        client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    }
    poll_until(
        "three pending connections",
        Duration::from_secs(5),
        || handle.stats(),
        |s| s.acceptor.pending >= 3,
    );

    let started = Instant::now();
    let stopper = std::thread::spawn(move || {
        handle.stop();
        Instant::now()
    });
    std::thread::sleep(Duration::from_millis(100));
    controls.release();

    // None is silently dropped: each reads a complete response (503, or served).
    for (i, client) in pending.iter_mut().enumerate() {
        let response = client
            .response()
            .unwrap_or_else(|e| panic!("pending connection {i} got no response: {e}"));
        assert!(
            [503, 200].contains(&response.status),
            "pending {i}: {response:?}"
        );
        if response.status == 503 {
            assert!(response.header("retry-after").is_some());
            assert!(response.closes());
        }
    }
    drop(pending);
    let response = busy.response().expect("the held request completes");
    assert_eq!(response.status, 200);
    drop(busy);
    let stopped = stopper.join().unwrap();
    assert!(
        stopped - started < Duration::from_millis(1_000 + 700),
        "stop returned within the drain deadline: {:?}",
        stopped - started
    );
}

#[test]
fn shutdown_cuts_requests_that_outlive_the_drain_deadline() {
    let mut config = bounded_config(1);
    config.drain_timeout_ms = 400;
    let TestServer {
        handle,
        addr,
        controls,
    } = TestServer::start(config);
    let mut stuck = Client::connect(addr);
    stuck.send(b"GET /sleep?ms=8000 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("the long request", Duration::from_secs(5), || {
        !controls.seen().is_empty()
    });
    let started = Instant::now();
    handle.stop();
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_millis(400 + 700),
        "stop took {took:?} with a 400 ms drain deadline"
    );
    // The cut connection ends, it does not hang.
    stuck.read_until_closed(Duration::from_secs(2));
}

#[test]
fn shutdown_is_not_held_up_by_a_rejected_client_that_stays_open() {
    let mut config = bounded_config(1);
    config.drain_timeout_ms = 300;
    config.admission.max_connections_per_shard = 1;
    config.admission.max_pending = 0;
    let TestServer { handle, addr, .. } = TestServer::start(config);
    let mut first = Client::connect(addr);
    first.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(first.response().unwrap().status, 200);
    // Rejected with a 503, read, but never closed by the client.
    let mut rejected = Client::connect(addr);
    let response = rejected.response().unwrap();
    assert_eq!(response.status, 503);
    drop(first);
    let started = Instant::now();
    handle.stop();
    let took = started.elapsed();
    assert!(
        took < Duration::from_millis(300 + 700),
        "stop took {took:?} with a 300 ms drain deadline"
    );
    drop(rejected);
}

#[test]
fn connections_still_queued_for_a_busy_shard_at_shutdown_are_served() {
    let mut config = bounded_config(1);
    config.drain_timeout_ms = 3_000;
    // A handler that blocks its shard's thread, so the next connection
    // waits in the shard's channel when the drain begins.
    let TestServer { handle, addr, .. } = TestServer::start_with(config, |_| {
        shardd::app_fn(|request| {
            if request.path() == "/block" {
                std::thread::sleep(Duration::from_millis(400));
            }
            shardd::Response::text("ok")
        })
    });
    let mut blocker = Client::connect(addr);
    blocker.send(b"GET /block HTTP/1.1\r\nHost: t\r\n\r\n");
    std::thread::sleep(Duration::from_millis(100));
    let mut queued = Client::connect(addr);
    queued.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until(
        "the second connection to be handed off",
        Duration::from_secs(2),
        || handle.stats().acceptor.handed_off == 2,
    );
    let stopper = std::thread::spawn(move || handle.stop());
    assert_eq!(
        blocker.response().expect("blocked request finishes").status,
        200
    );
    let response = queued
        .response()
        .expect("the queued connection is served, not dropped");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("connection"), Some("close"));
    stopper.join().unwrap();
}

#[test]
fn shutdown_closes_a_connection_that_never_sent_anything_after_the_grace() {
    let mut config = bounded_config(1);
    config.drain_timeout_ms = 5_000;
    config.limits.header_timeout = std::time::Duration::from_millis(10_000);
    config.limits.drain_grace = Duration::from_millis(300);
    let TestServer { handle, addr, .. } = TestServer::start(config);
    let mut silent = Client::connect(addr);
    wait_until(
        "the connection to reach its shard",
        Duration::from_secs(2),
        || handle.stats().open_connections() == 1,
    );
    let started = Instant::now();
    handle.stop();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "stop waited {:?} for a connection that sent nothing",
        started.elapsed()
    );
    // No unsolicited response.
    silent.expect_nothing_more_then_close(Duration::from_secs(1));
}

#[test]
fn reuseport_shard_stops_taking_connections_when_the_drain_starts() {
    let mut config = bounded_config(1);
    config.listener = shardd::ListenerMode::Reuseport;
    config.drain_timeout_ms = 3_000;
    let TestServer {
        handle,
        addr,
        controls,
    } = TestServer::start(config);
    let mut busy = Client::connect(addr);
    busy.send(b"GET /sleep?ms=600 HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("the slow request to start", Duration::from_secs(2), || {
        controls.seen().iter().any(|p| p.starts_with("/sleep"))
    });
    let stopper = std::thread::spawn(move || handle.stop());
    std::thread::sleep(Duration::from_millis(150));
    // The in-flight request keeps the shard running, but its socket is closed:
    // a newcomer is refused at once instead of hanging until a reset.
    let newcomer = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(1));
    assert!(
        newcomer.is_err(),
        "a connection was accepted by a draining shard"
    );
    assert_eq!(
        busy.response().expect("in-flight request finishes").status,
        200
    );
    stopper.join().unwrap();
}

#[test]
fn a_request_sent_on_an_idle_connection_as_the_drain_starts_is_answered() {
    let mut config = bounded_config(1);
    config.drain_timeout_ms = 5_000;
    config.limits.drain_grace = Duration::from_millis(2_000);
    let TestServer { handle, addr, .. } = TestServer::start(config);
    let mut client = Client::connect(addr);
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(client.response().unwrap().status, 200);
    handle.drain();
    // The keep-alive race: the client's next request crosses the drain.
    std::thread::sleep(Duration::from_millis(200));
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n");
    let response = client.response().expect("answered, not lost");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(response.header("connection"), Some("close"));
    assert_eq!(
        client.expect_nothing_more_then_close(Duration::from_secs(2)),
        Closed::Eof
    );
    handle.stop();
}
