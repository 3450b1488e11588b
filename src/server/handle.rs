//! A running server, seen from outside: [`ServerHandle`] (owned by whoever
//! started it), [`ServerControl`] and [`DrainTrigger`] (cheap clones for
//! other threads).
//!
//! Stopping has one word, *drain*: every way to stop a server starts the
//! same drain and differs only in who starts it and whether it waits (the
//! table is in [`ServerHandle::drain`]'s docs). `stop` and `Drop` keep
//! their names because they say what the caller gets (the server gone);
//! `DrainTrigger` is the drain handed to another thread.

use std::future::Future;
use std::net::SocketAddr;
use std::os::fd::OwnedFd;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use shardd_shards::listeners::TlsContext;
use shardd_shards::runtime::flume;
use shardd_shards::runtime::{ShardCommand, ShardConfig};
use shardd_shards::Limits;

use super::sockets::Sockets;
use super::LOG_TARGET;
use crate::admin::{AdminSocket, ADMIN_FD_NAME};
use crate::bind_addr::BindAddr;
use crate::drain_signal::DrainSignal;
use crate::error::Error;
use crate::shutdown_signal;
use crate::stats::{ServerStats, StatsSnapshot};
use crate::systemd::ListenFd;
use crate::tls::TlsReloader;

/// A running server. Dropping it drains the server and waits for it
/// (as [`stop`](Self::stop)); every way to stop it is a drain (see the
/// table in [`ServerHandle::drain`]).
pub struct ServerHandle {
    pub(super) control: ServerControl,
    pub(super) admin_addr: Option<SocketAddr>,
    pub(super) stats: Arc<ServerStats>,
    pub(super) thread: Option<JoinHandle<()>>,
    /// Disconnected once the server has stopped (its sender ends with `thread`).
    pub(super) stopped: flume::Receiver<()>,
    pub(super) tls: Option<Arc<TlsContext>>,
}

/// Changes a running server from another thread (a signal handler, say):
/// new limits, and handing its sockets over to a new process. Cheap to
/// clone; from [`ServerHandle::control`].
#[derive(Clone)]
pub struct ServerControl {
    pub(super) sockets: Option<Arc<Sockets>>,
    /// The admin port's socket, when there is one: passed on in an upgrade too.
    pub(super) admin: Option<AdminSocket>,
    pub(super) drain: Arc<DrainSignal>,
    pub(super) controls: Vec<flume::Sender<ShardCommand>>,
    /// What a shard (re)started from now on is given.
    pub(super) shard_config: Arc<Mutex<ShardConfig>>,
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

    /// The admin port's address, when [`Config::admin`](crate::Config::admin) is set (useful with port 0).
    pub fn admin_addr(&self) -> Option<SocketAddr> {
        self.admin_addr
    }

    /// Current stats of the acceptor and every shard.
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// Start the drain and return at once: no new connections, requests in
    /// flight finish (answered with `Connection: close`), idle connections close.
    ///
    /// Every way to stop a server is this drain; they differ in who starts
    /// it and whether they wait for it to end:
    ///
    /// | call | starts the drain | then |
    /// | --- | --- | --- |
    /// | `drain` | yes | returns at once |
    /// | [`wait`](Self::wait) | no (someone else does) | waits until drained |
    /// | [`stop`](Self::stop), or dropping the handle | yes | waits until drained |
    /// | [`serve_until`](Self::serve_until), [`wait_for_shutdown`](Self::wait_for_shutdown) | when the future (or SIGINT/SIGTERM) completes | waits until drained |
    /// | [`DrainTrigger::drain`] | yes, from another thread | returns at once |
    /// | [`ServerControl::drain_after_upgrade`] | yes, once a new process has the sockets | returns at once |
    pub fn drain(&self) {
        self.control.drain.start();
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
            log::info!(
                target: LOG_TARGET,
                "draining: requests in flight finish, idle connections close"
            );
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
        self.control.drain.start();
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
        limits.validate().map_err(Error::InvalidSetting)?;
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
        self.drain.has_started()
    }

    /// Duplicates of the listening sockets (close-on-exec), in order, each
    /// with the `LISTEN_FDNAMES` name to pass it under, for a new process
    /// that takes over with [`Server::from_listen_fds`](super::Server::from_listen_fds) (the `shardd`
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
            None => sockets.duplicate_all_reuseport()?,
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
        self.drain.start();
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
        self.0.start();
    }
}
