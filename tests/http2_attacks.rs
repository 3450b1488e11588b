//! The known HTTP/2 attacks, each run against a one-shard server by a raw
//! frame client ([`support::h2_raw`]; a real client refuses to misbehave):
//! rapid reset, CONTINUATION flood, MadeYouReset, HPACK bomb, SETTINGS and
//! PING floods, zero-window stall, tiny DATA frames, and one connection's
//! hundred streams against everyone else.
//!
//! Each attack must be cut off (GOAWAY `ENHANCE_YOUR_CALM`, or a closed
//! connection) within a bounded time, show in `/metrics`, cost the shard a
//! bounded amount of CPU, and leave fresh HTTP/1.1 and HTTP/2 clients of
//! the same shard served quickly while it runs. Each test prints what it
//! measured (`cargo test --test http2_attacks -- --nocapture`).

mod support;

use std::net::SocketAddr;
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use openmetrics_parser::prometheus::parse_prometheus;
use openmetrics_parser::PrometheusValue;
use shardd::Config;
use support::h2_raw::*;
use support::{config, poll_until, Client, TestServer};

/// Longest an attack may run before the server must have cut it off.
const CUT_OFF_WITHIN: Duration = Duration::from_secs(10);

/// Slowest a fresh client may be answered while an attack runs. Generous:
/// the machine running the tests is shared; a starved shard takes seconds.
const FRESH_CLIENT_WITHIN: Duration = Duration::from_millis(500);

/// A one-shard server with the admin port, 3 s send timeout.
fn attack_config() -> Config {
    let mut config = config(1);
    config.admin = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    config.limits.send_timeout = Duration::from_secs(3);
    config
}

static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Held by each test from before its server starts to after it stops: one
/// attack at a time, as the shard's CPU is read by its thread's name
/// (`shard-0`) and the attacks would slow each other's fresh clients.
fn alone() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What one attack run measured.
#[derive(Debug)]
struct Measured {
    /// How the attacker's connection ended.
    ended: Ended,
    /// From the attack's first frame to the cut-off.
    cut_off_after: Duration,
    /// Frames (or requests) the attacker got in before it.
    sent: usize,
    /// CPU time of the shard thread over the attack.
    shard_cpu: Duration,
    /// The slowest fresh client (HTTP/1.1 or HTTP/2) during it.
    slowest_fresh: Duration,
    fresh_clients: usize,
    /// Resident memory of the process, highest growth seen during it.
    memory_growth: u64,
}

/// Run `attack` (on its own thread, against `addr`) while fresh clients
/// probe the shard; `attack` returns how its connection ended and how many
/// frames it sent.
fn under_attack<F>(server: &TestServer, name: &str, attack: F) -> Measured
where
    F: FnOnce(SocketAddr) -> (Ended, usize) + Send + 'static,
{
    let addr = server.addr;
    http1_latency(addr); // the shard is up and its thread named
    let cpu_before = shard_cpu();
    let memory_before = resident_bytes();
    let started = Instant::now();
    let attacker = thread::spawn(move || {
        let outcome = attack(addr);
        (outcome, started.elapsed())
    });
    let mut slowest_fresh = Duration::ZERO;
    let mut fresh_clients = 0;
    let mut memory_peak = memory_before;
    loop {
        slowest_fresh = slowest_fresh
            .max(http1_latency(addr))
            .max(http2_latency(addr));
        fresh_clients += 2;
        memory_peak = memory_peak.max(resident_bytes());
        if attacker.is_finished() {
            break;
        }
        thread::sleep(Duration::from_millis(20));
    }
    let ((ended, sent), cut_off_after) = attacker.join().expect("the attack thread");
    let measured = Measured {
        ended,
        cut_off_after,
        sent,
        shard_cpu: shard_cpu() - cpu_before,
        slowest_fresh,
        fresh_clients,
        memory_growth: memory_peak.saturating_sub(memory_before),
    };
    eprintln!(
        "{name}: {:?} after {:?} and {} frames; shard CPU {:?}; \
         slowest of {} fresh clients {:?}; memory +{} KiB",
        measured.ended,
        measured.cut_off_after,
        measured.sent,
        measured.shard_cpu,
        measured.fresh_clients,
        measured.slowest_fresh,
        measured.memory_growth / 1024,
    );
    measured
}

