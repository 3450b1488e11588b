//! Fairness on one shard: a connection that always has work must not keep
//! the shard from serving everyone else.
//!
//! A shard runs every connection as a task on one thread. `TcpConn` reads
//! and writes with system calls that succeed whenever the socket has data
//! or room, so a client that pipelines nonstop (or streams a body) while
//! reading everything it is sent can keep its task from ever returning
//! `Pending`, and nothing else on the shard runs: not the accept loop, not
//! the other connections.
//!
//! The socket tests run on a one-shard server on 127.0.0.1, one at a time
//! (they measure latency on a shared 2-core box), with every wait bounded:
//! each ends by itself, within seconds, even against a shard that never
//! yields. The last test is deterministic: an in-memory stream that is
//! always ready, on the tests' in-memory `Listener`.
//!
//! Over real sockets, whether a greedy task ever finds its socket empty (and
//! so waits, letting others run) depends on the kernel: a connection's
//! receive window grows only for a reader that drains it fast. Against a
//! debug build, the server reads pipelined requests too slowly for that, and
//! each window-full is drained before the next arrives, so the pipelining
//! test catches the starvation only against an optimized build
//! (`cargo test --release --test fairness`). The upload (whose bytes the
//! server only copies) usually catches it in either build; the in-memory
//! stream always does.

mod support;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use shardd::{app_fn, App, Config, Request, Response, Server, ServerHandle, TechEmpower};
use support::{parse_response, serve_in_memory, AnyStream, Client, HttpResponse, MemoryClient};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// Longest a fresh request may take, connect to full response. Generous:
/// the box is a shared 2-core machine; a starved connection waits far longer.
const BOUND: Duration = Duration::from_secs(2);
/// Fresh connections per test, one at a time, one every `FRESH_INTERVAL`.
const FRESH_REQUESTS: usize = 40;
/// Fewer beside the upload, which the server keeps in memory while it lasts.
const FRESH_REQUESTS_BESIDE_UPLOAD: usize = 10;
const FRESH_INTERVAL: Duration = Duration::from_millis(50);
/// The fresh phase gives up after this long in all.
const FRESH_PHASE_LIMIT: Duration = Duration::from_secs(15);
/// Greedy clients in the pipelining test.
const GREEDY_CLIENTS: usize = 4;
/// How long the greedy clients run alone before the fresh connections start.
const GREEDY_WARMUP: Duration = Duration::from_secs(1);
/// Pipelined requests per write of a greedy client.
const GREEDY_BATCH: usize = 1024;
/// The request TechEmpower's plaintext test sends (larger than its response,
/// so a greedy client's reader easily keeps up and the server never waits to write).
const TFB_REQUEST: &[u8] = b"GET /plaintext HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7\r\nConnection: keep-alive\r\n\r\n";
const HELLO: &[u8] = b"Hello, World!";

/// The socket tests measure latency: run them one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn one_shard() -> Config {
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        shards: 1,
        pin: false,
        drain_timeout_ms: 2_000,
        ..Config::default()
    }
}

/// A server that is stopped on another thread and waited for only so long,
/// so that no test (not even one that panics) hangs on a shard that never yields.
struct Running(Option<ServerHandle>);

impl Running {
    fn handle(&self) -> &ServerHandle {
        self.0.as_ref().unwrap()
    }

    /// Shut down and wait for the drain, up to `STOP_LIMIT`.
    fn stop(mut self) -> Result<(), String> {
        let server = self.0.take().unwrap();
        let (done, stopped) = mpsc::channel();
        thread::spawn(move || {
            server.stop();
            let _ = done.send(());
        });
        stopped
            .recv_timeout(STOP_LIMIT)
            .map_err(|_| format!("the server did not stop within {STOP_LIMIT:?}"))
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if self.0.is_some() {
            let _ = Running(self.0.take()).stop();
        }
    }
}

const STOP_LIMIT: Duration = Duration::from_secs(10);

/// Join a thread, but not past `until`; a thread still running then is left behind.
fn join_until<T>(thread: JoinHandle<T>, until: Instant) -> Option<T> {
    while !thread.is_finished() {
        if Instant::now() >= until {
            return None;
        }
        thread::sleep(Duration::from_millis(5));
    }
    thread.join().ok()
}

