//! Putting it together: bind, start the shards, run the acceptor, drain.
//!
//! ```text
//! main thread                          shard threads (one per core)
//! ───────────                          ─────────────────────────────
//! listening socket                     ┌ Handoff listener ─ connection tasks
//!   └ acceptor ─ dispatcher ─ channels ┼ Handoff listener ─ connection tasks
//!                                      └ Handoff listener ─ connection tasks
//! ```
//! With `listener = "reuseport"` there is no acceptor: each shard's
//! `ReusePort` listener accepts on its own socket. With
//! [`Server::with_listener`] any [`Listener`] plugs in.

use std::io;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use core_affinity::CoreId;
use shardd_shards::listeners::{reuseport_socket, Handoff, HandoffConn, ReusePort};
use shardd_shards::runtime::{run_shard, ShardCommand, ShardSetup};
use shardd_shards::{App, Listener, ShardInfo};

use crate::acceptor::Acceptor;
use crate::access_log_writer::AccessLogWriter;
use crate::config::{Config, ListenerMode};
use crate::dispatch::{Dispatcher, Route};
use crate::drain_signal::DrainSignal;
use crate::error::Error;
use crate::rejecter::Rejecter;
use crate::socket::bind_listener;
use crate::stats::{ServerStats, StatsSnapshot};
use crate::supervisor::{ShardRunner, Supervisor};

/// A configured server, not yet serving: its socket is bound (or its
/// listener factory is set), so address errors show before any thread starts.
///
/// ```no_run
/// use shardd::{app_fn, Config, Response, Server};
///
/// let handle = Server::bind(Config::default())?.serve(|_shard| {
///     app_fn(|req| match req.path() {
///         "/" => Response::text("hello\n"),
///         _ => Response::not_found(),
///     })
/// })?;
/// println!("serving on {:?}", handle.local_addr());
/// handle.wait(); // until something calls `drain`
/// # Ok::<(), shardd::Error>(())
/// ```
pub struct Server<S = BoundSocket> {
    config: Config,
    source: S,
}

/// Connections from the address in [`Config::bind`]: accepted by the main
/// thread and handed off, or accepted by each shard (`listener = "reuseport"`).
pub struct BoundSocket {
    mode: Bound,
    local_addr: SocketAddr,
}

enum Bound {
    /// The main thread's listening socket.
    Handoff(Option<TcpListener>),
    /// One `SO_REUSEPORT` socket per shard, bound up front so errors show at
    /// start; a restarted shard binds a new one.
    ReusePort {
        sockets: Arc<Mutex<Vec<Option<TcpListener>>>>,
    },
}

/// Connections from a [`Listener`] built on each shard by a factory; no
/// socket is bound by the server and no acceptor runs.
pub struct CustomListener<LF, L> {
    make_listener: LF,
    listener: PhantomData<fn() -> L>,
}

impl Server<BoundSocket> {
    /// Validate `config` and bind its address.
    pub fn bind(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let addr = config.bind;
        let bind_error = |source| Error::Bind { addr, source };
        let backlog = config.backlog.min(i32::MAX as u32) as i32;
        let source = match config.listener {
            ListenerMode::Handoff => {
                let listener = bind_listener(addr, config.backlog).map_err(bind_error)?;
                BoundSocket {
                    local_addr: listener.local_addr()?,
                    mode: Bound::Handoff(Some(listener)),
                }
            }
            ListenerMode::Reuseport => {
                let first = reuseport_socket(addr, backlog).map_err(bind_error)?;
                let local_addr = first.local_addr()?;
                let mut sockets = vec![Some(first)];
                for _ in 1..config.shard_count() {
                    let socket =
                        reuseport_socket(local_addr, backlog).map_err(|source| Error::Bind {
                            addr: local_addr,
                            source,
                        })?;
                    sockets.push(Some(socket));
                }
                BoundSocket {
                    local_addr,
                    mode: Bound::ReusePort {
                        sockets: Arc::new(Mutex::new(sockets)),
                    },
                }
            }
        };
        Ok(Server { config, source })
    }
}

