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
//! `ReusePort` listener accepts on its own socket. [`Server::wrap_listener`]
//! decorates the listener each shard gets (acceptor, admission, drain and
//! upgrade unchanged); with [`Server::with_listener`] any [`Listener`]
//! replaces it.
//!
//! The listening sockets are bound here ([`Server::bind`]) or inherited
//! ([`Server::from_listen_fds`]: systemd socket activation, or the process
//! an upgrade replaces), and can be passed on to a new process
//! ([`ServerHandle::listen_fds_for_upgrade`]).

use std::future::Future;
use std::io;
use std::marker::PhantomData;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shardd_shards::listeners::{
    reuseport_socket, BuiltinListener, HandoffConn, ReusePort, TlsContext,
};
use shardd_shards::runtime::flume;
use shardd_shards::runtime::{handoff_listener, run_shard, ShardCommand, ShardConfig, ShardSetup};
use shardd_shards::{App, Limits, Listener, ShardInfo};

use crate::acceptor::Acceptor;
use crate::access_log_writer::AccessLogWriter;
use crate::admin::{self, AdminPort, AdminSocket, Capacity, InheritedAdmin, ADMIN_FD_NAME};
use crate::bind_addr::BindAddr;
use crate::config::{Config, ListenerMode};
use crate::dispatch::{Dispatcher, Route};
use crate::drain_signal::DrainSignal;
use crate::error::Error;
use crate::placement;
use crate::rejecter::Rejecter;
use crate::sched_policy;
use crate::shutdown_signal;
use crate::socket::{
    bind_listener, bind_unix, defer_accept, ensure_nothing_listens, inspect_inherited,
    prepare_for_acceptor, UnixSocketFile,
};
use crate::stats::{ServerStats, StatsSnapshot};
use crate::supervisor::{ShardRunner, Supervisor};
use crate::systemd::ListenFd;
use crate::tls::{self, TlsReloader};

/// `LISTEN_FDNAMES` name of a socket an upgrading shardd in handoff mode passes on.
const HANDOFF_FD_NAME: &str = "shardd-handoff";
/// `LISTEN_FDNAMES` name of the per-shard sockets of a shardd in reuseport mode.
const REUSEPORT_FD_NAME: &str = "shardd-reuseport";

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
/// println!("serving on {:?} (Ctrl-C to stop)", handle.local_addr());
/// handle.wait_for_shutdown()?; // SIGINT/SIGTERM drains, then it returns
/// # Ok::<(), shardd::Error>(())
/// ```
pub struct Server<S = BoundSocket> {
    config: Config,
    source: S,
    /// The certificate of `config.tls`, loaded before any thread starts.
    tls: Option<Arc<TlsContext>>,
    /// An admin socket passed to this process (an upgrade, or systemd),
    /// served if `config.admin` asks for its address.
    inherited_admin: Option<InheritedAdmin>,
}

/// Connections from the address in [`Config::bind`] (or from inherited
/// sockets): accepted by the main thread and handed off, or accepted by
/// each shard (`listener = "reuseport"`); each shard's
/// [`BuiltinListener`] used as it is, or wrapped
/// ([`Server::wrap_listener`]).
pub struct BoundSocket<W = Unwrapped> {
    mode: Bound,
    sockets: Arc<Sockets>,
    wrap: W,
}

/// Each shard serves its [`BuiltinListener`] as it is.
pub struct Unwrapped;

/// Each shard serves the listener a function builds around its
/// [`BuiltinListener`] ([`Server::wrap_listener`]).
pub struct Wrapped<WF, L> {
    wrap: WF,
    listener: PhantomData<fn() -> L>,
}

enum Bound {
    /// The main thread's listening socket (TCP or Unix).
    Handoff(Option<OwnedFd>),
    /// One `SO_REUSEPORT` socket per shard, bound up front so errors show at
    /// start; each shard accepts on a duplicate (see [`Sockets::reuseport`]).
    ReusePort,
}

/// What the server, its handle and an upgrade know of the listening sockets.
pub struct Sockets {
    /// What is listened on (the port resolved).
    addr: BindAddr,
    /// Inherited, so shared with another process (systemd, or the shardd
    /// this one replaced): a drain must never shut them down.
    inherited: bool,
    /// The `LISTEN_FDNAMES` name of each socket, to pass on in an upgrade.
    names: Vec<String>,
    /// The Unix socket file to remove when the server stops.
    unix_file: Option<UnixSocketFile>,
    /// Reuseport mode: the main thread's copy of each shard's socket. A
    /// shard accepts on a duplicate, so one restarted after its thread died
    /// takes over the same socket (nothing queued in it is lost), and an
    /// upgrade can pass them on. Emptied when the drain starts, so that a
    /// shard that stops accepting closes its socket for good.
    reuseport: Mutex<Vec<Option<TcpListener>>>,
}

