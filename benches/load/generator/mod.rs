//! The load generator: plain threads, each driving its share of the
//! connections through its own epoll loop (`event_loop`), told by a shared
//! phase when to count and when to stop; what they saw, added up.

mod event_loop;
mod response;

use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::histogram::Histogram;
use crate::workload::Workload;

/// The phases the threads go through: warm-up (counted apart), the
/// measured window, stop (close everything and return).
const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

#[derive(Clone, Copy)]
enum ErrorKind {
    /// connect(2) failed or was refused.
    Connect = 0,
    /// Reset, or closed by the server with requests outstanding.
    Io = 1,
    /// A response that is not `200` with the expected body.
    Status = 2,
    /// Not a parseable HTTP/1.1 response, or bytes nobody asked for.
    Parse = 3,
    /// No response within `--timeout`.
    Timeout = 4,
}

/// The names of the error kinds, indexed by `ErrorKind`.
pub const ERROR_KINDS: [&str; 5] = ["connect", "io", "status", "parse", "timeout"];

/// What the threads send, and where.
pub struct GenConfig {
    pub addr: libc::sockaddr_in,
    pub workload: Workload,
    /// Bytes written per batch, and the requests they hold.
    pub batch: Vec<u8>,
    pub batch_requests: usize,
    pub timeout: Duration,
    /// Churn: close right after the response instead of waiting for the server's FIN.
    pub client_close: bool,
    /// What every response's body must be.
    pub expected_body: Vec<u8>,
}

/// `127.0.0.1:port` for `GenConfig::addr`.
pub fn loopback(port: u16) -> libc::sockaddr_in {
    libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    }
}

/// What generator threads saw.
pub struct GenResult {
    /// Good responses in the measured window.
    pub completed: u64,
    /// Errors in the measured window, by `ErrorKind`.
    pub errors: [u64; ERROR_KINDS.len()],
    /// Responses and errors outside the measured window (warm-up, stop).
    pub other_completed: u64,
    pub other_errors: u64,
    /// Connections opened in the measured window.
    pub opens: u64,
    /// Latency of the good responses in the measured window.
    pub hist: Histogram,
}

impl GenResult {
    fn new() -> GenResult {
        GenResult {
            completed: 0,
            errors: [0; ERROR_KINDS.len()],
            other_completed: 0,
            other_errors: 0,
            opens: 0,
            hist: Histogram::new(),
        }
    }

    fn merge(&mut self, other: &GenResult) {
        self.completed += other.completed;
        for (a, b) in self.errors.iter_mut().zip(other.errors) {
            *a += b;
        }
        self.other_completed += other.other_completed;
        self.other_errors += other.other_errors;
        self.opens += other.opens;
        self.hist.merge(&other.hist);
    }
}

/// The generator threads loading one server.
pub struct Load {
    phase: Arc<AtomicU8>,
    threads: Vec<JoinHandle<GenResult>>,
}

impl Load {
    /// Start `threads` threads (at most one per connection) that share
    /// `connections` connections, in the warm-up phase.
    pub fn start(cfg: GenConfig, connections: usize, threads: usize) -> Load {
        let cfg = Arc::new(cfg);
        let phase = Arc::new(AtomicU8::new(WARMUP));
        let threads = threads.min(connections);
        let handles = (0..threads)
            .map(|t| {
                let n = connections / threads + usize::from(t < connections % threads);
                let (cfg, phase) = (cfg.clone(), phase.clone());
                thread::Builder::new()
                    .name(format!("loadgen-{t}"))
                    .spawn(move || event_loop::run(&cfg, n, &phase))
                    .expect("spawn a load generator thread")
            })
            .collect();
        Load {
            phase,
            threads: handles,
        }
    }

    /// The measured window begins.
    pub fn measure(&self) {
        self.phase.store(MEASURE, Relaxed);
    }

    /// The measured window ends: the threads close their connections and return.
    pub fn stop(&self) {
        self.phase.store(STOP, Relaxed);
    }

    /// Stop (if not yet stopped), wait for the threads, and add up what they saw.
    pub fn join(self) -> GenResult {
        self.stop();
        let mut total = GenResult::new();
        for handle in self.threads {
            let result = handle.join().expect("load generator thread panicked");
            total.merge(&result);
        }
        total
    }
}
