//! Per-connection buffers, lent from a shard-wide pool while a connection
//! is active and returned while it is idle.
//!
//! Tens of thousands of idle keep-alive connections (the c10k problem) should
//! cost a task each, not a task plus 16 KiB of buffers; a busy connection
//! takes its buffers back from the pool with one `Vec::pop`.

use std::cell::RefCell;

use crate::http::ReadBuffers;
use crate::output::Output;
use crate::response::Response;

/// Initial read buffer: 16 TechEmpower pipelined requests (≈2.7 KiB) fit twice.
pub(crate) const READ_CAPACITY: usize = 8 * 1024;
/// Initial output buffer: 16 plaintext responses (≈2.2 KiB) fit with room to spare.
pub(crate) const WRITE_CAPACITY: usize = 8 * 1024;

/// Buffer sets a shard keeps for reuse by default. 256 sets of about 16 KiB
/// are 4 MiB per shard: enough for every busy connection of a loaded shard
/// to find one, small enough that memory follows load back down.
pub(crate) const DEFAULT_POOLED: usize = 256;

/// The buffers one connection needs while it is working.
#[derive(Debug, Default)]
pub(crate) struct ConnBuffers {
    /// What the request reader decodes from.
    pub input: ReadBuffers,
    /// Encoded responses not yet written.
    pub(crate) output: Output,
    /// Where the app puts its response to the request being answered.
    /// Here rather than in the connection's task: the pool hands the same
    /// few sets from connection to connection, so this memory is in cache,
    /// and a task's is not when thousands of connections take turns.
    pub(crate) answer: Option<Response>,
}

/// A shard-local free list of [`ConnBuffers`], boxed: a keep-alive
/// connection takes a set and gives it back on every request, and moving
/// a pointer costs nothing where moving the set was three `memcpy` calls.
#[derive(Debug)]
pub(crate) struct BufferPool {
    #[allow(clippy::vec_box)] // the box is the point: sets move in and out
    free: RefCell<Vec<Box<ConnBuffers>>>,
    /// Keep at most this many sets; the rest are freed, so memory follows load back down.
    max_pooled: usize,
}

impl BufferPool {
    pub(crate) fn new(max_pooled: usize) -> Self {
        BufferPool {
            free: RefCell::new(Vec::new()),
            max_pooled,
        }
    }

    pub(crate) fn take(&self) -> Box<ConnBuffers> {
        self.free.borrow_mut().pop().unwrap_or_else(|| {
            Box::new(ConnBuffers {
                input: ReadBuffers {
                    bytes: Vec::with_capacity(READ_CAPACITY),
                    spans: Vec::with_capacity(16),
                    body: Vec::new(),
                    ..ReadBuffers::default()
                },
                output: Output::with_capacity(WRITE_CAPACITY),
                answer: None,
            })
        })
    }

    /// Return a set; buffers that grew for a large request are shrunk back.
    pub(crate) fn give(&self, mut buffers: Box<ConnBuffers>) {
        let mut free = self.free.borrow_mut();
        if free.len() >= self.max_pooled {
            return;
        }
        let input = &mut buffers.input;
        input.bytes.clear();
        input.body.clear();
        buffers.output.clear();
        buffers.answer = None;
        if input.bytes.capacity() > 4 * READ_CAPACITY {
            input.bytes = Vec::with_capacity(READ_CAPACITY);
        }
        if input.body.capacity() > 4 * READ_CAPACITY {
            input.body = Vec::new();
        }
        if buffers.output.bytes.capacity() > 4 * WRITE_CAPACITY {
            buffers.output = Output::with_capacity(WRITE_CAPACITY);
        }
        free.push(buffers);
    }
}

/// A connection's hold on a buffer set: taken from the pool when the
/// connection has work, given back while it idles, and always given back
/// when the connection ends, however it ends.
pub(crate) struct BufferLease<'p> {
    pool: &'p BufferPool,
    buffers: Option<Box<ConnBuffers>>,
}

impl<'p> BufferLease<'p> {
    /// A lease holding nothing yet: a new connection takes buffers on its first read.
    pub(crate) fn new(pool: &'p BufferPool) -> Self {
        BufferLease {
            pool,
            buffers: None,
        }
    }

    /// The buffers, taken from the pool if the lease holds none.
    pub(crate) fn get(&mut self) -> &mut ConnBuffers {
        self.buffers.get_or_insert_with(|| self.pool.take())
    }

    /// The buffers if the lease holds them (it does not while idle).
    pub(crate) fn held(&mut self) -> Option<&mut ConnBuffers> {
        self.buffers.as_deref_mut()
    }

    /// Return the buffers to the pool until the connection has work again.
    pub(crate) fn give_back(&mut self) {
        if let Some(buffers) = self.buffers.take() {
            self.pool.give(buffers);
        }
    }
}

impl Drop for BufferLease<'_> {
    fn drop(&mut self) {
        self.give_back();
    }
}
