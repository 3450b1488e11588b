//! Per-connection buffers, lent from a shard-wide pool while a connection
//! is active and returned while it is idle.
//!
//! Tens of thousands of idle keep-alive connections (seed 002, c10k) should
//! cost a task each, not a task plus 16 KiB of buffers; a busy connection
//! takes its buffers back from the pool with one `Vec::pop`.

use std::cell::RefCell;

use crate::http::HeaderSpan;

/// Initial read buffer: 16 TechEmpower pipelined requests (≈2.7 KiB) fit twice.
pub const READ_CAPACITY: usize = 8 * 1024;
/// Initial output buffer: 16 plaintext responses (≈2.2 KiB) fit with room to spare.
pub const WRITE_CAPACITY: usize = 8 * 1024;

/// The buffers one connection needs while it is working.
#[derive(Debug, Default)]
pub struct ConnBuffers {
    /// Bytes read and not yet consumed.
    pub read: Vec<u8>,
    /// Encoded responses not yet written.
    pub write: Vec<u8>,
    /// Header positions of the request being handled.
    pub spans: Vec<HeaderSpan>,
    /// De-chunked body of the request being handled.
    pub body: Vec<u8>,
}

/// A shard-local free list of [`ConnBuffers`].
#[derive(Debug)]
pub struct BufferPool {
    free: RefCell<Vec<ConnBuffers>>,
    /// Keep at most this many sets; the rest are freed, so memory follows load back down.
    max_pooled: usize,
}

impl BufferPool {
    pub fn new(max_pooled: usize) -> Self {
        BufferPool {
            free: RefCell::new(Vec::new()),
            max_pooled,
        }
    }

    pub fn take(&self) -> ConnBuffers {
        self.free.borrow_mut().pop().unwrap_or_else(|| ConnBuffers {
            read: Vec::with_capacity(READ_CAPACITY),
            write: Vec::with_capacity(WRITE_CAPACITY),
            spans: Vec::with_capacity(16),
            body: Vec::new(),
        })
    }

    /// Return a set; buffers that grew for a large request are shrunk back.
    pub fn give(&self, mut buffers: ConnBuffers) {
        let mut free = self.free.borrow_mut();
        if free.len() >= self.max_pooled {
            return;
        }
        buffers.read.clear();
        buffers.write.clear();
        buffers.body.clear();
        if buffers.read.capacity() > 4 * READ_CAPACITY {
            buffers.read = Vec::with_capacity(READ_CAPACITY);
        }
        if buffers.write.capacity() > 4 * WRITE_CAPACITY {
            buffers.write = Vec::with_capacity(WRITE_CAPACITY);
        }
        if buffers.body.capacity() > 4 * READ_CAPACITY {
            buffers.body = Vec::new();
        }
        free.push(buffers);
    }

    /// Sets currently pooled (for tests and stats).
    pub fn pooled(&self) -> usize {
        self.free.borrow().len()
    }
}
