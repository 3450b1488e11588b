//! `Handoff`: the default listener, fed by the main thread's acceptor.

use std::io;
use std::os::fd::OwnedFd;

use super::TcpConn;
use crate::listener::{Accepted, Listener, PeerAddr};

/// A connection the acceptor accepted, on its way to a shard.
#[derive(Debug)]
pub struct HandoffConn {
    /// The connected stream socket, TCP or Unix domain; already
    /// non-blocking and close-on-exec (accept4).
    pub stream: OwnedFd,
    /// From accept4 itself, so the shard needs no getpeername call.
    pub peer: PeerAddr,
}

/// Receives this shard's connections from the acceptor's channel.
///
/// The channel closes when the acceptor stops (shutdown); connections still
/// queued are served first, so nothing accepted is dropped. Only the server
/// builds one (as a [`BuiltinListener`](super::BuiltinListener), through
/// [`runtime::handoff_listener`](crate::runtime::handoff_listener)): its
/// channel is the acceptor's.
#[derive(Debug)]
pub struct Handoff {
    channel: flume::Receiver<HandoffConn>,
}

impl Handoff {
    /// A listener over this shard's end of the acceptor's channel.
    pub(crate) fn new(channel: flume::Receiver<HandoffConn>) -> Self {
        Handoff { channel }
    }
}

/// The listener of a shard fed by the acceptor over `channel`. The channel
/// is of the `flume` this crate re-exports as [`runtime::flume`](crate::runtime::flume).
pub fn handoff_listener(channel: flume::Receiver<HandoffConn>) -> super::BuiltinListener {
    super::BuiltinListener::handoff(Handoff::new(channel))
}

impl Listener for Handoff {
    type Conn = TcpConn;

    fn plain_socket(conn: &mut TcpConn) -> Option<&mut TcpConn> {
        Some(conn)
    }

    async fn accept(&mut self) -> io::Result<Option<Accepted<TcpConn>>> {
        // try_recv first: a busy shard drains its queue without registering a
        // waker, so the acceptor does not wake a shard that is already awake.
        let handed = match self.channel.try_recv() {
            Ok(handed) => handed,
            Err(flume::TryRecvError::Disconnected) => return Ok(None),
            Err(flume::TryRecvError::Empty) => match self.channel.recv_async().await {
                Ok(handed) => handed,
                Err(flume::RecvError::Disconnected) => return Ok(None),
            },
        };
        // `queued` drops when the connection is registered as open on the
        // shard (connection::Registration), so the load never reads low.
        let conn = TcpConn::from_fd(handed.stream)?;
        Ok(Some(Accepted {
            conn,
            peer: handed.peer,
        }))
    }
}
