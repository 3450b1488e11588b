//! Putting it together: bind, start the shards, run the acceptor, stop.
//!
//! ```text
//! main thread                      shard threads (one per core)
//! ───────────                      ─────────────────────────────
//! listening socket                 ┌ Handoff listener ─ connection tasks
//!   └ acceptor ─ dispatcher ─ channels ┼ Handoff listener ─ connection tasks
//!                                  └ Handoff listener ─ connection tasks
//! ```
//! With `listener = "reuseport"` there is no acceptor: each shard's
//! `ReusePort` listener accepts on its own socket. With
//! [`Server::spawn_with_listener`] any [`Listener`] can be plugged in.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use core_affinity::CoreId;
use shardd_shards::listeners::{reuseport_socket, Handoff, HandoffConn, ReusePort};
use shardd_shards::runtime::{run_shard, ShardCommand, ShardSetup};
use shardd_shards::{App, Listener, ShardInfo};

use crate::acceptor::Acceptor;
use crate::config::{Config, ListenerMode};
use crate::dispatch::{Dispatcher, Route};
use crate::rejecter::Rejecter;
use crate::shutdown::Shutdown;
use crate::socket::bind_listener;
use crate::stats::{ServerStats, StatsSnapshot};
use crate::supervisor::{ShardMain, Supervisor};

/// Where connections come from, decided at bind time.
enum Source {
    /// The main thread's listening socket.
    Handoff(TcpListener),
    /// One `SO_REUSEPORT` socket per shard, bound up front so errors show at start.
    ReusePort {
        sockets: Arc<Mutex<Vec<Option<TcpListener>>>>,
        addr: SocketAddr,
    },
}

/// A configured server with its socket(s) bound, not yet serving.
pub struct Server {
    config: Config,
    source: Source,
    local_addr: SocketAddr,
}