/// A full response, and how long it took from `connect` to its last byte.
struct Answer {
    response: HttpResponse,
    elapsed: Duration,
}

/// `GET path` on a new connection, `Connection: close`: the full response
/// within `bound`, or why not.
fn get(addr: SocketAddr, path: &str, bound: Duration) -> Result<Answer, String> {
    let started = Instant::now();
    let mut client = Client::try_connect(addr, bound).map_err(|e| format!("connect: {e}"))?;
    client
        .try_send(format!(
            "GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
        ))
        .map_err(|e| format!("write: {e}"))?;
    let response = client
        .response_within(bound.saturating_sub(started.elapsed()))
        .map_err(|e| e.to_string())?;
    Ok(Answer {
        response,
        elapsed: started.elapsed(),
    })
}

/// What the fresh connections saw.
struct FreshPhase {
    planned: usize,
    latencies: Vec<Duration>,
    /// The first failure; the phase stops there.
    failure: Option<String>,
}

impl FreshPhase {
    fn summary(&self) -> String {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let median = sorted.get(sorted.len() / 2).copied().unwrap_or_default();
        let max = sorted.last().copied().unwrap_or_default();
        format!(
            "{} of {} fresh requests answered, median {median:?}, max {max:?}{}",
            sorted.len(),
            self.planned,
            match &self.failure {
                Some(failure) => format!("; then request {} failed: {failure}", sorted.len() + 1),
                None => String::new(),
            }
        )
    }

    fn assert_all_answered(&self, context: &str) {
        assert!(
            self.failure.is_none() && self.latencies.len() == self.planned,
            "fresh connections were starved ({context}): {}",
            self.summary()
        );
        let max = self.latencies.iter().max().copied().unwrap_or_default();
        assert!(
            max < BOUND,
            "a fresh request took {max:?} ({context}): {}",
            self.summary()
        );
    }
}

/// `count` new connections, one at a time, one every `FRESH_INTERVAL`:
/// each `GET /plaintext` must get a full `200 Hello, World!` within `BOUND`.
fn fresh_phase(addr: SocketAddr, count: usize) -> FreshPhase {
    let started = Instant::now();
    let mut phase = FreshPhase {
        planned: count,
        latencies: Vec::new(),
        failure: None,
    };
    for i in 0..count {
        let next = started + FRESH_INTERVAL * i as u32;
        thread::sleep(next.saturating_duration_since(Instant::now()));
        if started.elapsed() > FRESH_PHASE_LIMIT {
            phase.failure = Some(format!("the phase ran out of time ({FRESH_PHASE_LIMIT:?})"));
            break;
        }
        match get(addr, "/plaintext", BOUND) {
            Ok(answer) if answer.response.status == 200 && answer.response.body == HELLO => {
                phase.latencies.push(answer.elapsed)
            }
            Ok(answer) => {
                phase.failure = Some(format!("unexpected response {:?}", answer.response));
                break;
            }
            Err(error) => {
                phase.failure = Some(error);
                break;
            }
        }
    }
    phase
}

// ---------------------------------------------------------------------------
// Greedy clients
// ---------------------------------------------------------------------------

/// Counts `Hello, World!` responses in a byte stream, cheaply enough that a
/// reader in a debug build outruns the server: the first response is parsed
/// and must be a `200`; after that each `!` is one response (it appears
/// nowhere in the head of shardd's plaintext response, only in its body).
#[derive(Default)]
struct ResponseCounter {
    first: Vec<u8>,
    checked: bool,
    responses: u64,
}

impl ResponseCounter {
    fn feed(&mut self, data: &[u8]) -> Result<(), String> {
        if !self.checked {
            self.first.extend_from_slice(&data[..data.len().min(4096)]);
            let parsed = parse_response(&self.first, "GET", false).map_err(|e| e.to_string())?;
            if let Some((response, _)) = parsed {
                if response.status != 200 || response.body != HELLO {
                    return Err(format!("unexpected response {response:?}"));
                }
                self.checked = true;
            }
        }
        self.responses += count_bangs(data);
        Ok(())
    }
}

