//! The acceptor and dispatcher alone, for `benches/acceptor.rs`: the real
//! accept loop and handoff channels, with no shard and no HTTP behind them.
//!
//! Not an API: the bench needs to run the `Acceptor` as the server builds it
//! but with its own consumers, and nothing else outside the crate does.

use std::io;
use std::net::SocketAddr;
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::thread::JoinHandle;

use shardd_shards::listeners::HandoffConn;
use shardd_shards::runtime::ShardStats;

use crate::acceptor::Acceptor;
use crate::config::{Admission, DispatchPolicy};
use crate::dispatch::{Dispatcher, Route};
use crate::drain_signal::DrainSignal;
use crate::rejecter::Rejecter;
use crate::sched_policy;
use crate::socket::{bind_listener, prepare_for_acceptor};
use crate::stats::AcceptorStats;

/// What a shard thread does first, for the bench's pretend shards.
pub use crate::sched_policy::serve_in_batches;

/// An acceptor handing connections round-robin to [`BenchShard`]s, with
/// the default admission settings; listening from [`bind`](Self::bind), on
/// its own thread from [`start`](Self::start).
pub struct BenchAcceptor {
    /// Where clients connect.
    pub addr: SocketAddr,
    /// The acceptor thread's id (for `/proc/self/task/TID`), once started.
    pub tid: i32,
    acceptor: Option<Acceptor>,
    stats: Arc<AcceptorStats>,
    drain: Arc<DrainSignal>,
    thread: Option<JoinHandle<()>>,
}

/// A pretend shard's end of its channel.
pub struct BenchShard {
    receiver: flume::Receiver<HandoffConn>,
    stats: Arc<ShardStats>,
}

impl BenchShard {
    /// The next connection, taken as a shard's `Handoff` listener takes it
    /// (`try_recv`, then a registered wake-up only when the channel is
    /// empty); `None` once the acceptor has stopped.
    pub async fn take(&self) -> Option<HandoffConn> {
        let taken = match self.receiver.try_recv() {
            Ok(conn) => Some(conn),
            Err(flume::TryRecvError::Disconnected) => None,
            Err(flume::TryRecvError::Empty) => self.receiver.recv_async().await.ok(),
        };
        if taken.is_some() {
            // What a shard's connection slot does for a connection closed
            // at once, so the dispatcher's view of its load stays true.
            self.stats.ledger.admit();
            self.stats.ledger.release();
        }
        taken
    }
}

impl BenchAcceptor {
    /// Bind 127.0.0.1:0 with `backlog` for `shards` consumers, each channel
    /// holding at most `channel_capacity`. Clients may connect (the kernel
    /// queues them) before [`start`](Self::start).
    pub fn bind(
        shards: usize,
        backlog: u32,
        channel_capacity: usize,
    ) -> io::Result<(Self, Vec<BenchShard>)> {
        let listener = bind_listener(SocketAddr::from(([127, 0, 0, 1], 0)), backlog)?;
        let addr = listener.local_addr()?;
        let listener = OwnedFd::from(listener);
        prepare_for_acceptor(&listener)?;
        let drain = Arc::new(DrainSignal::new()?);
        let stats = Arc::new(AcceptorStats::default());
        let (mut routes, mut consumers) = (Vec::new(), Vec::new());
        for _ in 0..shards {
            let (channel, receiver) = flume::bounded(channel_capacity);
            let stats = Arc::new(ShardStats::default());
            stats.alive.store(true, Relaxed);
            stats.ledger.wake_on_release(drain.acceptor_waker());
            routes.push(Route {
                channel,
                stats: stats.clone(),
            });
            consumers.push(BenchShard { receiver, stats });
        }
        let admission = Admission::default();
        let dispatcher = Dispatcher::new(
            routes,
            DispatchPolicy::RoundRobin,
            admission.max_connections_per_shard,
            stats.clone(),
        );
        drain.watch_listener(listener.as_raw_fd());
        let acceptor = Acceptor {
            listener,
            dispatcher,
            max_pending: admission.max_pending,
            overload: admission.overload,
            waker: drain.acceptor_waker(),
            drain: drain.clone(),
            rejecter: Rejecter::start(admission.retry_after_secs)?,
            stats: stats.clone(),
        };
        let acceptor = BenchAcceptor {
            addr,
            tid: 0,
            acceptor: Some(acceptor),
            stats,
            drain,
            thread: None,
        };
        Ok((acceptor, consumers))
    }

    /// Run the acceptor on a thread of its own (once).
    pub fn start(&mut self) -> io::Result<()> {
        let Some(acceptor) = self.acceptor.take() else {
            return Ok(());
        };
        let (tid_tx, tid_rx) = std::sync::mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("acceptor".into())
            .spawn(move || {
                sched_policy::serve_in_batches();
                // SAFETY: gettid has no preconditions.
                let _ = tid_tx.send(unsafe { libc::gettid() });
                drop(acceptor.run());
            })?;
        self.tid = tid_rx.recv().map_err(io::Error::other)?;
        self.thread = Some(thread);
        Ok(())
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.stats.accepted.load(Relaxed)
    }

    /// Connections put into a consumer's channel so far.
    pub fn handed_off(&self) -> u64 {
        self.stats.handed_off.load(Relaxed)
    }

    /// Connections answered 503 or ever held pending (should stay 0).
    pub fn refused(&self) -> u64 {
        self.stats.rejected.load(Relaxed) + self.stats.queued.load(Relaxed)
    }

    /// Stop accepting, close the channels, wait for the acceptor thread.
    pub fn stop(mut self) {
        self.drain.start();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
