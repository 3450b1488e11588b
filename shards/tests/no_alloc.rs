//! The hot path allocates nothing per request.
//!
//! A counting `#[global_allocator]` counts the allocations made on the shard's
//! own thread while TechEmpower plaintext requests go through the real
//! connection loop: `run_shard` with an in-memory [`Listener`] that hands
//! out one `tokio::io::duplex` connection. After a warm-up (buffers, pool,
//! timers, the task itself), the measured window must allocate far less than
//! once per request (`< requests / 100`; the once-a-second `Date` refresh may
//! land in it).
//!
//! When the check fails (or with `NO_ALLOC_VERBOSE=1` and `--nocapture`),
//! the test prints the size and a backtrace of the first allocations of the
//! measured window, which say where they come from.

use std::alloc::{GlobalAlloc, Layout, System};
use std::backtrace::Backtrace;
use std::cell::Cell;
use std::io;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::Duration;

use shardd_shards::apps::techempower::TechEmpower;
use shardd_shards::runtime::{
    run_shard, AccessLogSink, ShardCommand, ShardConfig, ShardSetup, ShardStats,
};
use shardd_shards::{
    app_fn, Accepted, AccessLogFormat, App, Listener, PeerAddr, Response, ShardInfo,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

// ---------------------------------------------------------------------------
// Counting allocator
// ---------------------------------------------------------------------------

/// Counters per test (tests run in parallel threads of one process); slot 0 is unused.
const SLOTS: usize = 5;
static ALLOCS: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
static BYTES: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
/// Slots whose allocations get a backtrace (set during a measured window).
static TRACING: [AtomicU64; SLOTS] = [const { AtomicU64::new(0) }; SLOTS];
const MAX_TRACES: usize = 8;
static TRACES: Mutex<Vec<(usize, usize, String)>> = Mutex::new(Vec::new());

thread_local! {
    /// Which slot this thread's allocations count into (0: not counted).
    static SLOT: Cell<usize> = const { Cell::new(0) };
    /// Inside the hook's own bookkeeping (capturing a backtrace allocates).
    static IN_HOOK: Cell<bool> = const { Cell::new(false) };
}

struct Counting;

fn note(size: usize) {
    let slot = SLOT.try_with(Cell::get).unwrap_or(0);
    if slot == 0 || IN_HOOK.try_with(Cell::get).unwrap_or(true) {
        return;
    }
    ALLOCS[slot].fetch_add(1, Relaxed);
    BYTES[slot].fetch_add(size as u64, Relaxed);
    if TRACING[slot].load(Relaxed) == 0 {
        return;
    }
    IN_HOOK.with(|h| h.set(true));
    if let Ok(mut traces) = TRACES.try_lock() {
        if traces.iter().filter(|t| t.0 == slot).count() < MAX_TRACES {
            let trace = Backtrace::force_capture().to_string();
            traces.push((slot, size, trace));
        }
    }
    IN_HOOK.with(|h| h.set(false));
}

// SAFETY: forwards every call to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract for `alloc` is the system allocator's.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's contract for `alloc_zeroed` is the system allocator's.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        note(new_size);
        // SAFETY: `ptr` came from the system allocator (every allocation goes
        // through it) with `layout`, as the caller vouches.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: as for `realloc`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

// ---------------------------------------------------------------------------
// An in-memory listener: one duplex connection, then nothing until drained
// ---------------------------------------------------------------------------

struct OneConnection {
    conn: Option<DuplexStream>,
    stopped: bool,
}

impl Listener for OneConnection {
    type Conn = DuplexStream;

    async fn accept(&mut self) -> io::Result<Option<Accepted<DuplexStream>>> {
        if let Some(conn) = self.conn.take() {
            return Ok(Some(Accepted {
                conn,
                peer: PeerAddr::Unknown,
            }));
        }
        if self.stopped {
            return Ok(None);
        }
        std::future::pending().await
    }

    fn stop_accepting(&mut self) {
        self.stopped = true;
    }
}

// ---------------------------------------------------------------------------
// The client side
// ---------------------------------------------------------------------------

const REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\n\
Host: tfb-server:8080\r\n\
Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\n\
Connection: keep-alive\r\n\r\n";
const BODY: &[u8] = b"Hello, World!";

/// Count complete plaintext responses at the start of `buf`; checks each one.
fn complete_responses(buf: &[u8]) -> (usize, usize) {
    let (mut n, mut at) = (0, 0);
    while let Some(end) = find(&buf[at..], b"\r\n\r\n") {
        let head = &buf[at..at + end];
        let body_at = at + end + 4;
        if buf.len() < body_at + BODY.len() {
            break;
        }
        assert!(
            head.starts_with(b"HTTP/1.1 200 OK\r\n"),
            "unexpected response: {:?}",
            String::from_utf8_lossy(head)
        );
        assert!(
            find(head, b"\r\nContent-Length: 13").is_some(),
            "{:?}",
            String::from_utf8_lossy(head)
        );
        assert_eq!(&buf[body_at..body_at + BODY.len()], BODY);
        at = body_at + BODY.len();
        n += 1;
    }
    (n, at)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Send `batches` writes of `depth` requests each, reading all responses of a batch before the next.
async fn drive(client: &mut DuplexStream, batches: usize, depth: usize, buf: &mut Vec<u8>) {
    let batch = REQUEST.repeat(depth);
    let mut chunk = vec![0u8; 64 * 1024];
    for _ in 0..batches {
        client.write_all(&batch).await.expect("write requests");
        let mut seen = 0;
        while seen < depth {
            let n = client.read(&mut chunk).await.expect("read responses");
            assert!(n > 0, "server closed after {seen} of {depth} responses");
            buf.extend_from_slice(&chunk[..n]);
            let (complete, used) = complete_responses(buf);
            buf.drain(..used);
            seen += complete;
        }
        assert_eq!(seen, depth, "more responses than requests");
    }
}

struct Outcome {
    requests: u64,
    allocations: u64,
    bytes: u64,
    served: u64,
}

/// Serve `depth`-deep batches on a real shard running the app `make_app`
/// builds; count the shard's allocations over the measured batches.
fn measure<A, F>(
    slot: usize,
    warmup_batches: usize,
    batches: usize,
    depth: usize,
    make_app: F,
) -> Outcome
where
    A: App,
    F: FnOnce() -> A + Send + 'static,
{
    measure_with(
        ShardConfig::default(),
        slot,
        warmup_batches,
        batches,
        depth,
        make_app,
    )
}

/// [`measure`] on a shard configured by `config`.
fn measure_with<A, F>(
    config: ShardConfig,
    slot: usize,
    warmup_batches: usize,
    batches: usize,
    depth: usize,
    make_app: F,
) -> Outcome
where
    A: App,
    F: FnOnce() -> A + Send + 'static,
{
    let (client_end, server_end) = tokio::io::duplex(64 * 1024);
    let (commands_tx, commands) = flume::unbounded();
    let stats = Arc::new(ShardStats::default());
    let spec = ShardSetup {
        info: ShardInfo {
            shard_id: 0,
            shard_count: 1,
            core: None,
            generation: 0,
        },
        config,
        stats: stats.clone(),
        commands,
    };
    let shard = thread::Builder::new()
        .name(format!("no-alloc-shard-{slot}"))
        .spawn(move || {
            run_shard(
                spec,
                |_ctx| {
                    Ok(OneConnection {
                        conn: Some(server_end),
                        stopped: false,
                    })
                },
                move |_ctx| {
                    // From here on this thread's allocations are counted.
                    SLOT.with(|s| s.set(slot));
                    make_app()
                },
            )
        })
        .expect("spawn the shard thread");

    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("client runtime");
    let mut client = client_end;
    let mut buf = Vec::with_capacity(64 * 1024);
    runtime.block_on(drive(&mut client, warmup_batches, depth, &mut buf));
    // Let the shard finish the turn that wrote the last responses.
    thread::sleep(Duration::from_millis(50));
    let (allocs0, bytes0) = (ALLOCS[slot].load(Relaxed), BYTES[slot].load(Relaxed));
    TRACING[slot].store(1, Relaxed);
    runtime.block_on(drive(&mut client, batches, depth, &mut buf));
    thread::sleep(Duration::from_millis(50));
    TRACING[slot].store(0, Relaxed);
    let (allocs1, bytes1) = (ALLOCS[slot].load(Relaxed), BYTES[slot].load(Relaxed));

    commands_tx
        .send(ShardCommand::Drain)
        .expect("shard is running");
    drop(client);
    shard
        .join()
        .expect("shard thread panicked")
        .expect("run_shard failed");
    Outcome {
        requests: (batches * depth) as u64,
        allocations: allocs1 - allocs0,
        bytes: bytes1 - bytes0,
        served: stats.snapshot().requests,
    }
}

fn check(slot: usize, what: &str, outcome: &Outcome, total_requests: u64) {
    let traces: Vec<(usize, String)> = TRACES
        .lock()
        .unwrap()
        .iter()
        .filter(|t| t.0 == slot)
        .map(|t| (t.1, t.2.clone()))
        .collect();
    eprintln!(
        "{what}: {} requests measured, {} allocations ({} bytes) on the shard thread",
        outcome.requests, outcome.allocations, outcome.bytes
    );
    assert_eq!(
        outcome.served, total_requests,
        "the shard answered them all"
    );
    let allowed = outcome.requests / 100;
    let verbose = std::env::var_os("NO_ALLOC_VERBOSE").is_some();
    if outcome.allocations >= allowed || verbose {
        for (size, trace) in &traces {
            eprintln!("--- allocation of {size} bytes during the measured window:\n{trace}");
        }
    }
    if outcome.allocations >= allowed {
        panic!(
            "{what}: {} allocations for {} requests (allowed < {allowed}): the hot path allocates",
            outcome.allocations, outcome.requests
        );
    }
}

#[test]
fn pipelined_plaintext_does_not_allocate_per_request() {
    let (warmup, batches, depth) = (64, 256, 16);
    let outcome = measure(1, warmup, batches, depth, || TechEmpower);
    check(
        1,
        "pipelined x16",
        &outcome,
        ((warmup + batches) * depth) as u64,
    );
}

#[test]
fn keepalive_plaintext_does_not_allocate_per_request() {
    let (warmup, batches) = (500, 3000);
    let outcome = measure(2, warmup, batches, 1, || TechEmpower);
    check(2, "keep-alive", &outcome, (warmup + batches) as u64);
}

/// With the access log on, lines go into a reused buffer: the writer (a
/// thread here that empties each buffer and hands it back) keeps the shard
/// supplied, so logging allocates nothing per request either.
#[test]
fn pipelined_plaintext_with_the_access_log_does_not_allocate_per_request() {
    let (lines, to_write) = flume::bounded::<Vec<u8>>(4);
    let (give_back, spare) = flume::bounded(4);
    let writer = thread::spawn(move || {
        let mut written = 0;
        for mut buffer in to_write.iter() {
            written += buffer.iter().filter(|&&b| b == b'\n').count();
            buffer.clear();
            let _ = give_back.try_send(buffer);
        }
        written
    });
    let config = ShardConfig {
        access_log: Some(AccessLogSink {
            format: AccessLogFormat::Combined,
            lines,
            spare,
        }),
        ..ShardConfig::default()
    };
    let (warmup, batches, depth) = (64, 256, 16);
    let outcome = measure_with(config, 4, warmup, batches, depth, || TechEmpower);
    check(
        4,
        "pipelined x16, access log on",
        &outcome,
        ((warmup + batches) * depth) as u64,
    );
    let written = writer.join().unwrap();
    assert_eq!(
        written as u64, outcome.served,
        "every line reached the writer"
    );
}

/// The counter works: an app that allocates its body per request is caught.
#[test]
fn an_allocating_app_is_counted() {
    let (warmup, batches, depth) = (8, 64, 16);
    let outcome = measure(3, warmup, batches, depth, || {
        app_fn(|_request| Response::text(String::from("Hello, World!")))
    });
    assert_eq!(outcome.served, ((warmup + batches) * depth) as u64);
    assert!(
        outcome.allocations >= outcome.requests,
        "{} allocations for {} requests that each allocate a body",
        outcome.allocations,
        outcome.requests
    );
}