/// Assert the attack was cut off as an abuse, quickly, cheaply, without
/// slowing anyone else, and counted in `/metrics`.
fn assert_cut_off(server: &TestServer, measured: &Measured, cpu_budget: Duration) {
    assert!(
        matches!(
            measured.ended,
            Ended::GoAway {
                code: ENHANCE_YOUR_CALM,
                ..
            } | Ended::Closed
        ),
        "the attack must be cut off: {measured:?}"
    );
    assert!(
        measured.cut_off_after < CUT_OFF_WITHIN,
        "cut off too late: {measured:?}"
    );
    assert!(
        measured.shard_cpu < cpu_budget,
        "the attack cost the shard too much CPU: {measured:?}"
    );
    assert_fresh_clients_fast(measured);
    assert!(
        measured.memory_growth < 64 << 20,
        "memory grew too much: {measured:?}"
    );
    poll_until(
        "/metrics to count the ENHANCE_YOUR_CALM GOAWAY",
        Duration::from_secs(5),
        || goaways(server, "enhance_your_calm"),
        |count| *count >= 1.0,
    );
}

fn assert_fresh_clients_fast(measured: &Measured) {
    assert!(
        measured.slowest_fresh < FRESH_CLIENT_WITHIN,
        "fresh clients were slow during the attack: {measured:?}"
    );
}

/// The time a fresh HTTP/1.1 connection takes to get `GET /` answered.
fn http1_latency(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let mut client = Client::connect(addr);
    client.send(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    let response = client
        .response()
        .expect("a fresh HTTP/1.1 client is served");
    assert_eq!(response.status, 200, "{response:?}");
    started.elapsed()
}

/// The time a fresh HTTP/2 connection takes to get `GET /` answered.
fn http2_latency(addr: SocketAddr) -> Duration {
    let started = Instant::now();
    let mut client = RawH2::connect(addr);
    client.send(&get(1, "/")).unwrap();
    let status = response_status(&mut client, 1, Duration::from_secs(5));
    assert_eq!(status, Some(200), "a fresh HTTP/2 client is served");
    started.elapsed()
}

/// The status of the response on `stream`, skipping other frames.
fn response_status(client: &mut RawH2, stream: u32, within: Duration) -> Option<u16> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = client.next_frame(left)?;
        if frame.kind == HEADERS && frame.stream == stream {
            return frame.status();
        }
    }
}

/// CPU time the shard thread (`shard-0`) has used, to the nanosecond, from
/// `/proc/self/task/*/schedstat` (`stat` counts 10 ms ticks, coarser than
/// most attacks last).
fn shard_cpu() -> Duration {
    let mut total = 0;
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() != "shard-0" {
            continue;
        }
        let schedstat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += schedstat
            .split(' ')
            .next()
            .and_then(|ns| ns.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Duration::from_nanos(total)
}

/// The process's resident memory, from `/proc/self/statm`.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap();
    let pages: u64 = statm.split(' ').nth(1).unwrap().parse().unwrap();
    // SAFETY: sysconf only reads a configuration value.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64
}

/// `shardd_http2_goaways_total{reason}` from `/metrics`, parsed as Prometheus does.
fn goaways(server: &TestServer, reason: &str) -> f64 {
    metric(server, "shardd_http2_goaways_total", ("reason", reason))
}