impl<LF, L> Server<CustomListener<LF, L>>
where
    LF: Fn(&ShardInfo) -> io::Result<L> + Send + Sync + 'static,
    L: Listener,
{
    /// Serve connections from any [`Listener`], built on each shard by
    /// `make_listener` (on the shard's own thread, so it may be `!Send`).
    /// `config.bind`, `listener` and the admission settings do not apply.
    pub fn with_listener(config: Config, make_listener: LF) -> Result<Self, Error> {
        config.validate()?;
        Ok(Server {
            config,
            source: CustomListener {
                make_listener,
                listener: PhantomData,
            },
        })
    }
}

impl<S: ConnectionSource> Server<S> {
    /// The address bound (useful with port 0); `None` on a custom listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        sealed::Sealed::local_addr(&self.source)
    }

    /// Start serving on background threads: the shards, and the acceptor
    /// if there is one. `make_app` runs once on each shard (and again on a
    /// shard restarted after its thread died).
    pub fn serve<F, A>(self, make_app: F) -> Result<ServerHandle, Error>
    where
        F: Fn(&ShardInfo) -> A + Send + Sync + 'static,
        A: App,
    {
        let Server { config, source } = self;
        let stats = Arc::new(ServerStats::new(config.shard_count()));
        let drain = Arc::new(DrainSignal::new()?);
        let running = start(config, source, Arc::new(make_app), &stats, &drain)?;
        let local_addr = running.local_addr;
        let controls = running.supervisor.controls();
        let drainer = drain.clone();
        let thread = std::thread::Builder::new()
            .name("acceptor".into())
            .spawn(move || running.run_to_end(&drainer))?;
        Ok(ServerHandle {
            local_addr,
            stats,
            drain,
            controls,
            thread: Some(thread),
        })
    }
}

/// Where a [`Server`]'s connections come from: a [`BoundSocket`] or a
/// [`CustomListener`]. Sealed: the two are all there is.
pub trait ConnectionSource: sealed::Sealed {}

mod sealed {
    use std::net::{SocketAddr, TcpListener};
    use std::sync::Arc;

    use shardd_shards::listeners::HandoffConn;
    use shardd_shards::{App, ShardInfo};

    use crate::supervisor::ShardRunner;

    /// What `Server::serve` needs of a source; not nameable outside the crate.
    pub trait Sealed {
        fn local_addr(&self) -> Option<SocketAddr>;
        /// For the start-up line.
        fn mode(&self) -> &'static str;
        /// The socket the acceptor will own, in handoff mode.
        fn take_handoff_socket(&mut self) -> Option<TcpListener>;
        /// Runs one shard; `handoff` holds each shard's channel in handoff mode.
        fn runner<F, A>(
            self,
            make_app: Arc<F>,
            handoff: Vec<flume::Receiver<HandoffConn>>,
            backlog: i32,
        ) -> ShardRunner
        where
            F: Fn(&ShardInfo) -> A + Send + Sync + 'static,
            A: App;
    }
}

impl ConnectionSource for BoundSocket {}

impl sealed::Sealed for BoundSocket {
    fn local_addr(&self) -> Option<SocketAddr> {
        Some(self.local_addr)
    }