impl Sockets {
    /// The server stops listening: close the main thread's copies, remove the socket file.
    fn close(&self) {
        let mut reuseport = self.reuseport.lock().unwrap_or_else(|e| e.into_inner());
        reuseport.iter_mut().for_each(|socket| *socket = None);
        if let Some(file) = &self.unix_file {
            file.remove();
        }
    }
}

/// Connections from a [`Listener`] built on each shard by a factory; no
/// socket is bound by the server and no acceptor runs.
pub struct CustomListener<LF, L> {
    make_listener: LF,
    listener: PhantomData<fn() -> L>,
}

impl Server<BoundSocket> {
    /// Validate `config` and bind its address: a TCP address, or a Unix
    /// socket file (`unix:/path`, handoff mode only).
    pub fn bind(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let tls = tls::load(&config)?;
        let backlog = config.backlog.min(i32::MAX as u32) as i32;
        let mut unix_file = None;
        let (mode, addr, reuseport) = match (&config.bind, config.listener) {
            (BindAddr::Unix(path), _) => {
                let (socket, file) = bind_unix(path, config.backlog, config.unix_mode)?;
                prepare_for_acceptor(&socket)?;
                unix_file = Some(file);
                let addr = config.bind.clone();
                (Bound::Handoff(Some(socket)), addr, Vec::new())
            }
            (&BindAddr::Tcp(addr), ListenerMode::Handoff) => {
                let bind_error = |source| Error::Bind {
                    addr: addr.into(),
                    source,
                };
                let listener = bind_listener(addr, config.backlog).map_err(bind_error)?;
                if config.defer_accept {
                    defer_accept(&listener)?;
                }
                let local_addr = listener.local_addr()?;
                let socket = OwnedFd::from(listener);
                prepare_for_acceptor(&socket)?;
                (Bound::Handoff(Some(socket)), local_addr.into(), Vec::new())
            }
            (&BindAddr::Tcp(addr), ListenerMode::Reuseport) => {
                let bind_error = |addr: SocketAddr| {
                    move |source| Error::Bind {
                        addr: addr.into(),
                        source,
                    }
                };
                // SO_REUSEPORT alone would share a port another process listens on.
                ensure_nothing_listens(addr).map_err(bind_error(addr))?;
                let first = reuseport_socket(addr, backlog).map_err(bind_error(addr))?;
                let local_addr = first.local_addr()?;
                let mut sockets = vec![Some(first)];
                for _ in 1..config.shard_count() {
                    let socket =
                        reuseport_socket(local_addr, backlog).map_err(bind_error(local_addr))?;
                    sockets.push(Some(socket));
                }
                if config.defer_accept {
                    for socket in sockets.iter().flatten() {
                        defer_accept(socket)?;
                    }
                }
                (Bound::ReusePort, local_addr.into(), sockets)
            }
        };
        let name = match config.listener {
            ListenerMode::Handoff => HANDOFF_FD_NAME,
            ListenerMode::Reuseport => REUSEPORT_FD_NAME,
        };
        let sockets = Sockets {
            addr,
            inherited: false,
            names: vec![name.to_owned(); reuseport.len().max(1)],
            unix_file,
            reuseport: Mutex::new(reuseport),
        };
        Ok(Server::over_sockets(config, tls, mode, sockets))
    }

    /// A server over sockets bound or inherited.
    fn over_sockets(
        config: Config,
        tls: Option<Arc<TlsContext>>,
        mode: Bound,
        sockets: Sockets,
    ) -> Self {
        Server {
            config,
            tls,
            source: BoundSocket {
                mode,
                sockets: Arc::new(sockets),
                wrap: Unwrapped,
            },
            inherited_admin: None,
        }
    }