/// The sum of `family`'s samples with `label`.
fn metric(server: &TestServer, family: &str, label: (&str, &str)) -> f64 {
    let admin = server.handle.admin_addr().expect("the admin port is on");
    let response = Client::connect(admin).get("/metrics");
    assert_eq!(response.status, 200, "{response:?}");
    let text = response.body_str();
    let metrics = parse_prometheus(text).unwrap_or_else(|e| panic!("/metrics: {e:?}\n{text}"));
    let family = metrics
        .families
        .get(family)
        .unwrap_or_else(|| panic!("no family {family}"));
    family
        .iter_samples()
        .filter(|sample| {
            let labels = sample.get_labelset().expect("labels");
            labels.get_label_value(label.0) == Some(label.1)
        })
        .map(|sample| match &sample.value {
            PrometheusValue::Counter(c) => c.value.as_f64(),
            PrometheusValue::Gauge(n) | PrometheusValue::Unknown(n) => n.as_f64(),
            _ => 0.0,
        })
        .sum()
}

/// Write `batch` (built anew for each round by `round`) until the server
/// cuts the connection off, `CUT_OFF_WITHIN` passes, or `max_rounds`.
fn flood(
    client: &mut RawH2,
    max_rounds: usize,
    mut round: impl FnMut(usize) -> (Vec<u8>, usize),
) -> (Ended, usize) {
    let deadline = Instant::now() + CUT_OFF_WITHIN;
    let mut sent = 0;
    for index in 0..max_rounds {
        if Instant::now() > deadline {
            return (Ended::StillOpen, sent);
        }
        let (bytes, frames) = round(index);
        if client.send(&bytes).is_err() {
            // The server closed; a GOAWAY may still be in our buffer.
            return (client.until_cut_off(Duration::from_secs(1)), sent);
        }
        sent += frames;
        if let Some(ended) = client.drain_incoming() {
            return (ended, sent);
        }
    }
    // Out of rounds: whatever the server does next.
    (client.until_cut_off(Duration::from_secs(5)), sent)
}

// ---------------------------------------------------------------------------
// The attacks

/// CVE-2023-44487: open a stream, reset it at once, again and again: the
/// server starts work no response is ever sent for.
#[test]
fn rapid_reset_is_cut_off() {
    let _alone = alone();
    let server = TestServer::start(attack_config());
    let measured = under_attack(&server, "rapid reset", |addr| {
        let mut client = RawH2::connect(addr);
        flood(&mut client, 10_000, |round| {
            let mut bytes = Vec::new();
            for i in 0..50 {
                let stream = 1 + 2 * (round * 50 + i) as u32;
                bytes.extend(get(stream, "/sleep?ms=1000"));
                bytes.extend(rst_stream(stream, CANCEL));
            }
            (bytes, 100)
        })
    });
    assert_cut_off(&server, &measured, Duration::from_millis(500));
}

/// RUSTSEC-2024-0332: a header block that never ends, CONTINUATION after
/// CONTINUATION without END_HEADERS, for the server to buffer.
#[test]
fn continuation_flood_is_cut_off() {
    let _alone = alone();
    let server = TestServer::start(attack_config());
    let measured = under_attack(&server, "CONTINUATION flood", |addr| {
        let mut client = RawH2::connect(addr);
        let block = request_block("GET", "/", &[]);
        client.send(&frame(HEADERS, END_STREAM, 1, &block)).unwrap();
        flood(&mut client, 100_000, |round| {
            let mut field = Vec::new();
            literal(&mut field, &format!("x-{round}"), b"v");
            (frame(CONTINUATION, 0, 1, &field), 1)
        })
    });
    assert_cut_off(&server, &measured, Duration::from_millis(200));
}

