//! The admin port: `/metrics`, `/health/live`, `/health/ready` and `/status`
//! on a socket and threads of their own.
//!
//! The admin port never runs on a shard, so it answers while every shard is
//! saturated, and it only reads: the stats the shards and the acceptor
//! already keep (atomics each written by one thread), the drain flag, and
//! `/proc/self`. A scrape costs the hot path nothing but the cache misses of
//! reading those counters.
//!
//! It is bound (or, in an upgrade, taken over from the old process) by
//! [`Server::serve`](crate::Server::serve) when
//! [`Config::admin`](crate::Config::admin) is set, and stopped after the
//! server has stopped, so during a drain `/health/ready` answers 503 while
//! the shards finish their requests. After an upgrade the old process stops
//! answering at once and leaves the socket to the new one.
//!
//! | file | job |
//! | --- | --- |
//! | `mod.rs` | the worker threads, stopping |
//! | `socket.rs` | binding, or taking over an inherited socket; passing it on in an upgrade |
//! | `http.rs` | one connection: read a request head, write one response, close |
//! | `routes.rs` | which path answers what |
//! | `scrape.rs` | one reading of everything reported: stats, readiness, process figures |
//! | `readiness.rs` | ready, draining or full: what `/health/ready` says |
//! | `metrics.rs` | the Prometheus text exposition |
//! | `process.rs` | resident memory, open fds, CPU seconds, start time from `/proc/self` |
//! | `status.rs` + `status.html` | the page for people and the JSON it polls |
//! | `rates.rs` | requests, connections and CPU per second, p99 latency, for the page |
//! | `quantile.rs` | a latency quantile from two readings of a duration histogram |

mod content_metrics;
mod http;
mod metrics;
mod process;
mod quantile;
mod rates;
mod readiness;
mod routes;
mod scrape;
mod socket;
mod status;

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::dependency::Dependency;
use crate::drain_signal::DrainSignal;
use crate::stats::ServerStats;

use rates::RateWindow;
pub(crate) use readiness::Capacity;
use scrape::Scrape;
pub(crate) use socket::{AdminPort, AdminSocket, InheritedAdmin, ADMIN_FD_NAME};

/// Threads answering admin requests. Requests are tiny and answered at
/// once; two threads keep one slow client from holding up a health check.
const WORKERS: usize = 2;

/// Pause after accept fails for lack of descriptors, so a worker does not spin.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

impl AdminPort {
    /// Start answering on threads of its own; they stop when the [`Admin`] is dropped.
    pub(crate) fn start(self, sources: Sources) -> io::Result<Admin> {
        let AdminPort {
            listener,
            local_addr,
            shared,
        } = self;
        let socket = AdminSocket {
            listener: Arc::new(listener),
            stopping: Arc::new(AtomicBool::new(false)),
            shared: Arc::new(AtomicBool::new(shared)),
        };
        let sources = Arc::new(sources);
        let mut admin = Admin {
            socket: socket.clone(),
            threads: Vec::with_capacity(WORKERS),
        };
        for index in 0..WORKERS {
            let (listener, stopping, sources) = (
                socket.listener.clone(),
                socket.stopping.clone(),
                sources.clone(),
            );
            // On failure `admin` drops here, which stops the workers already started.
            let thread = std::thread::Builder::new()
                .name(format!("admin-{index}"))
                .spawn(move || work(&listener, &stopping, &sources))?;
            admin.threads.push(thread);
        }
        let inherited = if shared { " (inherited socket)" } else { "" };
        log::info!(
            "admin on http://{local_addr}{inherited} (/metrics, /health/live, /health/ready, /status)"
        );
        Ok(admin)
    }
}

/// What the admin port reads; shared with the server.
pub(crate) struct Sources {
    pub stats: Arc<ServerStats>,
    pub drain: Arc<DrainSignal>,
    /// Room for new connections: what readiness compares the stats with.
    pub capacity: Capacity,
    /// When the server started (for `/status`'s uptime).
    pub started: Instant,
    /// Earlier readings, for `/status`'s rates.
    pub rates: Mutex<RateWindow>,
    /// Services the app needs (a database): down makes the server unready.
    pub dependencies: Vec<Arc<dyn Dependency>>,
}

impl Sources {
    /// What the admin port of a server with these stats, drain and capacity reads.
    pub(crate) fn new(
        stats: Arc<ServerStats>,
        drain: Arc<DrainSignal>,
        capacity: Capacity,
        dependencies: Vec<Arc<dyn Dependency>>,
    ) -> Sources {
        let sources = Sources {
            stats,
            drain,
            capacity,
            started: Instant::now(),
            rates: Mutex::default(),
            dependencies,
        };
        // The first reading: rates until the page's first poll are over the time since start.
        sources
            .rates()
            .rates(&Scrape::take(&sources), sources.started);
        sources
    }

    /// The rate readings, locked.
    pub(crate) fn rates(&self) -> std::sync::MutexGuard<'_, RateWindow> {
        self.rates.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A running admin port; dropping it stops its threads.
pub(crate) struct Admin {
    socket: AdminSocket,
    threads: Vec<JoinHandle<()>>,
}

impl Admin {
    /// Its socket, for the server's control (an upgrade).
    pub(crate) fn socket(&self) -> AdminSocket {
        self.socket.clone()
    }
}

impl Drop for Admin {
    fn drop(&mut self) {
        self.socket.stopping.store(true, SeqCst);
        // shutdown(2) on the listening socket makes every blocked accept
        // return at once (Linux: EINVAL). Not on a shared socket, which it
        // would stop for the other process too: there the accept timeout
        // wakes the workers. The descriptor is open: this handle holds it.
        if !self.socket.shared.load(SeqCst) {
            // SAFETY: shutdown(2) on a descriptor we own.
            unsafe { libc::shutdown(self.socket.listener.as_raw_fd(), libc::SHUT_RDWR) };
        }
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// One worker: accept and answer, one connection at a time, until stopped.
fn work(listener: &TcpListener, stopping: &AtomicBool, sources: &Sources) {
    while !stopping.load(SeqCst) {
        match listener.accept() {
            // Answered even if the stop came meanwhile: the client is connected and waits.
            Ok((stream, _)) => {
                // A bug in an answer costs that answer, not a worker.
                let answered = std::panic::catch_unwind(AssertUnwindSafe(|| {
                    http::serve(stream, |request| routes::answer(request, sources))
                }));
                if answered.is_err() {
                    log::error!("admin port: a request panicked");
                }
            }
            Err(error) => match error.kind() {
                // The accept timeout: look at the stop flag again.
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => {}
                io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => {}
                _ if stopping.load(SeqCst) => {}
                _ => {
                    log::warn!("admin port: accept failed: {error}");
                    std::thread::sleep(ACCEPT_BACKOFF);
                }
            },
        }
    }
}
