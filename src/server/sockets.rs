//! What a server listens on: the sockets [`Server::bind`](super::Server::bind)
//! binds, or those [`Server::from_listen_fds`](super::Server::from_listen_fds)
//! takes over (systemd socket activation, or the shardd an upgrade
//! replaces). Both end in the same [`Sockets`] and [`Bound`]; the system
//! calls themselves are in `crate::socket`.

use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::sync::Mutex;

use shardd_shards::listeners::reuseport_socket;

use crate::bind_addr::BindAddr;
use crate::config::{Config, ListenerMode};
use crate::error::Error;
use crate::socket::{
    bind_listener, bind_unix, defer_accept, ensure_nothing_listens, inspect_inherited,
    prepare_for_acceptor, UnixSocketFile,
};
use crate::systemd::ListenFd;

/// `LISTEN_FDNAMES` name of a socket an upgrading shardd in handoff mode passes on.
const HANDOFF_FD_NAME: &str = "shardd-handoff";
/// `LISTEN_FDNAMES` name of the per-shard sockets of a shardd in reuseport mode.
const REUSEPORT_FD_NAME: &str = "shardd-reuseport";

/// The name this shardd gives its sockets when it passes them on.
fn fd_name(mode: ListenerMode) -> &'static str {
    match mode {
        ListenerMode::Handoff => HANDOFF_FD_NAME,
        ListenerMode::Reuseport => REUSEPORT_FD_NAME,
    }
}

/// Who accepts on the sockets.
pub(super) enum Bound {
    /// The main thread's listening socket (TCP or Unix), until the acceptor takes it.
    Handoff(Option<OwnedFd>),
    /// One `SO_REUSEPORT` socket per shard, bound up front so errors show at
    /// start; each shard accepts on a duplicate (see [`Sockets::reuseport`]).
    ReusePort,
}

/// What the server, its handle and an upgrade know of the listening sockets.
pub struct Sockets {
    /// What is listened on (the port resolved).
    pub(super) addr: BindAddr,
    /// Inherited, so shared with another process (systemd, or the shardd
    /// this one replaced): a drain must never shut them down.
    pub(super) inherited: bool,
    /// The `LISTEN_FDNAMES` name of each socket, to pass on in an upgrade.
    pub(super) names: Vec<String>,
    /// The Unix socket file to remove when the server stops.
    pub(super) unix_file: Option<UnixSocketFile>,
    /// Reuseport mode: the main thread's copy of each shard's socket. A
    /// shard accepts on a duplicate, so one restarted after its thread died
    /// takes over the same socket (nothing queued in it is lost), and an
    /// upgrade can pass them on. Emptied when the drain starts, so that a
    /// shard that stops accepting closes its socket for good.
    pub(super) reuseport: Mutex<Vec<Option<TcpListener>>>,
}

impl Sockets {
    /// Bind `config.bind`: a TCP address, or a Unix socket file (handoff mode only).
    pub(super) fn bind(config: &Config) -> Result<(Bound, Sockets), Error> {
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
                let listener = bind_listener(addr, config.backlog).map_err(bind_error(addr))?;
                if config.defer_accept {
                    defer_accept(&listener)?;
                }
                let local_addr = listener.local_addr()?;
                let socket = OwnedFd::from(listener);
                prepare_for_acceptor(&socket)?;
                (Bound::Handoff(Some(socket)), local_addr.into(), Vec::new())
            }
            (&BindAddr::Tcp(addr), ListenerMode::Reuseport) => {
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
        let sockets = Sockets {
            addr,
            inherited: false,
            names: vec![fd_name(config.listener).to_owned(); reuseport.len().max(1)],
            unix_file,
            reuseport: Mutex::new(reuseport),
        };
        Ok((mode, sockets))
    }

    /// Take over the service sockets passed to this process (the admin
    /// port's already set apart): one in handoff mode, one per shard in
    /// reuseport mode, from a shardd of the same listener mode if from one.
    pub(super) fn inherit(config: &Config, fds: Vec<ListenFd>) -> Result<(Bound, Sockets), Error> {
        let ours = fd_name(config.listener);
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
                target: super::LOG_TARGET,
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
        Ok((mode, sockets))
    }

    /// A duplicate of shard `shard_id`'s reuseport socket, while the server
    /// still listens (`None` once [`close`](Self::close) has run).
    pub(super) fn duplicate_reuseport(
        &self,
        shard_id: usize,
    ) -> Option<std::io::Result<TcpListener>> {
        let copies = self.reuseport.lock().unwrap_or_else(|e| e.into_inner());
        copies[shard_id].as_ref().map(TcpListener::try_clone)
    }

    /// Duplicates of every reuseport socket (empty in handoff mode or once closed).
    pub(super) fn duplicate_all_reuseport(&self) -> std::io::Result<Vec<OwnedFd>> {
        let copies = self.reuseport.lock().unwrap_or_else(|e| e.into_inner());
        copies
            .iter()
            .flatten()
            .map(|socket| socket.try_clone().map(OwnedFd::from))
            .collect()
    }

    /// The server stops listening: close the main thread's copies, remove the socket file.
    pub(super) fn close(&self) {
        let mut reuseport = self.reuseport.lock().unwrap_or_else(|e| e.into_inner());
        reuseport.iter_mut().for_each(|socket| *socket = None);
        if let Some(file) = &self.unix_file {
            file.remove();
        }
    }
}

/// The error of a failed bind, naming the address.
fn bind_error(addr: SocketAddr) -> impl Fn(std::io::Error) -> Error {
    move |source| Error::Bind {
        addr: addr.into(),
        source,
    }
}