/// CVE-2025-8671: valid requests, each followed by a frame that makes the
/// server reset the stream itself (a WINDOW_UPDATE that overflows the
/// stream's window), so the work goes on while the client's count of open
/// streams stays low. A WINDOW_UPDATE of 0, the other classic trigger,
/// `h2` treats as a connection error: the first one closes the connection.
#[test]
fn made_you_reset_is_cut_off() {
    let _alone = alone();
    let server = TestServer::start(attack_config());
    let measured = under_attack(&server, "MadeYouReset", |addr| {
        let mut client = RawH2::connect(addr);
        flood(&mut client, 10_000, |round| {
            let mut bytes = Vec::new();
            for i in 0..20 {
                let stream = 1 + 2 * (round * 20 + i) as u32;
                bytes.extend(get(stream, "/sleep?ms=1000"));
                bytes.extend(window_update(stream, 0x7fff_ffff));
            }
            (bytes, 40)
        })
    });
    assert_cut_off(&server, &measured, Duration::from_millis(500));

    let mut client = RawH2::connect(server.addr);
    client.send(&get(1, "/sleep?ms=1000")).unwrap();
    client.send(&window_update(1, 0)).unwrap();
    let ended = client.until_cut_off(Duration::from_secs(5));
    assert_eq!(
        ended,
        Ended::GoAway {
            last_stream: 1,
            code: PROTOCOL_ERROR
        }
    );
    poll_until(
        "/metrics to count the PROTOCOL_ERROR GOAWAY",
        Duration::from_secs(5),
        || goaways(&server, "protocol_error"),
        |count| *count == 1.0,
    );
}

/// A small header block that expands past any header-list limit: one large
/// literal added to the HPACK table, then referenced thousands of times
/// (one byte each).
#[test]
fn hpack_bomb_is_cut_off_and_a_small_one_gets_431() {
    let _alone = alone();
    let server = TestServer::start(attack_config());
    let measured = under_attack(&server, "HPACK bomb", |addr| {
        let mut client = RawH2::connect(addr);
        let mut block = request_block("GET", "/", &[]);
        literal_indexed(&mut block, "x-bomb", &[b'b'; 4000]);
        block.extend(std::iter::repeat_n(0xbe, 16_000)); // index 62: x-bomb
                                                         // ~20 KiB on the wire, 64 MB decoded.
        let mut bytes = Vec::new();
        for (index, piece) in block.chunks(16_384).enumerate() {
            let last = (index + 1) * 16_384 >= block.len();
            let end_headers = if last { END_HEADERS } else { 0 };
            bytes.extend(match index {
                0 => frame(HEADERS, END_STREAM | end_headers, 1, piece),
                _ => frame(CONTINUATION, end_headers, 1, piece),
            });
        }
        client.send(&bytes).unwrap();
        (client.until_cut_off(CUT_OFF_WITHIN), 1)
    });
    assert_cut_off(&server, &measured, Duration::from_millis(200));

    // Just over the limit (16 KiB): the request gets 431, the connection
    // goes on and serves the next one.
    let mut client = RawH2::connect(server.addr);
    let mut block = request_block("GET", "/", &[]);
    literal_indexed(&mut block, "x-big", &[b'b'; 2000]);
    block.extend(std::iter::repeat_n(0xbe, 10));
    client
        .send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block))
        .unwrap();
    assert_eq!(
        response_status(&mut client, 1, Duration::from_secs(5)),
        Some(431)
    );
    client.send(&get(3, "/")).unwrap();
    assert_eq!(
        response_status(&mut client, 3, Duration::from_secs(5)),
        Some(200)
    );
}

/// Thousands of SETTINGS frames, each owed an ACK, and the ACKs never read.
#[test]
fn settings_flood_is_cut_off() {
    let _alone = alone();
    let server = TestServer::start(attack_config());
    let measured = under_attack(&server, "SETTINGS flood", |addr| {
        let mut client = RawH2::connect(addr);
        let batch: Vec<u8> = (0..100)
            .flat_map(|_| settings(&[(SETTINGS_INITIAL_WINDOW_SIZE, 65_535)]))
            .collect();
        flood_unread(&mut client, &batch, 100)
    });
    assert_cut_off(&server, &measured, Duration::from_millis(500));
}

