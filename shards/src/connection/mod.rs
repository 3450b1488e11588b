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
//! reads and lingers; `state` is what all of them work on.

mod answer;
mod budget;
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

use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::task::{ready, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
// The runtime's clock (std's, unless a test paused it): the reading that
// times a batch also starts the next wait, so both follow the same clock.
use tokio::time::Instant;

use self::answer::{
    after_closing_response, checked, encode_answer, record_answers, refuse, status_class,
    AfterWrite, Answer,
};
use self::budget::Budget;
pub(crate) use self::handler::call_app;
use self::io::{linger_close, poll_read_more, ReadOutcome};
use self::owned_head::OwnedHead;
use self::state::Connection;
use self::stream::send_stream;
use self::wait::{Wait, Waiting};
use self::write::{write_output, WriteFailed};
use crate::app::App;
use crate::body::BodyStream;
use crate::buffers::{BufferLease, ConnBuffers};
use crate::drain::DrainKey;
use crate::env::ShardEnv;
use crate::http::{encode_continue, Awaiting, Decoded, HttpError, RequestReader};
use crate::http2::{serve_http2, starts_with_preface};
use crate::listener::PeerAddr;
use crate::output::Output;
use crate::request::Request;
use crate::stats::TimeoutKind;
use crate::upgrade::Upgraded;

/// Serve one connection until it closes. `drain_key` is the connection's
/// entry in its shard's drain, taken when the task was spawned.
pub(crate) async fn serve_connection<C, A>(
    mut io: C,
    peer: PeerAddr,
    env: &ShardEnv,
    app: &A,
    drain_key: DrainKey,
) where
    C: AsyncRead + AsyncWrite + Unpin + 'static,
    A: App,
{
    env.drain.watch(drain_key).await;
    let mut conn = Connection {
        env,
        lease: BufferLease::new(&env.pool),
        reader: RequestReader::offering_heads(),
        wait: Wait::new(),
        budget: Budget::new(),
    };
    // What to do once the output is written. Each turn ends by answering
    // what was read; an upload's answer is encoded by the upload itself.
    let mut after = conn.answer_buffered(app, &peer).await;
    loop {
        if conn.write_output(&mut io).await.is_err() {
            return;
        }
        match after {
            AfterWrite::ReadMore => {
                conn.budget.spend_turn().await;
                match conn.read_more(&mut io).await {
                    ReadOutcome::Data => {}
                    ReadOutcome::Eof => return conn.end_of_stream(&mut io, &peer).await,
                    ReadOutcome::TimedOut => return conn.timed_out(&mut io, &peer).await,
                    ReadOutcome::Drained | ReadOutcome::Failed => return,
                }
            }
            AfterWrite::AnswerMore => conn.budget.spend_turn().await,
            AfterWrite::Close => return,
            AfterWrite::Linger => return linger_close(&mut io).await,
            AfterWrite::Stream {
                body,
                chunked,
                close,
            } => {
                let sent = conn.send_stream(&mut io, body, chunked).await;
                if sent.is_err() || close {
                    return;
                }
            }
            AfterWrite::Upload(head) => {
                after = conn.serve_upload(&mut io, app, &peer, head).await;
                continue;
            }
            AfterWrite::Http2 => {
                let preface = conn.take_unread();
                drop(conn);
                return serve_http2(Upgraded::new(io, preface), &peer, env, app).await;
            }
            AfterWrite::Upgrade(on_upgrade) => {
                let read_ahead = conn.take_unread();
                drop(conn);
                return on_upgrade(Upgraded::new(io, read_ahead)).await;
            }
        }
        after = conn.answer_buffered(app, &peer).await;
    }
}

impl<'e> Connection<'e> {
    /// Answer every complete request buffered, encoding the responses into
    /// the output buffer.
    async fn answer_buffered<A: App>(&mut self, app: &A, peer: &PeerAddr) -> AfterWrite {
        let Connection {
            env,
            lease,
            reader,
            wait,
            ..
        } = self;
        let Some(ConnBuffers {
            input,
            output,
            answer,
        }) = lease.held()
        else {
            return AfterWrite::ReadMore;
        };
        let date = env.date.get();
        let mut answered = 0;
        // For the stats and the access log: set when the first request of the batch is decoded.
        let mut started = None;
        let mut classes = [0; 5];
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
                    refuse(env, peer, error, &date, &mut output.bytes);
                    break AfterWrite::Linger;
                }
            };
            let batch_started: &Instant = started.get_or_insert_with(Instant::now);
            let request = Request::from_parts(parts, peer);
            // The app's response, checked and encoded in place (a move is a copy).
            call_app(app, &request, answer).await;
            let response = checked(answer, &request, env);
            classes[status_class(response.status())] += 1;
            let answer =
                encode_answer(env, &date, &request, response, false, batch_started, output);
            answered += 1;
            wait.answered();
            match answer {
                Answer::Sent { close: false } => {}
                Answer::Sent { close: true } => {
                    break after_closing_response(reader.has_buffered(input))
                }
                Answer::Then(after) => break after,
            }
            if output.bytes.len() >= env.limits.max_output_bytes {
                break AfterWrite::AnswerMore;
            }
        };
        // The last response's bytes are encoded: free what it holds now.
        *answer = None;
        if let Some(started) = started {
            let ended = Instant::now();
            record_answers(env, answered, &classes, ended - started);
            wait.began(ended);
        }
        after
    }

    /// Write everything this turn produced, in one write when the socket
    /// takes it. (Not an `async fn`, for the reason `write_output` is not.)
    fn write_output<'s, C: AsyncWrite + Unpin>(
        &'s mut self,
        io: &'s mut C,
    ) -> impl Future<Output = Result<(), WriteFailed>> + 's {
        let Connection {
            env,
            lease,
            wait,
            budget,
            ..
        } = self;
        let output = lease
            .held()
            .map(|buffers| &mut buffers.output)
            .filter(|output| !output.is_empty());
        let mut writing = output.map(|output| {
            write_output(
                io,
                output,
                wait,
                budget,
                env.limits.send_timeout,
                &env.stats,
            )
        });
        poll_fn(move |cx| match writing.as_mut() {
            Some(writing) => Pin::new(writing).poll(cx),
            None => Poll::Ready(Ok(())),
        })
    }

    /// Send a streamed body; the output holds nothing when this starts.
    async fn send_stream<C: AsyncWrite + Unpin>(
        &mut self,
        io: &mut C,
        body: BodyStream,
        chunked: bool,
    ) -> Result<(), WriteFailed> {
        self.write_output(io).await?;
        let output = &mut self.lease.get().output;
        let sent = send_stream(
            io,
            body,
            chunked,
            output,
            &mut self.wait,
            &mut self.budget,
            self.env,
        )
        .await;
        // A stream lasts as long as its source: the next wait starts now,
        // not when the batch that began it was answered.
        self.wait.restart();
        sent
    }

    /// What the client sent after the request being answered.
    fn take_unread(&mut self) -> Vec<u8> {
        match self.lease.held() {
            Some(buffers) => self.reader.unconsumed(&buffers.input).to_vec(),
            None => Vec::new(),
        }
    }

    /// Read more of the request stream (not an `async fn`, for the reason
    /// `write_output` is not).
    fn read_more<'s, C: AsyncRead + Unpin>(
        &'s mut self,
        io: &'s mut C,
    ) -> impl Future<Output = ReadOutcome> + use<'s, 'e, C> {
        poll_fn(move |cx| {
            let Connection {
                env,
                lease,
                reader,
                wait,
                budget,
            } = &mut *self;
            let outcome = ready!(poll_read_more(io, cx, lease, reader, wait, budget, env));
            if matches!(outcome, ReadOutcome::Data) && wait.waiting() == Waiting::Body {
                // body_timeout counts from the last bytes of the body.
                wait.restart();
            }
            Poll::Ready(outcome)
        })
    }

    /// The client closed its side. Mid-request, say why nothing more will come.
    async fn end_of_stream<C: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut C,
        peer: &PeerAddr,
    ) {
        let partial = match self.lease.held() {
            Some(buffers) => self.reader.has_buffered(&buffers.input),
            None => false,
        };
        if partial {
            self.answer_and_close(io, peer, HttpError::BadRequest("incomplete request"))
                .await;
        }
    }

    /// A wait ran out: a partial request gets a 408, an idle connection just closes.
    async fn timed_out<C: AsyncRead + AsyncWrite + Unpin>(&mut self, io: &mut C, peer: &PeerAddr) {
        self.env.stats.timed_out(match self.wait.waiting() {
            Waiting::Initial | Waiting::Head => TimeoutKind::Header,
            Waiting::Body => TimeoutKind::Body,
            Waiting::Idle | Waiting::Draining => TimeoutKind::Idle,
        });
        if matches!(self.wait.waiting(), Waiting::Head | Waiting::Body) {
            self.answer_and_close(io, peer, HttpError::RequestTimeout)
                .await;
        }
    }

    /// Send an error response on a connection that is being given up, then close it gracefully.
    async fn answer_and_close<C: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut C,
        peer: &PeerAddr,
        error: HttpError,
    ) {
        let output = &mut self.lease.get().output;
        output.clear();
        refuse(
            self.env,
            peer,
            error,
            &self.env.date.get(),
            &mut output.bytes,
        );
        if self.write_output(io).await.is_ok() {
            linger_close(io).await;
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
