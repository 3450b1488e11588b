//! `ServerHandle::serve_until` in-process: serving until a future
//! completes, then draining (a request in flight is answered, idle
//! connections close, new ones are refused) before it returns; returning
//! when the server stops on its own; a clear error from async code.
//! The same through signals, on a real process: tests/shutdown.rs.

mod support;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::mpsc;
use std::time::Duration;

use support::{config, wait_until, Client, TestServer};

/// Longest a step of these tests' drains may take.
const STOP_BOUND: Duration = Duration::from_secs(5);

/// One shard; idle connections close 100 ms into the drain, well before
/// its 5 s timeout would cut a request in flight short.
fn draining_config() -> shardd::Config {
    let mut config = config(1);
    config.drain_timeout_ms = 5_000;
    config.limits.drain_grace = Duration::from_millis(100);
    config
}

/// Whether a new connection to `addr` is refused.
fn refuses_connections(addr: std::net::SocketAddr) -> bool {
    matches!(
        TcpStream::connect_timeout(&addr, Duration::from_secs(1)),
        Err(error) if error.kind() == ErrorKind::ConnectionRefused
    )
}

#[test]
fn serves_until_the_future_completes_then_drains_answering_the_request_in_flight() {
    let TestServer {
        handle,
        addr,
        controls,
    } = TestServer::start(draining_config());
    let (stop, stop_requested) = tokio::sync::oneshot::channel::<()>();
    let (returned, serve_until_returned) = mpsc::channel();
    std::thread::spawn(move || {
        let result = handle.serve_until(async {
            let _ = stop_requested.await;
        });
        let _ = returned.send(result);
    });

    // Serving: a keep-alive connection, left idle, and a request held in the handler.
    let mut idle = Client::connect(addr);
    assert_eq!(idle.get("/").status, 200);
    controls.hold();
    let mut busy = Client::connect(addr);
    busy.send("GET /hold HTTP/1.1\r\nHost: t\r\n\r\n");
    wait_until("/hold in the handler", STOP_BOUND, || {
        controls.seen.lock().unwrap().iter().any(|t| t == "/hold")
    });
    assert!(
        serve_until_returned.try_recv().is_err(),
        "serve_until returned before its future completed"
    );

    stop.send(()).unwrap();
    idle.expect_nothing_more_then_close(STOP_BOUND);
    wait_until("new connections refused", STOP_BOUND, || {
        refuses_connections(addr)
    });
    let early = serve_until_returned.recv_timeout(Duration::from_millis(200));
    assert!(
        early.is_err(),
        "serve_until returned with a request still in flight: {early:?}"
    );

    controls.release();
    let answer = busy.response().expect("the request in flight is answered");
    assert_eq!(answer.status, 200, "{answer:?}");
    assert_eq!(answer.body_str(), "released");
    assert!(answer.closes(), "answered while draining: {answer:?}");
    busy.expect_nothing_more_then_close(STOP_BOUND);
    serve_until_returned
        .recv_timeout(STOP_BOUND)
        .expect("serve_until returns once the drain is done")
        .expect("serve_until succeeds");
}

#[test]
fn returns_when_the_server_is_drained_by_something_else() {
    let server = TestServer::start(config(1));
    let (trigger, addr) = (server.handle.drain_trigger(), server.addr);
    let (returned, serve_until_returned) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = returned.send(server.handle.serve_until(std::future::pending()));
    });
    assert_eq!(Client::connect(addr).get("/").status, 200);

    trigger.drain();
    serve_until_returned
        .recv_timeout(STOP_BOUND)
        .expect("serve_until returns when the server stops, its future still pending")
        .expect("serve_until succeeds");
    assert!(refuses_connections(addr));
}

#[test]
fn from_async_code_it_is_a_clear_error_not_a_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for signals in [false, true] {
        let server = TestServer::start(config(1));
        let addr = server.addr;
        let result = runtime.block_on(async {
            match signals {
                false => server.handle.serve_until(async {}),
                true => server.handle.wait_for_shutdown(),
            }
        });
        let error = result.expect_err("serve_until cannot block an async runtime's thread");
        assert!(matches!(error, shardd::Error::BlockingInAsync), "{error:?}");
        assert!(
            error.to_string().contains("not from async code"),
            "the message says what to do: {error}"
        );
        // The handle was consumed: the server stopped rather than leaking.
        assert!(refuses_connections(addr));
    }
}
