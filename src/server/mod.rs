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
//! ([`ServerControl::listen_fds_for_upgrade`]).
//!
//! Read top-down:
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | [`Server`]: its constructors and [`Server::serve`] |
//! | `sockets.rs` | what it listens on: the sockets bound or inherited |
//! | `source.rs` | where connections come from ([`ConnectionSource`]) and the one path that starts a shard over them |
//! | `running.rs` | start-up (shards, acceptor) and the end (accept until the drain, then drain) |
//! | `handle.rs` | the running server: [`ServerHandle`], [`ServerControl`], [`DrainTrigger`]; how it stops |

mod handle;
mod running;
mod sockets;
mod source;

use std::io;
use std::marker::PhantomData;
use std::net::SocketAddr;
use std::sync::Arc;

use shardd_shards::listeners::{BuiltinListener, TlsContext};
use shardd_shards::runtime::{flume, ShardConfig};
use shardd_shards::{App, Listener, ShardInfo};

use crate::admin::{self, AdminPort, Capacity, InheritedAdmin, ADMIN_FD_NAME};
use crate::bind_addr::BindAddr;
use crate::config::Config;
use crate::dependency::Dependency;
use crate::drain_signal::DrainSignal;
use crate::error::Error;
use crate::sched_policy;
use crate::stats::ServerStats;
use crate::systemd::ListenFd;
use crate::tls;

/// The target of every log line of this module's files: `shardd::server`,
/// as before it was split, so the filters (`RUST_LOG=shardd::server=...`)
/// and log shippers that match on it keep working.
const LOG_TARGET: &str = "shardd::server";

pub use handle::{DrainTrigger, ServerControl, ServerHandle};
use running::start;
use sockets::{Bound, Sockets};
pub use source::{BoundSocket, ConnectionSource, CustomListener, Unwrapped, Wrapped};

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
    /// What `/health/ready` and `/metrics` report beside the server itself.
    dependencies: Vec<Arc<dyn Dependency>>,
}

impl Server<BoundSocket> {
    /// Validate `config` and bind its address: a TCP address, or a Unix
    /// socket file (`unix:/path`, handoff mode only).
    pub fn bind(config: Config) -> Result<Self, Error> {
        config.validate()?;
        let tls = tls::load(&config)?;
        let (mode, sockets) = Sockets::bind(&config)?;
        Ok(Server::over_sockets(config, tls, mode, sockets))
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
        let (mode, sockets) = Sockets::inherit(&config, fds)?;
        Ok(Server::over_sockets(config, tls, mode, sockets))
    }

    /// A server over sockets bound or inherited: where both constructors meet.
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
            dependencies: Vec::new(),
        }
    }

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
            dependencies,
        } = self;
        Server {
            config,
            tls,
            inherited_admin,
            dependencies,
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
            dependencies: Vec::new(),
        })
    }
}

impl<S: ConnectionSource> Server<S> {
    /// Report `dependency` on the admin port: `/health/ready` answers 503
    /// (`unavailable: NAME`) while it is not ready, so a load balancer
    /// sends requests elsewhere, and `/metrics` carries its figures.
    /// Shards keep serving meanwhile (what needs it gets its own 503).
    pub fn with_dependency(mut self, dependency: Arc<dyn Dependency>) -> Self {
        self.dependencies.push(dependency);
        self
    }

    /// The TCP address bound (useful with port 0); `None` on a Unix socket
    /// or a custom listener.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listen_addr().and_then(|addr| addr.tcp())
    }

    /// What the server listens on, TCP or Unix; `None` on a custom listener.
    pub fn listen_addr(&self) -> Option<&BindAddr> {
        self.source.sockets().map(|sockets| &sockets.addr)
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
            dependencies,
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
                dependencies,
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