    fn mode(&self) -> &'static str {
        match self.mode {
            Bound::Handoff(_) => "handoff",
            Bound::ReusePort { .. } => "reuseport",
        }
    }

    fn take_handoff_socket(&mut self) -> Option<TcpListener> {
        match &mut self.mode {
            Bound::Handoff(socket) => socket.take(),
            Bound::ReusePort { .. } => None,
        }
    }

    fn runner<F, A>(
        self,
        make_app: Arc<F>,
        handoff: Vec<flume::Receiver<HandoffConn>>,
        backlog: i32,
    ) -> ShardRunner
    where
        F: Fn(&ShardInfo) -> A + Send + Sync + 'static,
        A: App,
    {
        match self.mode {
            Bound::Handoff(_) => Arc::new(move |setup: ShardSetup| {
                let channel = handoff[setup.info.shard_id].clone();
                run_shard(
                    setup,
                    move |_| Ok(Handoff::new(channel)),
                    |info| make_app(info),
                )
            }),
            Bound::ReusePort { sockets } => {
                let addr = self.local_addr;
                Arc::new(move |setup: ShardSetup| {
                    // The socket bound at start, or a new one for a restarted shard.
                    let bound_at_start = |info: &ShardInfo| {
                        sockets.lock().unwrap_or_else(|e| e.into_inner())[info.shard_id].take()
                    };
                    run_shard(
                        setup,
                        |info| match bound_at_start(info) {
                            Some(socket) => ReusePort::from_listener(socket),
                            None => ReusePort::bind(addr, backlog),
                        },
                        |info| make_app(info),
                    )
                })
            }
        }
    }
}

impl<LF, L> ConnectionSource for CustomListener<LF, L>
where
    LF: Fn(&ShardInfo) -> io::Result<L> + Send + Sync + 'static,
    L: Listener,
{
}

impl<LF, L> sealed::Sealed for CustomListener<LF, L>
where
    LF: Fn(&ShardInfo) -> io::Result<L> + Send + Sync + 'static,
    L: Listener,
{
    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }

    fn mode(&self) -> &'static str {
        "custom"
    }

    fn take_handoff_socket(&mut self) -> Option<TcpListener> {
        None
    }

    fn runner<F, A>(
        self,
        make_app: Arc<F>,
        _: Vec<flume::Receiver<HandoffConn>>,
        _: i32,
    ) -> ShardRunner
    where
        F: Fn(&ShardInfo) -> A + Send + Sync + 'static,
        A: App,
    {
        let make_listener = Arc::new(self.make_listener);
        Arc::new(move |setup: ShardSetup| {
            run_shard(setup, |info| make_listener(info), |info| make_app(info))
        })
    }
}

/// Start the shards (and the acceptor, in handoff mode).
fn start<S, F, A>(
    config: Config,
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
    let cores = cores(&config);
    let local_addr = source.local_addr();
    let summary = summary(&config, &cores, local_addr, source.mode());
    let backlog = config.backlog.min(i32::MAX as u32) as i32;
    let drain_timeout = config.drain_timeout();
    let mut shard_config = config.shard_config();
    let access_log = AccessLogWriter::start(&config.log, stats)?.map(|(writer, sink)| {
        shard_config.access_log = Some(sink);
        writer
    });
    let Some(socket) = source.take_handoff_socket() else {
        let runner = source.runner(make_app, Vec::new(), backlog);
        let supervisor = Supervisor::start(cores, &stats.shards, shard_config, None, runner)?;
        return Ok(Running {
            supervisor,
            acceptor: None,
            access_log,
            summary,
            local_addr,
            drain_timeout,
        });
    };
    let waker = drain.acceptor_waker();
    let (senders, receivers): (Vec<_>, Vec<_>) = (0..cores.len())
        .map(|_| flume::bounded::<HandoffConn>(config.channel_capacity))
        .unzip();
    let runner = source.runner(make_app, receivers, backlog);
    let supervisor = Supervisor::start(
        cores,
        &stats.shards,
        shard_config,
        Some(waker.clone()),
        runner,
    )?;
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
        local_addr,
        drain_timeout,
    })
}

/// How long after the drain the access-log writer may take to write what
/// the shards handed it last.
const ACCESS_LOG_GRACE: Duration = Duration::from_secs(1);

/// A started server: shards running, acceptor (if any) ready to run.
struct Running {
    supervisor: Supervisor,
    acceptor: Option<Acceptor>,
    access_log: Option<AccessLogWriter>,
    summary: String,
    local_addr: Option<SocketAddr>,
    drain_timeout: Duration,
}