/// Thousands of PING frames, each owed a PONG, and the PONGs never read.
#[test]
fn ping_flood_is_cut_off() {
    let _alone = alone();
    let server = TestServer::start(attack_config());
    let measured = under_attack(&server, "PING flood", |addr| {
        let mut client = RawH2::connect(addr);
        let batch: Vec<u8> = (0..100u64)
            .flat_map(|i| frame(PING, 0, 0, &i.to_be_bytes()))
            .collect();
        flood_unread(&mut client, &batch, 100)
    });
    assert_cut_off(&server, &measured, Duration::from_millis(500));
}

/// Write `batch` (of `frames` frames) over and over without reading, until
/// a write fails (the server closed) or `CUT_OFF_WITHIN`; then read what
/// the server said last.
fn flood_unread(client: &mut RawH2, batch: &[u8], frames: usize) -> (Ended, usize) {
    let deadline = Instant::now() + CUT_OFF_WITHIN;
    let mut sent = 0;
    while Instant::now() < deadline {
        if client.send(batch).is_err() {
            break;
        }
        sent += frames;
    }
    // Read (only now) what came back: the answers, then a GOAWAY or the close.
    (client.until_cut_off(Duration::from_secs(2)), sent)
}

/// Streams opened for large responses with the window kept shut: the
/// server holds every response, waiting for a window that never opens.
#[test]
fn zero_window_stall_is_cut_off() {
    let _alone = alone();
    let server = TestServer::start(attack_config());
    let measured = under_attack(&server, "zero-window stall", |addr| {
        let mut client = RawH2::connect_with(addr, &[(SETTINGS_INITIAL_WINDOW_SIZE, 0)]);
        let mut bytes = Vec::new();
        for i in 0..100 {
            bytes.extend(get(1 + 2 * i, "/big?n=262144"));
        }
        client.send(&bytes).unwrap();
        // Read the heads (a client that reads, but never opens a window).
        (client.until_cut_off(CUT_OFF_WITHIN), 100)
    });
    assert_cut_off(&server, &measured, Duration::from_millis(500));
    assert!(
        measured.cut_off_after >= Duration::from_secs(3),
        "a stall is given send_timeout: {measured:?}"
    );
}

/// A request body sent as 1-byte DATA frames: a frame's worth of work for
/// every byte.
#[test]
fn tiny_data_frame_flood_is_cut_off() {
    let _alone = alone();
    let server = TestServer::start(attack_config());
    let measured = under_attack(&server, "tiny DATA frames", |addr| {
        let mut client = RawH2::connect(addr);
        let block = request_block("POST", "/echo", &[]);
        client
            .send(&frame(HEADERS, END_HEADERS, 1, &block))
            .unwrap();
        flood(&mut client, 100_000, |_| {
            let bytes: Vec<u8> = (0..100).flat_map(|_| frame(DATA, 0, 1, b"x")).collect();
            (bytes, 100)
        })
    });
    assert_cut_off(&server, &measured, Duration::from_millis(500));
}

/// The same with empty DATA frames: no bytes at all, only frames.
#[test]
fn empty_data_frame_flood_is_cut_off() {
    let _alone = alone();
    let server = TestServer::start(attack_config());
    let measured = under_attack(&server, "empty DATA frames", |addr| {
        let mut client = RawH2::connect(addr);
        let block = request_block("POST", "/echo", &[]);
        client
            .send(&frame(HEADERS, END_HEADERS, 1, &block))
            .unwrap();
        flood(&mut client, 100_000, |_| {
            let bytes: Vec<u8> = (0..100).flat_map(|_| frame(DATA, 0, 1, b"")).collect();
            (bytes, 100)
        })
    });
    assert_cut_off(&server, &measured, Duration::from_millis(500));
}

// ---------------------------------------------------------------------------
// Fairness and drain

