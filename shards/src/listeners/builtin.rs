//! `BuiltinListener`: the listener a bound server builds on each shard,
//! whichever the listener mode, as one type a decorator can wrap.

use std::io;

use super::{Handoff, ReusePort, TcpConn};
use crate::listener::{Accepted, Listener};

/// The listener a server bound to an address gives each shard: connections
/// handed off by the main thread's acceptor (`listener = "handoff"`,
/// admission control included), or accepted on the shard's own
/// `SO_REUSEPORT` socket (`listener = "reuseport"`).
///
/// It is what `shardd::Server::wrap_listener`'s closure receives, to wrap
/// in a listener of its own (a [`ProxyProtocol`](super::ProxyProtocol),
/// say); the acceptor, admission, drain and binary upgrade work as without
/// the wrapper.
#[derive(Debug)]
pub struct BuiltinListener(Mode);

#[derive(Debug)]
enum Mode {
    Handoff(Handoff),
    ReusePort(ReusePort),
}

impl BuiltinListener {
    /// Connections from the main thread's acceptor.
    pub(crate) fn handoff(listener: Handoff) -> Self {
        BuiltinListener(Mode::Handoff(listener))
    }

    /// Connections from the shard's own socket.
    pub fn reuseport(listener: ReusePort) -> Self {
        BuiltinListener(Mode::ReusePort(listener))
    }

    /// `"handoff"` or `"reuseport"`.
    pub fn mode(&self) -> &'static str {
        match self.0 {
            Mode::Handoff(_) => "handoff",
            Mode::ReusePort(_) => "reuseport",
        }
    }
}

impl Listener for BuiltinListener {
    type Conn = TcpConn;

    fn plain_socket(conn: &mut TcpConn) -> Option<&mut TcpConn> {
        Some(conn)
    }

    async fn accept(&mut self) -> io::Result<Option<Accepted<TcpConn>>> {
        match &mut self.0 {
            Mode::Handoff(listener) => listener.accept().await,
            Mode::ReusePort(listener) => listener.accept().await,
        }
    }

    fn stop_accepting(&mut self) {
        match &mut self.0 {
            Mode::Handoff(listener) => listener.stop_accepting(),
            Mode::ReusePort(listener) => listener.stop_accepting(),
        }
    }
}