impl Running {
    /// Accept (or wait) until the drain starts, then drain the shards; all within the drain timeout.
    fn run_to_end(self, drain: &DrainSignal) {
        log::info!("{}", self.summary);
        let rejecter = match self.acceptor {
            Some(acceptor) => Some(acceptor.run()),
            None => {
                drain.wait();
                None
            }
        };
        let deadline = Instant::now() + self.drain_timeout;
        self.supervisor.drain_and_join();
        if let Some(rejecter) = rejecter {
            rejecter.finish(deadline);
        }
        if let Some(access_log) = self.access_log {
            // The shards are gone, so the writer has all it will get.
            access_log.finish(Instant::now().max(deadline) + ACCESS_LOG_GRACE);
        }
        log::info!("stopped");
    }
}

/// A running server. Dropping it drains the server and waits for it.
pub struct ServerHandle {
    local_addr: Option<SocketAddr>,
    stats: Arc<ServerStats>,
    drain: Arc<DrainSignal>,
    #[cfg_attr(not(feature = "fault-injection"), allow(dead_code))]
    controls: Vec<flume::Sender<ShardCommand>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The bound address (`None` for a server on a custom listener).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Current stats of the acceptor and every shard.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Start the drain and return at once: no new connections, requests in
    /// flight finish (answered with `Connection: close`), idle connections close.
    pub fn drain(&self) {
        self.drain.trigger();
    }

    /// Something that starts the drain from another thread (a signal handler, say).
    pub fn drain_trigger(&self) -> DrainTrigger {
        DrainTrigger(self.drain.clone())
    }

    /// Block until the server has stopped: after [`drain`](Self::drain) (or a
    /// [`DrainTrigger`]), once every shard has drained.
    pub fn wait(mut self) {
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }

    /// Drain, and wait until every shard has finished.
    pub fn stop(self) {
        self.drain();
        self.wait();
    }

    /// Panic shard `index`'s thread, to exercise the supervisor (fault injection).
    #[cfg(feature = "fault-injection")]
    pub fn kill_shard(&self, index: usize) -> Result<(), String> {
        self.controls
            .get(index)
            .ok_or_else(|| format!("no shard {index}"))?
            .send(ShardCommand::Kill)
            .map_err(|_| format!("shard {index} is not listening for commands"))
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.drain.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Starts a server's drain; cheap to clone and to send to another thread.
#[derive(Clone, Debug)]
pub struct DrainTrigger(Arc<DrainSignal>);

impl DrainTrigger {
    /// Start the drain (idempotent); see [`ServerHandle::drain`].
    pub fn drain(&self) {
        self.0.trigger();
    }
}

/// The core each shard is pinned to (`None` everywhere with `pin = false`).
fn cores(config: &Config) -> Vec<Option<CoreId>> {
    let count = config.shard_count();
    let available = if config.pin {
        core_affinity::get_core_ids().unwrap_or_default()
    } else {
        Vec::new()
    };
    if config.pin && available.is_empty() {
        log::warn!("cannot read the CPU list: shards run unpinned");
    }
    if config.pin && count > available.len() && !available.is_empty() {
        log::warn!(
            "{count} shards on {} cores: some cores run two shards",
            available.len()
        );
    }
    (0..count)
        .map(|i| {
            if available.is_empty() {
                None
            } else {
                Some(available[i % available.len()])
            }
        })
        .collect()
}

/// The start-up log line: shards, cores, listener mode, address.
fn summary(
    config: &Config,
    cores: &[Option<CoreId>],
    addr: Option<SocketAddr>,
    mode: &str,
) -> String {
    let cores: Vec<String> = cores
        .iter()
        .map(|c| c.map_or("-".into(), |c| c.id.to_string()))
        .collect();
    let pinning = if config.pin {
        format!("pinned to cores [{}]", cores.join(", "))
    } else {
        "unpinned".into()
    };
    let place = addr.map_or("a custom listener".into(), |a| format!("http://{a}"));
    format!(
        "shardd: {} shards {pinning}, listener {mode}, serving on {place}",
        config.shard_count()
    )
}
