//! `Connection`: one connection's socket and state between turns, what
//! each part of the loop (the turn, uploads, streams) works on through
//! its methods.

use super::budget::Budget;
use super::wait::Wait;
use crate::buffers::BufferLease;
use crate::env::ShardEnv;
use crate::http::RequestReader;
use crate::listener::PeerAddr;
use crate::listeners::TcpConn;

/// How to reach the plain socket under a connection of type `C`, if any
/// (its listener's [`Listener::plain_socket`](crate::Listener::plain_socket)).
pub(crate) type PlainSocket<C> = fn(&mut C) -> Option<&mut TcpConn>;

/// One connection: its socket, who is on the other end, and its state
/// between turns.
pub(super) struct Connection<'e, C> {
    pub(super) env: &'e ShardEnv,
    pub(super) io: C,
    /// The plain socket under `io`, if file bodies may be sent with
    /// `sendfile(2)` (its listener's [`Listener::plain_socket`](crate::Listener::plain_socket)).
    pub(super) plain_socket: PlainSocket<C>,
    pub(super) peer: PeerAddr,
    pub(super) lease: BufferLease<'e>,
    pub(super) reader: RequestReader,
    pub(super) wait: Wait,
    pub(super) budget: Budget,
}

impl<'e, C> Connection<'e, C> {
    pub(super) fn new(
        io: C,
        plain_socket: PlainSocket<C>,
        peer: PeerAddr,
        env: &'e ShardEnv,
    ) -> Self {
        Connection {
            env,
            io,
            plain_socket,
            peer,
            lease: BufferLease::new(&env.pool),
            reader: RequestReader::offering_heads(),
            wait: Wait::new(),
            budget: Budget::new(),
        }
    }

    /// Whether the client sent bytes not yet answered.
    pub(super) fn has_unread(&mut self) -> bool {
        match self.lease.held() {
            Some(buffers) => self.reader.has_buffered(&buffers.input),
            None => false,
        }
    }

    /// Give up the connection to another protocol (an upgrade's handler):
    /// its socket, and what the client sent after the last request read.
    pub(super) fn hand_off(mut self) -> (C, Vec<u8>) {
        let unread = match self.lease.held() {
            Some(buffers) => self.reader.unconsumed(&buffers.input).to_vec(),
            None => Vec::new(),
        };
        (self.io, unread)
    }
}
