//! Start-up and the end: [`start`] launches the shards (and builds the
//! acceptor, in handoff mode); [`Running::run_to_end`], on the server's
//! own thread, accepts until the drain starts and then drains.

use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::{Duration, Instant};

use shardd_shards::listeners::HandoffConn;
use shardd_shards::runtime::flume;
use shardd_shards::runtime::ShardConfig;
use shardd_shards::{App, ShardInfo};

use super::sockets::Sockets;
use super::source::ConnectionSource;
use super::LOG_TARGET;
use crate::acceptor::Acceptor;
use crate::access_log_writer::AccessLogWriter;
use crate::config::Config;
use crate::dispatch::{Dispatcher, Route};
use crate::drain_signal::DrainSignal;
use crate::error::Error;
use crate::placement;
use crate::rejecter::Rejecter;
use crate::stats::ServerStats;
use crate::supervisor::Supervisor;

/// How long after the drain the access-log writer may take to write what
/// the shards handed it last.
const ACCESS_LOG_GRACE: Duration = Duration::from_secs(1);

/// A started server: shards running, acceptor (if any) ready to run.
pub(super) struct Running {
    pub(super) supervisor: Supervisor,
    pub(super) acceptor: Option<Acceptor>,
    access_log: Option<AccessLogWriter>,
    summary: String,
    pub(super) sockets: Option<Arc<Sockets>>,
    drain_timeout: Duration,
}

/// Start the shards (and build the acceptor, in handoff mode).
pub(super) fn start<S, F, A>(
    config: Config,
    shard_config: ShardConfig,
    mut source: S,
    make_app: Arc<F>,
    stats: &ServerStats,
    drain: &Arc<DrainSignal>,
) -> Result<Running, Error>
where
    S: ConnectionSource,
    F: Fn(&ShardInfo) -> A + Send + Sync + 'static,
    A: App,
{
    let cores = placement::cores(&config);
    let sockets = source.sockets().cloned();
    let listening = sockets
        .as_deref()
        .map(|sockets| (&sockets.addr, sockets.inherited));
    let summary = placement::summary(&config, &cores, listening, source.mode());
    let backlog = config.backlog.min(i32::MAX as u32) as i32;
    let drain_timeout = config.drain_timeout();
    let mut shard_config = shard_config;
    let access_log = AccessLogWriter::start(&config.log, stats)?.map(|(writer, sink)| {
        shard_config.access_log = Some(sink);
        writer
    });
    // A handoff socket means an acceptor, and a channel to each shard.
    let socket = source.take_handoff_socket();
    let waker = drain.acceptor_waker();
    let (senders, receivers): (Vec<_>, Vec<_>) = match socket {
        Some(_) => (0..cores.len())
            .map(|_| flume::bounded::<HandoffConn>(config.channel_capacity))
            .unzip(),
        None => (Vec::new(), Vec::new()),
    };
    if socket.is_some() {
        for shard in &stats.shards {
            // A connection that ends rings the acceptor if it waits for room.
            shard.ledger.wake_on_release(waker.clone());
        }
    }
    let runner = source.runner(make_app, receivers, backlog);
    let supervisor = Supervisor::start(
        cores,
        &stats.shards,
        shard_config,
        runner,
        config.batch_scheduling,
    )?;
    let Some(socket) = socket else {
        return Ok(Running {
            supervisor,
            acceptor: None,
            access_log,
            summary,
            sockets,
            drain_timeout,
        });
    };
    let routes = senders
        .into_iter()
        .zip(&stats.shards)
        .map(|(channel, stats)| Route {
            channel,
            stats: stats.clone(),
        })
        .collect();
    let admission = &config.admission;
    let dispatcher = Dispatcher::new(
        routes,
        admission.dispatch,
        admission.max_connections_per_shard,
        stats.acceptor.clone(),
    );
    drain.watch_listener(socket.as_raw_fd());
    if sockets.as_ref().is_some_and(|sockets| sockets.inherited) {
        drain.listener_is_shared();
    }
    let acceptor = Acceptor {
        listener: socket,
        dispatcher,
        max_pending: admission.max_pending,
        overload: admission.overload,
        waker,
        drain: drain.clone(),
        rejecter: Rejecter::start(admission.retry_after_secs)?,
        stats: stats.acceptor.clone(),
    };
    Ok(Running {
        supervisor,
        acceptor: Some(acceptor),
        access_log,
        summary,
        sockets,
        drain_timeout,
    })
}

impl Running {
    /// Accept (or wait) until the drain starts, then drain the shards; all within the drain timeout.
    pub(super) fn run_to_end(self, drain: &DrainSignal) {
        log::info!(target: LOG_TARGET, "{}", self.summary);
        let rejecter = match self.acceptor {
            Some(acceptor) => Some(acceptor.run()),
            None => {
                drain.wait();
                None
            }
        };
        // No longer listening (the acceptor has closed its socket; shards
        // close theirs as they stop accepting).
        if let Some(sockets) = &self.sockets {
            sockets.close();
        }
        let deadline = Instant::now() + self.drain_timeout;
        let shard_config = self.supervisor.shard_config();
        self.supervisor.drain_and_join();
        if let Some(rejecter) = rejecter {
            rejecter.finish(deadline);
        }
        if let Some(access_log) = self.access_log {
            // The shards are gone, so the writer has all it will get. The
            // sink kept for restarted shards is its last sender: without
            // dropping it, the writer would wait for more lines until the
            // deadline (every stop with an access log took the whole
            // drain timeout).
            shard_config
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner())
                .access_log = None;
            access_log.finish(Instant::now().max(deadline) + ACCESS_LOG_GRACE);
        }
        log::info!(target: LOG_TARGET, "stopped");
    }
}
