//! A streamed body compressed as it streams: what the producer has sent
//! is flushed to the client whenever the producer pauses, so a
//! server-sent-events stream is not held back in the encoder.

use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::HeaderMap;

use super::encode::StreamEncoder;
use crate::body::{BodyStream, BoxError, ChunkSource};
use crate::stats::ShardStats;

/// Compressed bytes handed out without a flush once this many gather (a
/// producer that never pauses still gets its body out in pieces).
const EMIT_AT: usize = 32 * 1024;

/// Input taken in one poll before the output is flushed and handed out:
/// a fast producer of very compressible data (zeros) must not keep the
/// shard in one poll.
const INPUT_PER_POLL: usize = 256 * 1024;

pub(crate) struct CompressedStream {
    inner: BodyStream,
    /// `None` once the stream has ended (or failed).
    encoder: Option<StreamEncoder>,
    /// Input fed since the last flush.
    unflushed: bool,
    /// Where the bytes in and out are counted (`None` outside a shard).
    stats: Option<Arc<ShardStats>>,
}

impl CompressedStream {
    pub(crate) fn new(
        inner: BodyStream,
        encoder: StreamEncoder,
        stats: Option<Arc<ShardStats>>,
    ) -> Self {
        CompressedStream {
            inner,
            encoder: Some(encoder),
            unflushed: false,
            stats,
        }
    }

    /// A chunk of compressed bytes, counted.
    fn chunk(&self, bytes: Vec<u8>) -> Poll<Option<Result<Bytes, BoxError>>> {
        if let Some(stats) = &self.stats {
            stats.compression.gave(bytes.len());
        }
        Poll::Ready(Some(Ok(Bytes::from(bytes))))
    }
}

impl ChunkSource for CompressedStream {
    fn poll_chunk(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, BoxError>>> {
        // Every field is `Unpin` (the inner stream is boxed).
        let this = self.get_mut();
        let mut taken = 0;
        loop {
            let Some(encoder) = this.encoder.as_mut() else {
                return Poll::Ready(None);
            };
            match this.inner.poll_next(cx) {
                Poll::Ready(Some(Ok(bytes))) => {
                    if bytes.is_empty() {
                        continue;
                    }
                    if let Err(error) = encoder.write(&bytes) {
                        this.encoder = None;
                        return Poll::Ready(Some(Err(error.into())));
                    }
                    this.unflushed = true;
                    taken += bytes.len();
                    if let Some(stats) = &this.stats {
                        stats.compression.took(bytes.len());
                    }
                    if encoder.pending() >= EMIT_AT || taken >= INPUT_PER_POLL {
                        // The producer is still going: wake again soon
                        // for the rest, after the shard's other work.
                        this.unflushed = false;
                        return match encoder.flush() {
                            Ok(out) => this.chunk(out),
                            Err(error) => Poll::Ready(Some(Err(error.into()))),
                        };
                    }
                }
                Poll::Ready(Some(Err(error))) => {
                    this.encoder = None;
                    return Poll::Ready(Some(Err(error)));
                }
                Poll::Ready(None) => {
                    let encoder = this.encoder.take().expect("checked above");
                    return match encoder.finish() {
                        Ok(rest) if rest.is_empty() => Poll::Ready(None),
                        Ok(rest) => this.chunk(rest),
                        Err(error) => Poll::Ready(Some(Err(error.into()))),
                    };
                }
                Poll::Pending => {
                    if !this.unflushed {
                        return Poll::Pending;
                    }
                    // The producer paused: what it sent so far goes out
                    // now, decodable, instead of waiting for more.
                    this.unflushed = false;
                    return match encoder.flush() {
                        Ok(out) if out.is_empty() => Poll::Pending,
                        Ok(out) => this.chunk(out),
                        Err(error) => Poll::Ready(Some(Err(error.into()))),
                    };
                }
            }
        }
    }

    fn take_trailers(self: Pin<&mut Self>) -> Option<HeaderMap> {
        self.get_mut().inner.take_trailers()
    }
}
