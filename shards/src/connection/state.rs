//! `Connection`: one connection's state between turns, what each part of
//! the loop (the turn, uploads, streams) works on.

use super::budget::Budget;
use super::wait::Wait;
use crate::buffers::BufferLease;
use crate::env::ShardEnv;
use crate::http::RequestReader;

/// One connection's state between turns.
pub(super) struct Connection<'e> {
    pub(super) env: &'e ShardEnv,
    pub(super) lease: BufferLease<'e>,
    pub(super) reader: RequestReader,
    pub(super) wait: Wait,
    pub(super) budget: Budget,
}
