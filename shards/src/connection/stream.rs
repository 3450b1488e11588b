//! Sending a streamed body: chunks as the app produces them, written when
//! the stream has nothing more ready or the output is full, so a slow reader
//! holds back the stream instead of filling memory.

use std::future::poll_fn;
use std::task::Poll;

use bytes::Bytes;
use tokio::io::AsyncWrite;

use super::budget::Budget;
use super::wait::Wait;
use super::write::{write_output, WriteFailed};
use crate::body::{Body, BodyStream, BoxError};
use crate::env::ShardEnv;
use crate::http::COPY_LIMIT;
use crate::output::Output;

/// What polling the stream gave.
enum Next {
    Chunk(Option<Result<Bytes, BoxError>>),
    /// Nothing ready yet: send what is buffered before waiting for more.
    Flush,
}

/// Send `body` to the end (chunked, or as raw bytes until the close).
/// A stream that fails ends the connection without the last chunk, so the
/// client can tell the body was cut short.
pub(crate) async fn send_stream<C: AsyncWrite + Unpin>(
    io: &mut C,
    mut body: BodyStream,
    chunked: bool,
    output: &mut Output,
    wait: &mut Wait,
    budget: &mut Budget,
    env: &ShardEnv,
) -> Result<(), WriteFailed> {
    loop {
        let next = poll_fn(|cx| match body.poll_next(cx) {
            Poll::Ready(chunk) => Poll::Ready(Next::Chunk(chunk)),
            Poll::Pending if !output.is_empty() => Poll::Ready(Next::Flush),
            Poll::Pending => Poll::Pending,
        })
        .await;
        let chunk = match next {
            Next::Flush => {
                flush(io, output, wait, budget, env).await?;
                continue;
            }
            Next::Chunk(Some(Ok(chunk))) => chunk,
            Next::Chunk(None) => break,
            Next::Chunk(Some(Err(_))) => {
                // Send what came before the failure, then cut the body short.
                flush(io, output, wait, budget, env).await?;
                return Err(WriteFailed::Closed);
            }
        };
        if chunk.is_empty() {
            continue; // an empty chunk would read as the end
        }
        if chunked {
            let size = format!("{:x}\r\n", chunk.len());
            output.bytes.extend_from_slice(size.as_bytes());
        }
        if chunk.len() <= COPY_LIMIT {
            output.bytes.extend_from_slice(&chunk);
        } else {
            output.push_separate(Body::Shared(chunk));
        }
        if chunked {
            output.bytes.extend_from_slice(b"\r\n");
        }
        if output.len() >= env.limits.max_output_bytes {
            flush(io, output, wait, budget, env).await?;
        }
    }
    if chunked {
        output.bytes.extend_from_slice(b"0\r\n\r\n");
    }
    flush(io, output, wait, budget, env).await
}

/// Write the output, then let the shard's other connections have a turn if
/// this one has had many in a row (a stream that is always ready would
/// otherwise hold the shard).
async fn flush<C: AsyncWrite + Unpin>(
    io: &mut C,
    output: &mut Output,
    wait: &mut Wait,
    budget: &mut Budget,
    env: &ShardEnv,
) -> Result<(), WriteFailed> {
    let send_timeout = env.limits.send_timeout;
    let written = write_output(io, output, wait, budget, send_timeout, &env.stats).await;
    budget.spend_turn().await;
    written
}
