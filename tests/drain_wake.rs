//! The drain wakes the acceptor at once, whatever its socket. A socket
//! shared with another process (passed on for an upgrade, or inherited
//! from systemd) is never shut down, so the acceptor cannot be woken that
//! way; it must still stop promptly, not when some accept timeout runs out.

use std::time::{Duration, Instant};

use shardd::{app_fn, Config, Response, Server, ServerHandle};

const STOPS: u32 = 5;

fn start() -> ServerHandle {
    let config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        shards: 1,
        pin: false,
        ..Config::default()
    };
    Server::bind(config)
        .unwrap()
        .serve(|_shard| app_fn(|_req| Response::text("hi\n")))
        .unwrap()
}

/// How long `stop` takes, summed over `STOPS` servers, each idle a moment
/// (its acceptor asleep) before it is stopped.
fn stop_times(share_the_socket: bool) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..STOPS {
        let handle = start();
        // As an upgrade does: the socket now has another holder.
        let passed = share_the_socket.then(|| handle.control().listen_fds_for_upgrade().unwrap());
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        handle.stop();
        total += started.elapsed();
        drop(passed);
    }
    total
}

#[test]
fn a_server_whose_socket_was_passed_on_stops_at_once() {
    let total = stop_times(true);
    // An idle server stops in a few milliseconds; a drain that waited for
    // an acceptor blocked in accept(2) took up to 100 ms per stop.
    assert!(
        total < Duration::from_millis(40) * STOPS,
        "{STOPS} stops of servers whose socket was passed on took {total:?}"
    );
}

#[test]
fn a_server_on_its_own_socket_stops_at_once() {
    let total = stop_times(false);
    assert!(
        total < Duration::from_millis(40) * STOPS,
        "{STOPS} stops took {total:?}"
    );
}