    /// Validate `config` and serve on listening sockets passed to this
    /// process (from [`systemd::take_listen_fds`](crate::systemd::take_listen_fds)):
    /// systemd socket activation, or the sockets of the shardd an upgrade
    /// replaces. `config.bind` is not used.
    ///
    /// In handoff mode that is one socket, TCP or Unix. In reuseport mode it
    /// is one TCP socket per shard (an upgrading shardd in reuseport mode
    /// passes all of its shards' sockets, so the new process must run as
    /// many shards). Sockets passed on by a shardd (named `shardd-handoff`
    /// or `shardd-reuseport`) must come from the same listener mode; a Unix
    /// socket file passed on by a shardd that created it is removed when
    /// this server stops, one from systemd is left to systemd.
    ///
    /// A TCP socket named `shardd-admin` is the admin port's: served by the
    /// admin port if [`Config::admin`] is its address (or its IP with port
    /// 0), else closed and `admin` bound. If it is the only socket passed
    /// (systemd activating the admin port alone), `config.bind` is bound as
    /// [`Server::bind`] does.
    pub fn from_listen_fds(config: Config, fds: Vec<ListenFd>) -> Result<Self, Error> {
        let (admin, fds): (Vec<ListenFd>, Vec<ListenFd>) =
            fds.into_iter().partition(|fd| fd.name == ADMIN_FD_NAME);
        let inherited_admin = match <[ListenFd; 1]>::try_from(admin) {
            Ok([admin]) => Some(InheritedAdmin::new(admin.fd)?),
            Err(admin) if admin.is_empty() => None,
            Err(admin) => {
                return Err(Error::Inherited(format!(
                    "{} sockets named {ADMIN_FD_NAME} were passed; the admin port serves one",
                    admin.len()
                )))
            }
        };
        let mut server = match (fds.is_empty(), &inherited_admin) {
            (true, Some(_)) => Server::bind(config)?,
            _ => Server::from_listen_fds_without_admin(config, fds)?,
        };
        server.inherited_admin = inherited_admin;
        Ok(server)
    }

    /// [`from_listen_fds`](Self::from_listen_fds) for the service sockets.
    fn from_listen_fds_without_admin(config: Config, fds: Vec<ListenFd>) -> Result<Self, Error> {
        config.validate()?;
        let tls = tls::load(&config)?;
        let ours = match config.listener {
            ListenerMode::Handoff => HANDOFF_FD_NAME,
            ListenerMode::Reuseport => REUSEPORT_FD_NAME,
        };
        let mut addrs = Vec::with_capacity(fds.len());
        for fd in &fds {
            addrs.push(inspect_inherited(&fd.fd)?);
            if fd.name.starts_with("shardd-") && fd.name != ours {
                return Err(Error::Inherited(format!(
                    "the sockets come from a shardd with a different listener mode ({}, this one is {ours}): a restart is needed to change the listener",
                    fd.name
                )));
            }
        }
        let names: Vec<String> = fds.iter().map(|fd| fd.name.clone()).collect();
        let Some(addr) = addrs.first().cloned() else {
            return Err(Error::Inherited("LISTEN_FDS passed no socket".into()));
        };
        let (mode, unix_file, reuseport) = match config.listener {
            ListenerMode::Handoff => {
                let [fd] = <[ListenFd; 1]>::try_from(fds).map_err(|fds| {
                    Error::Inherited(format!(
                        "listener = \"handoff\" serves one socket, but {} were passed",
                        fds.len()
                    ))
                })?;
                prepare_for_acceptor(&fd.fd)?;
                let unix_file = match &addr {
                    BindAddr::Unix(path) if fd.name == HANDOFF_FD_NAME => {
                        UnixSocketFile::owned(path).ok()
                    }
                    _ => None,
                };
                (Bound::Handoff(Some(fd.fd)), unix_file, Vec::new())
            }
            ListenerMode::Reuseport => {
                if addrs.iter().any(|addr| addr.tcp().is_none()) {
                    return Err(Error::Inherited(
                        "listener = \"reuseport\" serves TCP sockets only".into(),
                    ));
                }
                if fds.len() != config.shard_count() {
                    return Err(Error::Inherited(format!(
                        "listener = \"reuseport\" serves one socket per shard: {} were passed for {} shards (a restart is needed to change the shard count)",
                        fds.len(),
                        config.shard_count()
                    )));
                }
                let sockets = fds
                    .into_iter()
                    .map(|fd| Some(TcpListener::from(fd.fd)))
                    .collect();
                (Bound::ReusePort, None, sockets)
            }
        };
        if config.bind != addr && config.bind.tcp().is_none_or(|tcp| tcp.port() != 0) {
            log::info!(
                "listening socket inherited: {addr}; bind = {} is not used",
                config.bind
            );
        }
        let sockets = Sockets {
            addr,
            inherited: true,
            names,
            unix_file,
            reuseport: Mutex::new(reuseport),
        };
        Ok(Server::over_sockets(config, tls, mode, sockets))
    }
}