/// How many `!` bytes `data` holds, eight at a time.
fn count_bangs(data: &[u8]) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([b'!'; 8]);
    const LOW7: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    let mut words = data.chunks_exact(8);
    let mut count = 0u64;
    for word in &mut words {
        // Zero bytes of `x` are the `!`s; set the high bit of exactly those.
        let x = u64::from_ne_bytes(word.try_into().unwrap()) ^ ONES;
        let zero_high = !(((x & LOW7) + LOW7) | x | LOW7);
        count += u64::from(zero_high.count_ones());
    }
    count + words.remainder().iter().filter(|&&b| b == b'!').count() as u64
}

/// A client that pipelines requests nonstop from one thread and reads every
/// response from another, as fast as the server sends them.
struct Greedy {
    stream: TcpStream,
    stop: Arc<AtomicBool>,
    responses: Arc<AtomicU64>,
    writer: Option<JoinHandle<()>>,
    reader: Option<JoinHandle<Result<(), String>>>,
}

impl Drop for Greedy {
    /// Even on a panic, the client stops and its connection closes (so the
    /// server, if it is stuck serving it, can come free and stop).
    fn drop(&mut self) {
        self.stop.store(true, Relaxed);
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

impl Greedy {
    fn start(addr: SocketAddr) -> io::Result<Greedy> {
        let stream = TcpStream::connect_timeout(&addr, BOUND)?;
        stream.set_nodelay(true)?;
        // Short timeouts only so the threads notice `stop`; they retry.
        stream.set_read_timeout(Some(Duration::from_millis(200)))?;
        stream.set_write_timeout(Some(Duration::from_millis(200)))?;
        let stop = Arc::new(AtomicBool::new(false));
        let responses = Arc::new(AtomicU64::new(0));

        let mut out = stream.try_clone()?;
        let stopping = stop.clone();
        let writer = thread::spawn(move || {
            let batch = TFB_REQUEST.repeat(GREEDY_BATCH);
            let mut sent = 0;
            while !stopping.load(Relaxed) {
                match out.write(&batch[sent..]) {
                    Ok(0) => return,
                    Ok(n) => sent = (sent + n) % batch.len(),
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) => {}
                    Err(_) => return,
                }
            }
        });

        let mut input = stream.try_clone()?;
        let (stopping, count) = (stop.clone(), responses.clone());
        let reader = thread::spawn(move || {
            let mut counter = ResponseCounter::default();
            let mut buf = vec![0u8; 256 * 1024];
            loop {
                match input.read(&mut buf) {
                    Ok(0) => return Ok(()),
                    Ok(n) => {
                        counter.feed(&buf[..n])?;
                        count.store(counter.responses, Relaxed);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            io::ErrorKind::WouldBlock
                                | io::ErrorKind::TimedOut
                                | io::ErrorKind::Interrupted
                        ) =>
                    {
                        if stopping.load(Relaxed) {
                            return Ok(());
                        }
                    }
                    Err(_) if stopping.load(Relaxed) => return Ok(()),
                    Err(e) => return Err(format!("read: {e}")),
                }
            }
        });
        Ok(Greedy {
            stream,
            stop,
            responses,
            writer: Some(writer),
            reader: Some(reader),
        })
    }

    fn responses(&self) -> u64 {
        self.responses.load(Relaxed)
    }

    /// Stop both threads and close the connection (bounded by `until`).
    fn finish(mut self, until: Instant) -> Result<(), String> {
        self.stop.store(true, Relaxed);
        let _ = self.stream.shutdown(Shutdown::Both);
        if join_until(self.writer.take().unwrap(), until).is_none() {
            return Err("the writer thread did not stop".into());
        }
        match join_until(self.reader.take().unwrap(), until) {
            Some(result) => result,
            None => Err("the reader thread did not stop".into()),
        }
    }
}

/// Wait (bounded) until `ready` holds.
fn wait_for(limit: Duration, mut ready: impl FnMut() -> bool) -> bool {
    let until = Instant::now() + limit;
    while Instant::now() < until {
        if ready() {
            return true;
        }
        thread::sleep(Duration::from_millis(10));
    }
    ready()
}

// ---------------------------------------------------------------------------
// Tests over sockets
// ---------------------------------------------------------------------------

/// `GREEDY_CLIENTS` clients pipeline `GET /plaintext` nonstop and read every
/// response; meanwhile `FRESH_REQUESTS` new connections, one every 50 ms,
/// must each get a full `200` within `BOUND`, and every greedy client must
/// still have been answered during that window.
#[test]
fn greedy_pipelining_clients_do_not_starve_fresh_connections() {
    let _serial = serial();
    let server = Running(Some(
        Server::bind(one_shard())
            .unwrap()
            .serve(|_| TechEmpower)
            .unwrap(),
    ));
    let addr = server.handle().local_addr().unwrap();

    let greedy: Vec<Greedy> = (0..GREEDY_CLIENTS)
        .map(|_| Greedy::start(addr).unwrap())
        .collect();
    // Let them get going (a starved one may never start: the fresh phase
    // says so), long enough for the kernel to grow their receive windows.
    wait_for(Duration::from_secs(2), || {
        greedy.iter().all(|g| g.responses() > 100)
    });
    thread::sleep(GREEDY_WARMUP);
    let before: Vec<u64> = greedy.iter().map(Greedy::responses).collect();
    let window = Instant::now();
    let fresh = fresh_phase(addr, FRESH_REQUESTS);
    let window = window.elapsed();
    let after: Vec<u64> = greedy.iter().map(Greedy::responses).collect();

    let until = Instant::now() + Duration::from_secs(10);
    let clients: Vec<Result<(), String>> = greedy.into_iter().map(|g| g.finish(until)).collect();
    let stopped = server.stop();

    eprintln!(
        "greedy pipelining: {}; greedy responses during the {window:?} window: {:?}",
        fresh.summary(),
        before
            .iter()
            .zip(&after)
            .map(|(b, a)| a - b)
            .collect::<Vec<_>>()
    );
    fresh.assert_all_answered(&format!("{GREEDY_CLIENTS} greedy pipelining clients"));
    for (i, (b, a)) in before.iter().zip(&after).enumerate() {
        assert!(
            a > b,
            "greedy client {i} was not served during the fresh phase ({b} → {a} responses; all: {before:?} → {after:?})"
        );
    }
    for (i, client) in clients.into_iter().enumerate() {
        client.unwrap_or_else(|e| panic!("greedy client {i}: {e}"));
    }
    stopped.unwrap();
}

/// One client streams a chunked body as fast as it can (up to 1 GiB, the
/// limit raised to allow it); meanwhile new connections must each get a
/// full `200` within `BOUND`, while the upload is still streaming. The
/// upload then gets its `200` with the body length the server counted.
#[test]
fn huge_chunked_upload_does_not_starve_other_connections() {
    /// Body bytes per chunk, and chunks per write.
    const CHUNK: usize = 64 * 1024;
    const CHUNKS_PER_WRITE: usize = 4;
    /// The upload ends here at the latest (1024 times the default limit): the
    /// server holds the whole body in memory. It must outlast the fresh
    /// phase (it streams a few hundred MiB/s here).
    const MAX_UPLOAD: u64 = 1 << 30;

    let _serial = serial();
    let mut config = one_shard();
    config.limits.max_body_bytes = 2 * MAX_UPLOAD as usize;
    let server = Running(Some(
        Server::bind(config)
            .unwrap()
            .serve(|_| {
                app_fn(|req| match req.path() {
                    "/plaintext" => Response::text("Hello, World!"),
                    "/upload" => Response::text(req.body().len().to_string()),
                    _ => Response::not_found(),
                })
            })
            .unwrap(),
    ));
    let addr = server.handle().local_addr().unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let uploaded = Arc::new(AtomicU64::new(0));
    let capped = Arc::new(AtomicBool::new(false));
    let uploader = {
        let (stop, uploaded, capped) = (stop.clone(), uploaded.clone(), capped.clone());
        thread::spawn(move || -> Result<HttpResponse, String> {
            let mut client =
                Client::try_connect(addr, BOUND).map_err(|e| format!("connect: {e}"))?;
            client
                .try_send(b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n")
                .map_err(|e| format!("write: {e}"))?;
            let mut chunk = format!("{CHUNK:x}\r\n").into_bytes();
            chunk.extend(std::iter::repeat_n(b'u', CHUNK));
            chunk.extend_from_slice(b"\r\n");
            let batch = chunk.repeat(CHUNKS_PER_WRITE);
            let mut sent = 0u64;
            while !stop.load(Relaxed) && sent < MAX_UPLOAD {
                client
                    .try_send(&batch)
                    .map_err(|e| format!("write after {sent} body bytes: {e}"))?;
                sent += (CHUNK * CHUNKS_PER_WRITE) as u64;
                uploaded.store(sent, Relaxed);
            }
            capped.store(sent >= MAX_UPLOAD, Relaxed);
            client
                .try_send(b"0\r\n\r\n")
                .map_err(|e| format!("write: {e}"))?;
            // The answer: the body's length as the server counted it.
            client
                .response_within(Duration::from_secs(10))
                .map_err(|e| e.to_string())
        })
    };
    // The upload is under way before the fresh phase starts.
    wait_for(Duration::from_secs(2), || {
        uploaded.load(Relaxed) >= 16 << 20
    });
    let before = uploaded.load(Relaxed);
    let fresh = fresh_phase(addr, FRESH_REQUESTS_BESIDE_UPLOAD);
    let during = uploaded.load(Relaxed) - before;
    // Were the fresh requests answered while the upload streamed, or only after it ended?
    let streaming_throughout = !capped.load(Relaxed);
    stop.store(true, Relaxed);
    let upload = join_until(uploader, Instant::now() + Duration::from_secs(20));
    let stopped = server.stop();

    eprintln!(
        "chunked upload: {}; {} MiB uploaded during the phase",
        fresh.summary(),
        during >> 20
    );
    fresh.assert_all_answered("a chunked upload streaming nonstop");
    assert!(
        streaming_throughout,
        "the upload reached its {MAX_UPLOAD}-byte cap before the fresh phase ended: \
         the fresh requests may have been answered only once it stopped"
    );
    let upload = upload
        .expect("the upload did not finish within 20 s")
        .unwrap_or_else(|e| panic!("upload: {e}"));
    assert_eq!(upload.status, 200);
    assert_eq!(
        upload.body,
        uploaded.load(Relaxed).to_string().into_bytes(),
        "the server counted a different body length"
    );
    stopped.unwrap();
}

/// `/slow` answers after `SLOW`, awaiting a timer on the shard; anything else at once.
struct SlowApp;

const SLOW: Duration = Duration::from_secs(2);

impl App for SlowApp {
    async fn call(&self, request: &Request<'_>) -> Response {
        if request.path() == "/slow" {
            tokio::time::sleep(SLOW).await;
            Response::text("slow")
        } else {
            Response::text("Hello, World!")
        }
    }
}

/// A handler that awaits a 2 s timer on `/slow` does not hold up the shard:
/// `/plaintext` on other connections is answered (each within 1 s) while
/// `/slow` is in flight, and `/slow` then answers `200` after its sleep.
#[test]
fn slow_handler_does_not_block_other_connections() {
    const QUICK: usize = 5;
    const QUICK_BOUND: Duration = Duration::from_secs(1);

    let _serial = serial();
    let server = Running(Some(
        Server::bind(one_shard())
            .unwrap()
            .serve(|_| SlowApp)
            .unwrap(),
    ));
    let addr = server.handle().local_addr().unwrap();

    let slow = thread::spawn(move || {
        let answer = get(addr, "/slow", SLOW + Duration::from_secs(5));
        (answer, Instant::now())
    });
    // The slow request is in flight (its connection open on the shard).
    let open = wait_for(Duration::from_secs(2), || {
        server.handle().stats().shards[0].open >= 1
    });
    thread::sleep(Duration::from_millis(100));

    let mut quick = Vec::new();
    for _ in 0..QUICK {
        quick.push(get(addr, "/plaintext", QUICK_BOUND));
    }
    let quick_done = Instant::now();
    let slow = join_until(slow, Instant::now() + SLOW + Duration::from_secs(10));
    let stopped = server.stop();

    assert!(open, "the slow request's connection never opened");
    for (i, answer) in quick.iter().enumerate() {
        match answer {
            Ok(answer) => {
                assert_eq!(answer.response.status, 200, "quick request {i}");
                assert_eq!(answer.response.body, HELLO, "quick request {i}");
            }
            Err(e) => panic!("quick request {i} while /slow was in flight: {e}"),
        }
    }
    let (slow, slow_done) = slow.expect("the /slow client did not finish");
    let slow = slow.unwrap_or_else(|e| panic!("/slow: {e}"));
    assert_eq!(slow.response.status, 200);
    assert_eq!(slow.response.body, b"slow");
    assert!(
        slow.elapsed + Duration::from_millis(50) >= SLOW,
        "/slow answered in {:?}, before its handler's sleep",
        slow.elapsed
    );
    assert!(
        quick_done < slow_done,
        "the quick requests finished only after /slow did"
    );
    stopped.unwrap();
}

// ---------------------------------------------------------------------------
// Deterministic: an in-memory stream that is always ready
// ---------------------------------------------------------------------------

/// The greediest client there is: every read returns more pipelined
/// requests, every write is taken whole. It never returns `Pending` (and
/// touches no tokio resource), so only the connection loop itself can make
/// its task give way. Reads return end-of-file once `stop` is set.
struct AlwaysReady {
    stop: Arc<AtomicBool>,
    /// Where in the endless stream of `TFB_REQUEST`s the next read starts.
    offset: usize,
    /// Response bytes written to it.
    written: Arc<AtomicU64>,
}

impl AsyncRead for AlwaysReady {
    fn poll_read(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.stop.load(Relaxed) {
            return Poll::Ready(Ok(()));
        }
        while buf.remaining() > 0 {
            let rest = &TFB_REQUEST[this.offset..];
            let n = rest.len().min(buf.remaining());
            buf.put_slice(&rest[..n]);
            this.offset = (this.offset + n) % TFB_REQUEST.len();
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for AlwaysReady {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.written.fetch_add(data.len() as u64, Relaxed);
        Poll::Ready(Ok(data.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Sets the flag when dropped.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Relaxed);
    }
}

/// A connection whose reads always return more pipelined requests and whose
/// writes always succeed (it never returns `Pending`) shares the one shard
/// with an ordinary in-memory pipe: the pipe's request must be answered
/// within 10 s (without a fix it never is), and the greedy one served too.
#[test]
fn an_always_ready_connection_does_not_starve_its_shard() {
    const WAIT: Duration = Duration::from_secs(10);

    let _serial = serial();
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let (connect, server) = serve_in_memory::<Box<dyn AnyStream>, _>(
        Config {
            shards: 1,
            pin: false,
            drain_timeout_ms: 2_000,
            ..Config::default()
        },
        |_| TechEmpower,
    );
    let server = Running(Some(server));
    // Declared after the server, so dropped before it even on a panic: the
    // greedy stream ends before the server is asked to stop.
    let _release = SetOnDrop(stop.clone());
    // The greedy connection first, then the pipe.
    connect
        .send(Box::new(AlwaysReady {
            stop: stop.clone(),
            offset: 0,
            written: written.clone(),
        }))
        .unwrap();
    let (mut client, server_end) = MemoryClient::pipe();
    connect.send(Box::new(server_end)).unwrap();

    // The client blocks on a runtime of its own, off the shard's thread.
    client.send(b"GET /plaintext HTTP/1.1\r\nHost: memory\r\nConnection: close\r\n\r\n");
    let response = client.response_within(WAIT);
    let greedy_served = written.load(Relaxed);

    // Let the greedy stream end (its next read is end-of-file), then stop.
    stop.store(true, Relaxed);
    drop(connect);
    let stopped = server.stop();

    let response = response.unwrap_or_else(|e| {
        panic!(
            "the pipe got no response within {WAIT:?} ({e}): the always-ready connection \
             kept the shard to itself ({greedy_served} response bytes written to it)"
        )
    });
    assert_eq!(
        (
            response.version.as_str(),
            response.status,
            response.reason.as_str()
        ),
        ("HTTP/1.1", 200, "OK"),
        "{response:?}"
    );
    assert_eq!(response.body, HELLO, "{response:?}");
    client.expect_nothing_more_then_close(Duration::from_secs(2));
    assert!(
        greedy_served > 0,
        "the always-ready connection was never served"
    );
    stopped.unwrap();
}
