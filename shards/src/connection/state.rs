//! `Connection`: one connection's socket and state between turns, what
//! each part of the loop (the turn, uploads, streams) works on through
//! its methods.

use super::budget::Budget;
use super::wait::Wait;
use crate::buffers::BufferLease;
use crate::env::ShardEnv;
use crate::http::RequestReader;
use crate::listener::PeerAddr;

/// One connection: its socket, who is on the other end, and its state
/// between turns.
pub(super) struct Connection<'e, C> {
    pub(super) env: &'e ShardEnv,
    pub(super) io: C,
    pub(super) peer: PeerAddr,
    pub(super) lease: BufferLease<'e>,
    pub(super) reader: RequestReader,
    pub(super) wait: Wait,
    pub(super) budget: Budget,
}

impl<'e, C> Connection<'e, C> {
    pub(super) fn new(io: C, peer: PeerAddr, env: &'e ShardEnv) -> Self {
        Connection {
            env,
            io,
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