/// One connection keeps 128 streams of 64 KiB responses in flight, over and
/// over, reading as fast as it can: the shard's other clients must still
/// be answered quickly (the connection's streams share its one task, which
/// yields to the shard's other connections).
#[test]
fn a_connection_with_a_hundred_busy_streams_does_not_starve_the_shard() {
    let _alone = alone();
    let server = TestServer::start(attack_config());
    let measured = under_attack(&server, "128 busy streams", |addr| {
        let open = 0x7fff_ffff;
        let mut client = RawH2::connect_with(addr, &[(SETTINGS_INITIAL_WINDOW_SIZE, open)]);
        client.send(&window_update(0, open - 65_535)).unwrap();
        let until = Instant::now() + Duration::from_secs(2);
        let (mut next_stream, mut answered) = (1u32, 0usize);
        while Instant::now() < until {
            let mut bytes = Vec::new();
            for _ in 0..128 {
                bytes.extend(get(next_stream, "/big?n=65536"));
                next_stream += 2;
            }
            client.send(&bytes).unwrap();
            let mut ended = 0;
            while ended < 128 {
                let frame = client
                    .next_frame(Duration::from_secs(5))
                    .expect("the busy connection is served");
                assert!(frame.goaway().is_none(), "an honest client is not cut off");
                if frame.kind == DATA && frame.flags & END_STREAM != 0 {
                    ended += 1;
                }
            }
            answered += 128;
        }
        (Ended::StillOpen, answered)
    });
    assert_fresh_clients_fast(&measured);
    assert!(
        measured.sent >= 256,
        "the busy connection was served too: {measured:?}"
    );
    assert_eq!(goaways(&server, "enhance_your_calm"), 0.0);
}

/// A drain at frame level: the first GOAWAY names the highest stream id
/// (2^31 - 1) and comes with a PING; a request sent before the client
/// answers it is still served; the final GOAWAY, after the answer, names
/// the last stream the server took; every stream at or below it is answered.
#[test]
fn a_drain_sends_two_goaways_and_serves_a_request_sent_between_them() {
    let _alone = alone();
    let server = TestServer::start(attack_config());
    server.controls.hold();
    let mut client = RawH2::connect(server.addr);
    client.send(&get(1, "/hold")).unwrap();
    thread::sleep(Duration::from_millis(100)); // stream 1 is in the app
    server.handle.drain();

    let within = Duration::from_secs(5);
    let first = next_of_kind(&mut client, GOAWAY, within);
    assert_eq!(first.goaway(), Some((0x7fff_ffff, NO_ERROR)), "{first:?}");
    // Sent before the client answers the ping: still to be served.
    client.send(&get(3, "/")).unwrap();
    let ping = next_of_kind(&mut client, PING, within);
    assert_eq!(ping.flags & ACK, 0, "{ping:?}");
    client.send(&frame(PING, ACK, 0, &ping.payload)).unwrap();

    let mut statuses = Vec::new();
    let mut last = None;
    server.controls.release();
    let deadline = Instant::now() + within;
    while Instant::now() < deadline && (last.is_none() || statuses.len() < 2) {
        let Some(frame) = client.next_frame(deadline - Instant::now()) else {
            break;
        };
        if frame.kind == HEADERS {
            statuses.push((frame.stream, frame.status()));
        }
        if let Some(goaway) = frame.goaway() {
            last = Some(goaway);
        }
    }
    assert_eq!(last, Some((3, NO_ERROR)), "the final GOAWAY names stream 3");
    statuses.sort();
    assert_eq!(statuses, [(1, Some(200)), (3, Some(200))]);
}

/// The next frame of `kind`, skipping others; panics after `within`.
fn next_of_kind(client: &mut RawH2, kind: u8, within: Duration) -> Frame {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let frame = client
            .next_frame(left)
            .unwrap_or_else(|| panic!("no frame of type {kind} within {within:?}"));
        if frame.kind == kind {
            return frame;
        }
    }
}