impl Server<BoundSocket> {
    /// Serve each shard's connections through a listener of your own built
    /// around the one the server would use: `wrap` runs on each shard's
    /// thread (again for a shard restarted after its thread died) with the
    /// shard's identity and its [`BuiltinListener`] (handoff or reuseport,
    /// as [`Config::listener`] says), and returns the listener to serve.
    ///
    /// Everything else stays: the acceptor and its admission control (503s
    /// when every shard is full), the drain, the binary upgrade, TLS (over
    /// the wrapper: a wrapper reads the raw stream), [`Config::proxy_protocol`]
    /// (over the wrapper too). A wrapper that reads from the connection
    /// before HTTP does so in [`Listener::establish`], on the connection's
    /// own task, and calls the inner listener's first.
    ///
    /// ```no_run
    /// use shardd::listeners::{ProxyProtocol, ProxyProtocolSettings};
    /// use shardd::{app_fn, Config, Response, Server};
    ///
    /// // What `proxy_protocol = true` does, by hand.
    /// let settings = ProxyProtocolSettings::default();
    /// let handle = Server::bind(Config::default())?
    ///     .wrap_listener(move |_shard, builtin| Ok(ProxyProtocol::new(builtin, settings)))
    ///     .serve(|_shard| app_fn(|req| Response::text(format!("{}\n", req.peer()))))?;
    /// # handle.stop();
    /// # Ok::<(), shardd::Error>(())
    /// ```
    pub fn wrap_listener<WF, L>(self, wrap: WF) -> Server<BoundSocket<Wrapped<WF, L>>>
    where
        WF: Fn(&ShardInfo, BuiltinListener) -> io::Result<L> + Send + Sync + 'static,
        L: Listener,
    {
        let Server {
            config,
            source,
            tls,
            inherited_admin,
        } = self;
        Server {
            config,
            tls,
            inherited_admin,
            source: BoundSocket {
                mode: source.mode,
                sockets: source.sockets,
                wrap: Wrapped {
                    wrap,
                    listener: PhantomData,
                },
            },
        }
    }
}

impl<LF, L> Server<CustomListener<LF, L>>
where
    LF: Fn(&ShardInfo) -> io::Result<L> + Send + Sync + 'static,
    L: Listener,
{
    /// Serve connections from any [`Listener`], built on each shard by
    /// `make_listener` (on the shard's own thread, so it may be `!Send`).
    /// `config.bind`, `listener` and the admission settings do not apply:
    /// no socket is bound and no acceptor runs. To decorate the listener a
    /// bound server uses (and keep its acceptor and admission), see
    /// [`Server::wrap_listener`].
    pub fn with_listener(config: Config, make_listener: LF) -> Result<Self, Error> {
        config.validate()?;
        let tls = tls::load(&config)?;
        Ok(Server {
            config,
            tls,
            source: CustomListener {
                make_listener,
                listener: PhantomData,
            },
            inherited_admin: None,
        })
    }
}

