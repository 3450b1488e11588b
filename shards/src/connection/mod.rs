//! The HTTP/1.1 connection loop: one task per connection, on its shard.
//!
//! Each turn answers every complete request already read (in order,
//! pipelining included), writes all their responses with one write, then
//! reads again. The shape follows may-minihttp's short fast path; limits,
//! timeouts, fairness and drain each cost a branch on it, not a system call.
//!
//! The parts, one file each: [`RequestReader`](crate::http::RequestReader)
//! turns bytes into requests; `wait` knows what the connection waits for
//! and when that runs out; `budget` makes a greedy connection yield;
//! `handler` runs the app with panics contained; `answer` decides how each
//! answer goes out and counts it; `write` writes the output; `stream` sends
//! a streamed body; `upload` feeds a streamed request body to the app; `io`
//! reads (the one read, for heads and bodies alike) and lingers; `state` is
//! the [`Connection`] whose methods the loop's parts are.
//!
//! The loop's state, one enum each: [`AfterWrite`], what the loop does
//! once a turn's output is written (an encoded [`Answer`](answer::Answer)
//! says whether it ends the batch); [`Waiting`](wait::Waiting), what a
//! read waits for (and so its timeout); [`ReadOutcome`](io::ReadOutcome),
//! how a read ended. The codec's own (`Decoded`, `Awaiting`, `BodyPlan`)
//! are read where they are returned, not kept.

mod answer;
mod budget;
mod file;
mod handler;
mod io;
mod owned_head;
mod state;
mod stream;
#[cfg(test)]
mod tests;
mod upload;
mod wait;
mod write;

use tokio::io::{AsyncRead, AsyncWrite};

pub(crate) use self::answer::status_class;
use self::answer::{checked, refuse, AfterWrite, Answer, Batch};
pub(crate) use self::handler::{call_app, internal_error};
use self::io::ReadOutcome;
use self::owned_head::OwnedHead;
use self::state::Connection;
pub(crate) use self::state::PlainSocket;
use self::wait::{Wait, Waiting};
use crate::app::App;
use crate::buffers::ConnBuffers;
use crate::drain::DrainKey;
use crate::env::ShardEnv;
use crate::http::{encode_continue, Awaiting, Decoded, HttpError};
use crate::http2::{serve_http2, starts_with_preface};
use crate::listener::PeerAddr;
use crate::output::Output;
use crate::request::Request;
use crate::upgrade::Upgraded;

/// Serve one connection until it closes. `drain_key` is the connection's
/// entry in its shard's drain, taken when the task was spawned.
pub(crate) async fn serve_connection<C, A>(
    io: C,
    plain_socket: PlainSocket<C>,
    peer: PeerAddr,
    env: &ShardEnv,
    app: &A,
    drain_key: DrainKey,
) where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
    A: App,
{
    env.drain.watch(drain_key).await;
    let mut conn = Connection::new(io, plain_socket, peer, env);
    // What to do once the output is written. Each turn ends by answering
    // what was read; an upload's answer is encoded by the upload itself.
    let mut after = conn.answer_buffered(app).await;
    loop {
        if conn.write_output().await.is_err() {
            return;
        }
        match after {
            AfterWrite::ReadMore => match conn.read_more().await {
                ReadOutcome::Data => {}
                ReadOutcome::Eof => return conn.end_of_stream().await,
                ReadOutcome::TimedOut => return conn.timed_out().await,
                ReadOutcome::Drained | ReadOutcome::Failed => return,
            },
            AfterWrite::AnswerMore => conn.budget.spend_turn().await,
            AfterWrite::Close => return conn.close().await,
            AfterWrite::Linger => return conn.linger_close().await,
            AfterWrite::Stream {
                body,
                chunked,
                close,
            } => {
                let sent = conn.send_stream(body, chunked).await;
                if sent.is_err() || close {
                    return;
                }
            }
            AfterWrite::File { body, close } => {
                let sent = conn.send_file(body).await;
                if sent.is_err() || close {
                    return;
                }
            }
            AfterWrite::Upload(head) => match conn.serve_upload(app, head).await {
                Ok(next) => {
                    after = next;
                    continue;
                }
                Err(_) => return,
            },
            AfterWrite::Http2 => {
                let peer = conn.peer.clone();
                let (io, preface) = conn.hand_off();
                return serve_http2(Upgraded::new(io, preface), &peer, env, app).await;
            }
            AfterWrite::Upgrade(on_upgrade) => {
                let (io, read_ahead) = conn.hand_off();
                return on_upgrade(Upgraded::new(io, read_ahead)).await;
            }
        }
        after = conn.answer_buffered(app).await;
    }
}

