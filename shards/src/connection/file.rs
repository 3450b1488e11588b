//! Sending a file body ([`Body::File`](crate::Body::File)) after its head:
//! with `sendfile(2)` when the connection's listener hands over a plain
//! socket ([`Listener::plain_socket`](crate::Listener::plain_socket): plain
//! TCP or Unix, behind the PROXY protocol too), read in chunks as the
//! client takes them otherwise (TLS, in-memory pipes), so either way a
//! slow reader holds back the file rather than filling memory.

use std::future::poll_fn;
use std::os::fd::AsFd;
use std::task::{ready, Poll};

use tokio::io::{AsyncRead, AsyncWrite};

use super::state::Connection;
use super::write::{poll_socket_full, WriteFailed};
use crate::file_body::FileBody;
use crate::stats::add_own;

/// The most one `sendfile` call is asked to send: the socket's buffer
/// takes less anyway, and a bound keeps one call short.
const SENDFILE_MAX: u64 = 1 << 20;

impl<C: AsyncRead + AsyncWrite + Unpin + 'static> Connection<'_, C> {
    /// Write the output (the file's head, and what came before), then the
    /// file. A file that ends early cuts the response short: the
    /// connection closes.
    pub(super) async fn send_file(&mut self, body: FileBody) -> Result<(), WriteFailed> {
        if (self.plain_socket)(&mut self.io).is_none() {
            return self.send_stream(body.into_stream(), false).await;
        }
        self.write_output().await?;
        add_own(&self.env.stats.sendfile_bodies, 1);
        let sent = self.sendfile(body).await;
        // The send lasted as long as the client took to read it: the next
        // wait starts now.
        self.wait.restart();
        self.budget.spend_turn().await;
        sent
    }

    /// `sendfile` until the body is sent; the send timeout counts from the
    /// first time the socket is full and restarts whenever bytes move.
    async fn sendfile(&mut self, mut body: FileBody) -> Result<(), WriteFailed> {
        let Connection {
            env,
            io,
            plain_socket,
            wait,
            budget,
            ..
        } = self;
        let Some(socket) = plain_socket(io) else {
            unreachable!("checked by the caller")
        };
        let mut blocked = false;
        poll_fn(|cx| loop {
            if body.is_empty() {
                return Poll::Ready(Ok(()));
            }
            let want = body.len().min(SENDFILE_MAX) as usize;
            let file = body.file().as_fd();
            match socket.poll_sendfile(cx, file, body.offset(), want) {
                Poll::Ready(Ok(0)) | Poll::Ready(Err(_)) => {
                    return Poll::Ready(Err(WriteFailed::Closed))
                }
                Poll::Ready(Ok(n)) => {
                    body.advance(n as u64);
                    if blocked {
                        blocked = false;
                        wait.restart();
                    }
                }
                Poll::Pending => {
                    let timed_out = poll_socket_full(&mut blocked, wait, budget, env, cx);
                    return Poll::Ready(Err(ready!(timed_out)));
                }
            }
        })
        .await
    }
}