impl<S: ConnectionSource> Server<S> {
    /// The TCP address bound (useful with port 0); `None` on a Unix socket
    /// or a custom listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listen_addr().and_then(|addr| addr.tcp())
    }

    /// What the server listens on, TCP or Unix; `None` on a custom listener.
    pub fn listen_addr(&self) -> Option<&BindAddr> {
        sealed::Sealed::sockets(&self.source).map(|sockets| &sockets.addr)
    }

    /// Start serving on background threads: the shards, and the acceptor
    /// if there is one. `make_app` runs once on each shard (and again on a
    /// shard restarted after its thread died).
    pub fn serve<F, A>(self, make_app: F) -> Result<ServerHandle, Error>
    where
        F: Fn(&ShardInfo) -> A + Send + Sync + 'static,
        A: App,
    {
        let Server {
            config,
            source,
            tls,
            inherited_admin,
        } = self;
        let admin_port = AdminPort::open(config.admin, inherited_admin)?;
        let admin_addr = admin_port.as_ref().map(AdminPort::local_addr);
        let (admission, channel_capacity) = (config.admission.clone(), config.channel_capacity);
        let stats = Arc::new(ServerStats::new(config.shard_count()));
        let drain = Arc::new(DrainSignal::new()?);
        let shard_config = ShardConfig {
            tls: tls.clone(),
            ..config.shard_config()
        };
        let batch_scheduling = config.batch_scheduling;
        let running = start(
            config,
            shard_config,
            source,
            Arc::new(make_app),
            &stats,
            &drain,
        )?;
        let sockets = running.sockets.clone();
        let controls = running.supervisor.controls();
        let shard_config = running.supervisor.shard_config();
        // The admin port answers until the server has stopped: through the drain.
        let admin = match admin_port {
            Some(port) => Some(port.start(admin::Sources::new(
                stats.clone(),
                drain.clone(),
                Capacity::new(running.acceptor.is_some(), &admission, channel_capacity),
            ))?),
            None => None,
        };
        let admin_socket = admin.as_ref().map(admin::Admin::socket);
        let drainer = drain.clone();
        // Dropped when the thread ends, however it ends: what `serve_until` waits for.
        let (finished, stopped) = flume::bounded::<()>(1);
        let thread = std::thread::Builder::new()
            .name("acceptor".into())
            .spawn(move || {
                let _finished = finished;
                if batch_scheduling {
                    sched_policy::serve_in_batches();
                }
                running.run_to_end(&drainer);
                drop(admin);
            })?;
        Ok(ServerHandle {
            control: ServerControl {
                sockets,
                admin: admin_socket,
                drain,
                controls,
                shard_config,
            },
            admin_addr,
            stats,
            thread: Some(thread),
            stopped,
            tls,
        })
    }
}

/// Where a [`Server`]'s connections come from: a [`BoundSocket`] (its
/// listeners wrapped or not) or a [`CustomListener`]. Sealed: the two are
/// all there is.
pub trait ConnectionSource: sealed::Sealed {}

mod sealed {
    use std::io;
    use std::os::fd::OwnedFd;
    use std::sync::Arc;

    use shardd_shards::listeners::{BuiltinListener, HandoffConn};
    use shardd_shards::runtime::flume;
    use shardd_shards::{App, Listener, ShardInfo};

    use super::Sockets;
    use crate::supervisor::ShardRunner;

    /// What `Server::serve` needs of a source; not nameable outside the crate.
    pub trait Sealed {
        /// The listening sockets; `None` for a custom listener.
        fn sockets(&self) -> Option<&Arc<Sockets>>;
        /// For the start-up line.
        fn mode(&self) -> &'static str;
        /// The socket the acceptor will own, in handoff mode.
        fn take_handoff_socket(&mut self) -> Option<OwnedFd>;
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

    /// What a shard of a [`BoundSocket`](super::BoundSocket) serves, built
    /// from its [`BuiltinListener`].
    pub trait WrapBuiltin: Send + Sync + 'static {
        /// The listener served.
        type Listener: Listener;
        /// Build it on the shard's thread.
        fn wrap(&self, shard: &ShardInfo, builtin: BuiltinListener) -> io::Result<Self::Listener>;
    }
}

impl sealed::WrapBuiltin for Unwrapped {
    type Listener = BuiltinListener;

    fn wrap(&self, _: &ShardInfo, builtin: BuiltinListener) -> io::Result<BuiltinListener> {
        Ok(builtin)
    }
}

impl<WF, L> sealed::WrapBuiltin for Wrapped<WF, L>
where
    WF: Fn(&ShardInfo, BuiltinListener) -> io::Result<L> + Send + Sync + 'static,
    L: Listener,
{
    type Listener = L;

    fn wrap(&self, shard: &ShardInfo, builtin: BuiltinListener) -> io::Result<L> {
        (self.wrap)(shard, builtin)
    }
}

impl<W: sealed::WrapBuiltin> ConnectionSource for BoundSocket<W> {}

impl<W: sealed::WrapBuiltin> sealed::Sealed for BoundSocket<W> {
    fn sockets(&self) -> Option<&Arc<Sockets>> {
        Some(&self.sockets)
    }

