//! Sending a streamed body: chunks as the app produces them, written when
//! the stream has nothing more ready or the output is full, so a slow reader
//! holds back the stream instead of filling memory.

use std::future::poll_fn;
use std::task::Poll;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use super::state::Connection;
use super::write::WriteFailed;
use crate::body::{Body, BodyStream, BoxError};
use crate::http::COPY_LIMIT;

/// What polling the stream gave.
enum Next {
    Chunk(Option<Result<Bytes, BoxError>>),
    /// Nothing ready yet: send what is buffered before waiting for more.
    Flush,
}

impl<C: AsyncRead + AsyncWrite + Unpin> Connection<'_, C> {
    /// Send `body` to the end (chunked, or as raw bytes until the close),
    /// after what the output already holds. A stream that fails ends the
    /// connection without the last chunk, so the client can tell the body
    /// was cut short.
    pub(super) async fn send_stream(
        &mut self,
        body: BodyStream,
        chunked: bool,
    ) -> Result<(), WriteFailed> {
        self.write_output().await?;
        let sent = self.send_chunks(body, chunked).await;
        // A stream lasts as long as its source: the next wait starts now,
        // not when the batch that began it was answered.
        self.wait.restart();
        sent
    }

    async fn send_chunks(
        &mut self,
        mut body: BodyStream,
        chunked: bool,
    ) -> Result<(), WriteFailed> {
        loop {
            let output = &mut self.lease.get().output;
            let next = poll_fn(|cx| match body.poll_next(cx) {
                Poll::Ready(chunk) => Poll::Ready(Next::Chunk(chunk)),
                Poll::Pending if !output.is_empty() => Poll::Ready(Next::Flush),
                Poll::Pending => Poll::Pending,
            })
            .await;
            let chunk = match next {
                Next::Flush => {
                    self.flush().await?;
                    continue;
                }
                Next::Chunk(Some(Ok(chunk))) => chunk,
                Next::Chunk(None) => break,
                Next::Chunk(Some(Err(_))) => {
                    // Send what came before the failure, then cut the body short.
                    self.flush().await?;
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
            if output.len() >= self.env.limits.max_output_bytes {
                self.flush().await?;
            }
        }
        if chunked {
            self.lease
                .get()
                .output
                .bytes
                .extend_from_slice(b"0\r\n\r\n");
        }
        self.flush().await
    }

    /// Write the output, then let the shard's other connections have a turn if
    /// this one has had many in a row (a stream that is always ready would
    /// otherwise hold the shard).
    async fn flush(&mut self) -> Result<(), WriteFailed> {
        let written = self.write_output().await;
        self.budget.spend_turn().await;
        written
    }
}