impl Server {
    /// Validate `config` and bind its address.
    pub fn bind(config: Config) -> Result<Server> {
        config.validate()?;
        let backlog = config.backlog.min(i32::MAX as u32) as i32;
        let (source, local_addr) = match config.listener {
            ListenerMode::Handoff => {
                let listener = bind_listener(config.bind, config.backlog)?;
                let addr = listener.local_addr()?;
                (Source::Handoff(listener), addr)
            }
            ListenerMode::Reuseport => {
                let first = reuseport_socket(config.bind, backlog)
                    .with_context(|| format!("cannot bind {}", config.bind))?;
                let addr = first.local_addr()?;
                let mut sockets = vec![Some(first)];
                for _ in 1..config.shard_count() {
                    sockets.push(Some(
                        reuseport_socket(addr, backlog)
                            .with_context(|| format!("cannot bind {addr}"))?,
                    ));
                }
                (
                    Source::ReusePort {
                        sockets: Arc::new(Mutex::new(sockets)),
                        addr,
                    },
                    addr,
                )
            }
        };
        Ok(Server {
            config,
            source,
            local_addr,
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serve on the calling thread (it becomes the acceptor) until
    /// `shutdown` is triggered, then drain and return.
    pub fn run<F, A>(self, app: F, shutdown: Arc<Shutdown>) -> Result<()>
    where
        F: Fn(&ShardInfo) -> A + Send + Sync + 'static,
        A: App,
    {
        let stats = Arc::new(ServerStats::new(self.config.shard_count()));
        let running = self.start(Arc::new(app), &stats, &shutdown)?;
        running.run_to_end(&shutdown);
        Ok(())
    }

    /// Serve on background threads; the handle gives stats, shutdown and fault injection.
    pub fn spawn<F, A>(self, app: F) -> Result<ServerHandle>
    where
        F: Fn(&ShardInfo) -> A + Send + Sync + 'static,
        A: App,
    {
        let local_addr = Some(self.local_addr);
        let stats = Arc::new(ServerStats::new(self.config.shard_count()));
        let shutdown = Arc::new(Shutdown::new()?);
        let running = self.start(Arc::new(app), &stats, &shutdown)?;
        Ok(ServerHandle::run_in_background(
            running, local_addr, stats, shutdown,
        )?)
    }

    /// Serve connections from any [`Listener`], built on each shard by
    /// `listener`; no socket is bound by the server and no acceptor runs.
    pub fn spawn_with_listener<LF, L, F, A>(
        config: Config,
        listener: LF,
        app: F,
    ) -> Result<ServerHandle>
    where
        LF: Fn(&ShardInfo) -> std::io::Result<L> + Send + Sync + 'static,
        L: Listener,
        F: Fn(&ShardInfo) -> A + Send + Sync + 'static,
        A: App,
    {
        config.validate()?;
        let stats = Arc::new(ServerStats::new(config.shard_count()));
        let shutdown = Arc::new(Shutdown::new()?);
        let app = Arc::new(app);
        let main: ShardMain =
            Arc::new(move |spec: ShardSetup| run_shard(spec, |ctx| listener(ctx), |ctx| app(ctx)));
        let cores = cores(&config);
        let summary = summary(&config, &cores, None, "custom");
        let supervisor =
            Supervisor::start(cores, &stats.shards, config.shard_settings(), None, main)?;
        let running = Running {
            supervisor,
            acceptor: None,
            summary,
            drain_timeout: config.drain_timeout(),
        };
        Ok(ServerHandle::run_in_background(
            running, None, stats, shutdown,
        )?)
    }

    fn start<F, A>(
        self,
        app: Arc<F>,
        stats: &Arc<ServerStats>,
        shutdown: &Arc<Shutdown>,
    ) -> Result<Running>
    where
        F: Fn(&ShardInfo) -> A + Send + Sync + 'static,
        A: App,
    {
        let config = self.config;
        let settings = config.shard_settings();
        let cores = cores(&config);
        let mode = match self.source {
            Source::Handoff(_) => "handoff",
            Source::ReusePort { .. } => "reuseport",
        };
        let summary = summary(&config, &cores, Some(self.local_addr), mode);
        match self.source {
            Source::Handoff(listener) => {
                let room = shutdown.room();
                let (senders, receivers): (Vec<_>, Vec<_>) = (0..cores.len())
                    .map(|_| flume::bounded::<HandoffConn>(config.channel_capacity))
                    .unzip();
                let main: ShardMain = Arc::new(move |spec: ShardSetup| {
                    let channel = receivers[spec.info.shard_id].clone();
                    run_shard(spec, move |_| Ok(Handoff::new(channel)), |ctx| app(ctx))
                });
                let supervisor =
                    Supervisor::start(cores, &stats.shards, settings, Some(room.clone()), main)?;
                let routes = senders
                    .into_iter()
                    .zip(&stats.shards)
                    .map(|(channel, stats)| Route {
                        channel,
                        stats: stats.clone(),
                    })
                    .collect();
                let dispatcher = Dispatcher::new(
                    routes,
                    config.admission.dispatch,
                    config.admission.max_connections_per_shard,
                    stats.acceptor.clone(),
                );
                shutdown.watch_listener(listener.as_raw_fd());
                let acceptor = Acceptor {
                    listener,
                    dispatcher,
                    max_pending: config.admission.max_pending,
                    overload: config.admission.overload,
                    room,
                    shutdown: shutdown.clone(),
                    rejecter: Rejecter::start(config.admission.retry_after_secs)?,
                    counters: stats.acceptor.clone(),
                };
                Ok(Running {
                    supervisor,
                    acceptor: Some(acceptor),
                    summary,
                    drain_timeout: config.drain_timeout(),
                })
            }
            Source::ReusePort { sockets, addr } => {
                let backlog = config.backlog.min(i32::MAX as u32) as i32;
                let main: ShardMain = Arc::new(move |spec: ShardSetup| {
                    let sockets = sockets.clone();
                    run_shard(
                        spec,
                        move |ctx| match sockets.lock().unwrap_or_else(|e| e.into_inner())
                            [ctx.shard_id]
                            .take()
                        {
                            Some(socket) => ReusePort::from_listener(socket),
                            None => ReusePort::bind(addr, backlog),
                        },
                        |ctx| app(ctx),
                    )
                });
                let supervisor = Supervisor::start(cores, &stats.shards, settings, None, main)?;
                Ok(Running {
                    supervisor,
                    acceptor: None,
                    summary,
                    drain_timeout: config.drain_timeout(),
                })
            }
        }
    }
}

/// A started server: shards running, acceptor (if any) ready to run.
struct Running {
    supervisor: Supervisor,
    acceptor: Option<Acceptor>,
    summary: String,
    drain_timeout: Duration,
}

impl Running {
    /// Accept (or wait) until shutdown, then drain the shards; all within the drain timeout.
    fn run_to_end(self, shutdown: &Shutdown) {
        log::info!("{}", self.summary);
        let rejecter = match self.acceptor {
            Some(acceptor) => Some(acceptor.run()),
            None => {
                shutdown.wait();
                None
            }
        };
        let deadline = Instant::now() + self.drain_timeout;
        self.supervisor.drain_and_join();
        if let Some(rejecter) = rejecter {
            rejecter.finish(deadline);
        }
        log::info!("stopped");
    }
}

/// A server running on background threads. Dropping it shuts the server down.
pub struct ServerHandle {
    local_addr: Option<SocketAddr>,
    stats: Arc<ServerStats>,
    shutdown: Arc<Shutdown>,
    controls: Vec<flume::Sender<ShardCommand>>,
    thread: Option<JoinHandle<()>>,
}

impl ServerHandle {
    fn run_in_background(
        running: Running,
        local_addr: Option<SocketAddr>,
        stats: Arc<ServerStats>,
        shutdown: Arc<Shutdown>,
    ) -> std::io::Result<ServerHandle> {
        let controls = running.supervisor.controls();
        let stopper = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name("acceptor".into())
            .spawn(move || running.run_to_end(&stopper))?;
        Ok(ServerHandle {
            local_addr,
            stats,
            shutdown,
            controls,
            thread: Some(thread),
        })
    }

    /// The bound address (`None` for a server on a custom listener).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// Current counters of the acceptor and every shard.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Start a graceful shutdown (returns at once).
    pub fn shutdown(&self) {
        self.shutdown.trigger();
    }

    /// Panic shard `index`'s thread, to exercise the supervisor (fault injection).
    #[cfg(feature = "fault-injection")]
    pub fn kill_shard(&self, index: usize) -> Result<()> {
        self.controls
            .get(index)
            .ok_or_else(|| anyhow!("no shard {index}"))?
            .send(ShardCommand::Kill)
            .map_err(|_| anyhow!("shard {index} is not listening for commands"))
    }

    /// Shut down and wait until every shard has drained.
    pub fn stop(mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.shutdown.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
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