    fn mode(&self) -> &'static str {
        match self.mode {
            Bound::Handoff(_) => "handoff",
            Bound::ReusePort => "reuseport",
        }
    }

    fn take_handoff_socket(&mut self) -> Option<OwnedFd> {
        match &mut self.mode {
            Bound::Handoff(socket) => socket.take(),
            Bound::ReusePort => None,
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
        let wrap = Arc::new(self.wrap);
        match self.mode {
            Bound::Handoff(_) => Arc::new(move |setup: ShardSetup| {
                let channel = handoff[setup.info.shard_id].clone();
                run_shard(
                    setup,
                    |info| wrap.wrap(info, handoff_listener(channel)),
                    |info| make_app(info),
                )
            }),
            Bound::ReusePort => {
                let sockets = self.sockets;
                let addr = sockets.addr.tcp().expect("reuseport sockets are TCP");
                Arc::new(move |setup: ShardSetup| {
                    // A duplicate of the shard's socket (the same one after a
                    // restart), or a new one if the server is already draining.
                    let duplicate = |info: &ShardInfo| {
                        let copies = sockets.reuseport.lock().unwrap_or_else(|e| e.into_inner());
                        copies[info.shard_id].as_ref().map(TcpListener::try_clone)
                    };
                    run_shard(
                        setup,
                        |info| {
                            let socket = match duplicate(info) {
                                Some(socket) => ReusePort::from_listener(socket?),
                                None => ReusePort::bind(addr, backlog),
                            }?;
                            wrap.wrap(info, BuiltinListener::reuseport(socket))
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
    fn sockets(&self) -> Option<&Arc<Sockets>> {
        None
    }

    fn mode(&self) -> &'static str {
        "custom"
    }

    fn take_handoff_socket(&mut self) -> Option<OwnedFd> {
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
    let Some(socket) = source.take_handoff_socket() else {
        let runner = source.runner(make_app, Vec::new(), backlog);
        let supervisor = Supervisor::start(
            cores,
            &stats.shards,
            shard_config,
            None,
            runner,
            config.batch_scheduling,
        )?;
        return Ok(Running {
            supervisor,
            acceptor: None,
            access_log,
            summary,
            sockets,
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
        config.batch_scheduling,
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

/// How long after the drain the access-log writer may take to write what
/// the shards handed it last.
const ACCESS_LOG_GRACE: Duration = Duration::from_secs(1);

/// A started server: shards running, acceptor (if any) ready to run.
struct Running {
    supervisor: Supervisor,
    acceptor: Option<Acceptor>,
    access_log: Option<AccessLogWriter>,
    summary: String,
    sockets: Option<Arc<Sockets>>,
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
        log::info!("stopped");
    }
}

/// A running server. Dropping it drains the server and waits for it.
pub struct ServerHandle {
    control: ServerControl,
    admin_addr: Option<SocketAddr>,
    stats: Arc<ServerStats>,
    thread: Option<JoinHandle<()>>,
    /// Disconnected once the server has stopped (its sender ends with `thread`).
    stopped: flume::Receiver<()>,
    tls: Option<Arc<TlsContext>>,
}

/// Changes a running server from another thread (a signal handler, say):
/// new limits, and handing its sockets over to a new process. Cheap to
/// clone; from [`ServerHandle::control`].
#[derive(Clone)]
pub struct ServerControl {
    sockets: Option<Arc<Sockets>>,
    /// The admin port's socket, when there is one: passed on in an upgrade too.
    admin: Option<AdminSocket>,
    drain: Arc<DrainSignal>,
    controls: Vec<flume::Sender<ShardCommand>>,
    /// What a shard (re)started from now on is given.
    shard_config: Arc<Mutex<ShardConfig>>,
}

impl ServerHandle {
    /// The bound TCP address (`None` on a Unix socket or a custom listener).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listen_addr().and_then(|addr| addr.tcp())
    }

    /// What the server listens on, TCP or Unix (`None` on a custom listener).
    pub fn listen_addr(&self) -> Option<&BindAddr> {
        self.control.sockets.as_ref().map(|sockets| &sockets.addr)
    }

    /// The admin port's address, when [`Config::admin`] is set (useful with port 0).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Current stats of the acceptor and every shard.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Start the drain and return at once: no new connections, requests in
    /// flight finish (answered with `Connection: close`), idle connections close.
    pub fn drain(&self) {
        self.control.drain.trigger();
    }

    /// Read the TLS certificate and key files again: new handshakes use
    /// them, open connections keep theirs. On error (the message names the
    /// file) the certificate in force is kept. Without TLS, an error.
    pub fn reload_tls(&self) -> Result<(), Error> {
        match self.tls_reloader() {
            Some(reloader) => reloader.reload(),
            None => Err(Error::InvalidSetting("tls is not configured")),
        }
    }

    /// Something that reloads the TLS certificate from another thread
    /// (SIGHUP, say); `None` without TLS.
    pub fn tls_reloader(&self) -> Option<TlsReloader> {
        self.tls.clone().map(TlsReloader)
    }

    /// Something that starts the drain from another thread (a signal handler, say).
    pub fn drain_trigger(&self) -> DrainTrigger {
        DrainTrigger(self.control.drain.clone())
    }

    /// Something that changes the server from another thread: limits, an upgrade.
    pub fn control(&self) -> ServerControl {
        self.control.clone()
    }

    /// Serve until SIGINT or SIGTERM (Ctrl-C), then drain, and return once
    /// every shard has stopped: [`serve_until`](Self::serve_until) with
    /// [`shutdown_signal()`](crate::shutdown_signal). What `fn main` of a
    /// server calls last.
    ///
    /// A second SIGINT or SIGTERM during the drain ends the process at
    /// once, with exit code 130 (SIGINT) or 143 (SIGTERM). The library
    /// prints nothing: the signal and the drain are logged through `log`
    /// (level info), for whatever logger the program installs.
    ///
    /// ```no_run
    /// use shardd::{app_fn, Config, Response, Server};
    ///
    /// let handle = Server::bind(Config::default())?.serve(|_shard| app_fn(|_req| Response::text("hi\n")))?;
    /// println!("serving on http://{} (Ctrl-C to stop)", handle.local_addr().unwrap());
    /// handle.wait_for_shutdown()?;
    /// println!("stopped");
    /// # Ok::<(), shardd::Error>(())
    /// ```
    ///
    /// Errors: the signal handlers cannot be installed ([`Error::Start`]),
    /// or see [`serve_until`](Self::serve_until).
    pub fn wait_for_shutdown(self) -> Result<(), Error> {
        // Before the handlers are installed: from async code, leave the signals as they are.
        refuse_async_code()?;
        let signal = shutdown_signal::listen()?;
        self.serve_until(signal)
    }

    /// Serve until `shutdown` completes, then drain — requests in flight
    /// finish (answered with `Connection: close`), idle connections close,
    /// as [`stop`](Self::stop) does — and return once every shard has
    /// stopped. It also returns when the server stops without `shutdown`
    /// (a [`DrainTrigger`], an upgrade's [`ServerControl::drain_after_upgrade`]);
    /// `shutdown` is then dropped unfinished.
    ///
    /// It blocks the calling thread, and polls `shutdown` there on a tokio
    /// current-thread runtime (timers and tokio I/O work in it). Call it
    /// from plain `fn main` or a thread of its own, not from async code:
    /// there, await the future yourself, then call [`drain`](Self::drain)
    /// and [`wait`](Self::wait) on a blocking thread.
    ///
    /// ```no_run
    /// use shardd::{app_fn, Config, Response, Server};
    ///
    /// let handle = Server::bind(Config::default())?.serve(|_shard| app_fn(|_req| Response::text("hi\n")))?;
    /// let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    /// std::thread::spawn(move || {
    ///     std::thread::sleep(std::time::Duration::from_secs(60));
    ///     let _ = stop.send(());
    /// });
    /// handle.serve_until(async {
    ///     let _ = stopped.await;
    /// })?;
    /// # Ok::<(), shardd::Error>(())
    /// ```
    ///
    /// Errors: [`Error::BlockingInAsync`] if the calling thread runs a tokio
    /// runtime (the server is drained and stopped before it returns);
    /// [`Error::Start`] if the runtime cannot be made.
    pub fn serve_until(self, shutdown: impl Future<Output = ()>) -> Result<(), Error> {
        refuse_async_code()?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let stopped = self.stopped.clone();
        let asked_to_stop = runtime.block_on(async {
            tokio::select! {
                () = shutdown => true,
                _ = stopped.recv_async() => false,
            }
        });
        drop(runtime);
        if asked_to_stop {
            log::info!("draining: requests in flight finish, idle connections close");
        }
        self.stop();
        Ok(())
    }

    /// Block until the server has stopped: after [`drain`](Self::drain) (or a
    /// [`DrainTrigger`]), once every shard has drained. Signals are not
    /// caught: to stop on Ctrl-C, use [`wait_for_shutdown`](Self::wait_for_shutdown).
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
        self.control
            .controls
            .get(index)
            .ok_or_else(|| format!("no shard {index}"))?
            .send(ShardCommand::Kill)
            .map_err(|_| format!("shard {index} is not listening for commands"))
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        self.control.drain.trigger();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl ServerControl {
    /// Enforce `limits` on every shard from now on (a configuration
    /// reload): new connections get them, open ones from their next read of
    /// a limit. A shard restarted later starts with them too.
    pub fn set_limits(&self, limits: Limits) -> Result<(), Error> {
        Config {
            limits: limits.clone(),
            ..Config::default()
        }
        .validate()?;
        self.shard_config
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .limits = limits.clone();
        for control in &self.controls {
            let _ = control.send(ShardCommand::SetLimits(limits.clone()));
        }
        Ok(())
    }

    /// Whether the drain has started.
    pub fn is_draining(&self) -> bool {
        self.drain.is_triggered()
    }

    /// Duplicates of the listening sockets (close-on-exec), in order, each
    /// with the `LISTEN_FDNAMES` name to pass it under, for a new process
    /// that takes over with [`Server::from_listen_fds`] (the `shardd`
    /// binary's SIGUSR2 upgrade): the service sockets, then the admin
    /// port's (named `shardd-admin`), if any. Empty on a custom listener or
    /// once the server has stopped listening.
    ///
    /// From this call on the sockets count as shared: a drain no longer
    /// wakes the acceptor (or the admin port) with `shutdown(2)`, which
    /// would close them for the new process too (they see the drain within
    /// 100 ms instead).
    ///
    /// ```no_run
    /// use shardd::{systemd, Config, Server, TechEmpower};
    ///
    /// let mut config = Config::default();
    /// config.admin = Some("127.0.0.1:9090".parse()?);
    /// // SAFETY: first thing in main: nothing else owns descriptors 3 and up.
    /// let inherited = unsafe { systemd::take_listen_fds() }?;
    /// // The admin socket among them (named shardd-admin) goes to the admin port.
    /// let server = match inherited.is_empty() {
    ///     true => Server::bind(config)?,
    ///     false => Server::from_listen_fds(config, inherited)?,
    /// };
    /// let handle = server.serve(|_shard| TechEmpower)?;
    /// // Later, to hand over: pass these to the new process as LISTEN_FDS.
    /// let passed = handle.control().listen_fds_for_upgrade()?;
    /// let names: Vec<&str> = passed.iter().map(|fd| fd.name.as_str()).collect();
    /// assert_eq!(names, ["shardd-handoff", "shardd-admin"]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn listen_fds_for_upgrade(&self) -> Result<Vec<ListenFd>, Error> {
        let Some(sockets) = &self.sockets else {
            return Ok(Vec::new());
        };
        self.drain.listener_is_shared();
        let fds: Vec<OwnedFd> = match self.drain.duplicate_listener()? {
            Some(fd) => vec![fd],
            None => {
                let copies = sockets.reuseport.lock().unwrap_or_else(|e| e.into_inner());
                copies
                    .iter()
                    .flatten()
                    .map(|socket| socket.try_clone().map(OwnedFd::from))
                    .collect::<io::Result<_>>()?
            }
        };
        let mut passed: Vec<ListenFd> = fds
            .into_iter()
            .zip(&sockets.names)
            .map(|(fd, name)| ListenFd {
                fd,
                name: name.clone(),
            })
            .collect();
        // The admin socket goes with the service sockets, never alone.
        if let (Some(admin), false) = (&self.admin, passed.is_empty()) {
            passed.push(ListenFd {
                fd: admin.duplicate_for_upgrade()?,
                name: ADMIN_FD_NAME.to_owned(),
            });
        }
        Ok(passed)
    }

    /// A new process now serves on the sockets from
    /// [`listen_fds_for_upgrade`](Self::listen_fds_for_upgrade): leave the
    /// Unix socket file (if any) to it, stop answering on the admin port
    /// (the new process answers there; the socket stays open), and drain.
    pub fn drain_after_upgrade(&self) {
        if let Some(file) = self.sockets.as_ref().and_then(|s| s.unix_file.as_ref()) {
            file.keep();
        }
        if let Some(admin) = &self.admin {
            admin.stop_accepting();
        }
        self.drain.trigger();
    }
}

/// `serve_until` would block a thread that runs async tasks (and tokio
/// would panic at the nested runtime): a clear error instead.
fn refuse_async_code() -> Result<(), Error> {
    match tokio::runtime::Handle::try_current() {
        Ok(_) => Err(Error::BlockingInAsync),
        Err(_) => Ok(()),
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
