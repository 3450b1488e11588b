//! Where a [`Server`](super::Server)'s connections come from, and how each
//! shard is started over them: a [`BoundSocket`] (handoff or reuseport, its
//! listener wrapped or not) or a [`CustomListener`].
//!
//! Every source ends in one [`ShardRunner`]: a closure that builds the
//! shard's listener on its own thread and runs the shard over it. For a
//! bound socket that is one path whatever the mode: build the shard's
//! [`BuiltinListener`] (see [`Builtin`]), wrap it, run.

use std::io;
use std::marker::PhantomData;
use std::os::fd::OwnedFd;
use std::sync::Arc;

use shardd_shards::listeners::{BuiltinListener, HandoffConn, ReusePort};
use shardd_shards::runtime::flume;
use shardd_shards::runtime::{handoff_listener, run_shard, ShardSetup};
use shardd_shards::{App, Listener, ShardInfo};

use super::sockets::{Bound, Sockets};
use crate::supervisor::ShardRunner;

/// Connections from the address in [`Config::bind`](crate::Config::bind)
/// (or from inherited sockets): accepted by the main thread and handed off,
/// or accepted by each shard (`listener = "reuseport"`); each shard's
/// [`BuiltinListener`] used as it is, or wrapped
/// ([`Server::wrap_listener`](super::Server::wrap_listener)).
pub struct BoundSocket<W = Unwrapped> {
    pub(super) mode: Bound,
    pub(super) sockets: Arc<Sockets>,
    pub(super) wrap: W,
}

/// Each shard serves its [`BuiltinListener`] as it is.
pub struct Unwrapped;

/// Each shard serves the listener a function builds around its
/// [`BuiltinListener`] ([`Server::wrap_listener`](super::Server::wrap_listener)).
pub struct Wrapped<WF, L> {
    pub(super) wrap: WF,
    pub(super) listener: PhantomData<fn() -> L>,
}

/// Connections from a [`Listener`] built on each shard by a factory; no
/// socket is bound by the server and no acceptor runs.
pub struct CustomListener<LF, L> {
    pub(super) make_listener: LF,
    pub(super) listener: PhantomData<fn() -> L>,
}

/// Where a [`Server`](super::Server)'s connections come from: a
/// [`BoundSocket`] (its listeners wrapped or not) or a [`CustomListener`].
/// Sealed: the two are all there is.
pub trait ConnectionSource: sealed::Sealed {}

pub(super) mod sealed {
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

/// How each shard of a [`BoundSocket`] gets its [`BuiltinListener`].
enum Builtin {
    /// Its end of the acceptor's channel.
    Handoff(Vec<flume::Receiver<HandoffConn>>),
    /// A duplicate of its own `SO_REUSEPORT` socket.
    ReusePort { sockets: Arc<Sockets>, backlog: i32 },
}

impl Builtin {
    /// Shard `info`'s listener; on its own thread, again after a restart.
    fn build(&self, info: &ShardInfo) -> io::Result<BuiltinListener> {
        match self {
            Builtin::Handoff(channels) => Ok(handoff_listener(channels[info.shard_id].clone())),
            Builtin::ReusePort { sockets, backlog } => {
                // The same socket after a restart, or a new one if the
                // server is already draining (its copies are closed).
                let socket = match sockets.duplicate_reuseport(info.shard_id) {
                    Some(socket) => ReusePort::from_listener(socket?),
                    None => {
                        let addr = sockets.addr.tcp().expect("reuseport sockets are TCP");
                        ReusePort::bind(addr, *backlog)
                    }
                }?;
                Ok(BuiltinListener::reuseport(socket))
            }
        }
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
        let builtin = match self.mode {
            Bound::Handoff(_) => Builtin::Handoff(handoff),
            Bound::ReusePort => Builtin::ReusePort {
                sockets: self.sockets,
                backlog,
            },
        };
        let wrap = self.wrap;
        Arc::new(move |setup: ShardSetup| {
            run_shard(
                setup,
                |info| wrap.wrap(info, builtin.build(info)?),
                |info| make_app(info),
            )
        })
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
        let make_listener = self.make_listener;
        Arc::new(move |setup: ShardSetup| {
            run_shard(setup, |info| make_listener(info), |info| make_app(info))
        })
    }
}