impl<C: AsyncRead + AsyncWrite + Unpin> Connection<'_, C> {
    /// Answer every complete request buffered, encoding the responses into
    /// the output buffer.
    async fn answer_buffered<A: App>(&mut self, app: &A) -> AfterWrite {
        let Connection {
            env,
            peer,
            lease,
            reader,
            wait,
            ..
        } = self;
        let env = *env;
        let Some(ConnBuffers {
            input,
            output,
            answer,
        }) = lease.held()
        else {
            return AfterWrite::ReadMore;
        };
        // Begun when the first request of the batch is decoded.
        let mut batch = None;
        let after = loop {
            let parts = match reader.decode(input, &env.limits) {
                Decoded::Request(parts) => parts,
                Decoded::Head(parts) => {
                    if app.streams_body(&Request::from_parts(parts, peer)) {
                        break AfterWrite::Upload(OwnedHead::copy(&parts));
                    }
                    continue; // buffered as usual
                }
                Decoded::Incomplete(awaiting) => {
                    wait_for(awaiting, wait, output);
                    break AfterWrite::ReadMore;
                }
                Decoded::Refused(error) => {
                    if opens_http2(env, wait, reader.unconsumed(input)) {
                        break AfterWrite::Http2;
                    }
                    refuse(env, peer, error, &mut output.bytes);
                    break AfterWrite::Linger;
                }
            };
            let batch = batch.get_or_insert_with(|| Batch::begin(env));
            let request = Request::from_parts(parts, peer);
            // The app's response, checked and encoded in place (a move is a copy).
            call_app(app, &request, answer).await;
            let response = checked(answer, &request, env);
            let answer = batch.encode(&request, response, false, output);
            wait.answered();
            match answer {
                Answer::Sent { close: false } => {}
                Answer::Sent { close: true } => break AfterWrite::Close,
                Answer::Then(after) => break after,
            }
            if output.bytes.len() >= env.limits.max_output_bytes {
                break AfterWrite::AnswerMore;
            }
        };
        // The last response's bytes are encoded: free what it holds now.
        *answer = None;
        if let Some(batch) = batch {
            wait.began(batch.end());
        }
        after
    }

    /// The client closed its side. Mid-request, say why nothing more will come.
    async fn end_of_stream(&mut self) {
        if self.has_unread() {
            self.answer_and_close(HttpError::BadRequest("incomplete request"))
                .await;
        }
    }

    /// A wait ran out (the read counted it): a partial request gets a 408,
    /// an idle connection just closes.
    async fn timed_out(&mut self) {
        if matches!(self.wait.waiting(), Waiting::Head | Waiting::Body) {
            self.answer_and_close(HttpError::RequestTimeout).await;
        }
    }

    /// Send an error response on a connection that is being given up, then close it gracefully.
    async fn answer_and_close(&mut self, error: HttpError) {
        let output = &mut self.lease.get().output;
        output.clear();
        refuse(self.env, &self.peer, error, &mut output.bytes);
        if self.write_output().await.is_ok() {
            self.linger_close().await;
        }
    }
}

/// Whether a connection's first bytes, refused as HTTP/1.1, are the HTTP/2
/// preface: the check costs nothing until a request fails to decode.
fn opens_http2(env: &ShardEnv, wait: &Wait, unread: &[u8]) -> bool {
    env.http2.enabled && wait.waiting() == Waiting::Initial && starts_with_preface(unread)
}

/// Update the wait for what the reader needs next; send `100 Continue`
/// when the reader says it is owed.
fn wait_for(awaiting: Awaiting, wait: &mut Wait, output: &mut Output) {
    match awaiting {
        // Still Initial or Idle, as before.
        Awaiting::Request => {}
        Awaiting::Head => wait.switch(Waiting::Head),
        Awaiting::Body { .. } => wait.switch(Waiting::Body),
    }
    if awaiting.owes_continue() {
        encode_continue(&mut output.bytes);
    }
}
