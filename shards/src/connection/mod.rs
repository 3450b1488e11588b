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
//! `handler` runs the app with panics contained; `output` holds and writes
//! what is to be sent; `stream` sends a streamed body; `io` reads and
//! lingers.

mod budget;
mod handler;
mod io;
mod output;
mod stream;
#[cfg(test)]
mod tests;
mod upload;
mod wait;

pub(crate) use self::output::Output;

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite};

use self::budget::Budget;
use self::handler::{call_app, internal_error};
use self::io::{linger_close, read_more, ReadInto, ReadOutcome};
use self::output::{write_output, WriteFailed};
use self::stream::send_stream;
use self::upload::OwnedHead;
use self::wait::{Wait, Waiting};
use crate::app::App;
use crate::body::{Body, BodyStream};
use crate::buffers::{BufferLease, ConnBuffers};
use crate::drain::DrainKey;
use crate::env::ShardEnv;
use crate::http::{
    encode_error, encode_response, Awaiting, BodyPlan, Decoded, EncodeOptions, HttpError,
    RequestReader, Version, DATE_LEN,
};
use crate::listener::PeerAddr;
use crate::request::Request;
use crate::response::Response;
use crate::stats::TimeoutKind;
use crate::upgrade::{OnUpgrade, Upgraded};

/// What the connection does once this turn's output is written.
enum AfterWrite {
    /// Everything buffered was answered: read more.
    ReadMore,
    /// The output reached `max_output_bytes` with requests still buffered:
    /// write, then answer those before reading more.
    AnswerMore,
    /// Close now.
    Close,
    /// Close, but first read and discard what the client still sends, so
    /// it reads our last response instead of a reset.
    Linger,
    /// Send this streamed body, then go on answering (or close, if `close`).
    Stream {
        body: BodyStream,
        chunked: bool,
        close: bool,
    },
    /// Hand the connection to this upgrade handler.
    Upgrade(OnUpgrade),
    /// Call the app now and stream this request's body to it as it arrives.
    Upload(OwnedHead),
}

/// Serve one connection until it closes. `drain_key` is the connection's
/// entry in its shard's drain, taken when the task was spawned.
pub async fn serve_connection<C, A>(
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
    // An answer already encoded (after an upload) that the next write sends.
    let mut pending = None;
    loop {
        let after = match pending.take() {
            Some(after) => after,
            None => conn.answer_buffered(app, &peer).await,
        };
        if conn.write_output(&mut io).await.is_err() {
            return;
        }
        match after {
            AfterWrite::ReadMore => {}
            AfterWrite::AnswerMore => {
                conn.budget.spend_turn().await;
                continue;
            }
            AfterWrite::Close => return,
            AfterWrite::Linger => return linger_close(&mut io).await,
            AfterWrite::Stream {
                body,
                chunked,
                close,
            } => {
                if conn.send_stream(&mut io, body, chunked).await.is_err() || close {
                    return;
                }
                continue;
            }
            AfterWrite::Upload(head) => {
                pending = Some(conn.serve_upload(&mut io, app, &peer, head).await);
                continue;
            }
            AfterWrite::Upgrade(on_upgrade) => {
                let read_ahead = conn.take_unread();
                drop(conn);
                return on_upgrade(Upgraded::new(io, read_ahead)).await;
            }
        }
        conn.budget.spend_turn().await;
        match conn.read_more(&mut io).await {
            ReadOutcome::Data => {}
            ReadOutcome::Eof => return conn.end_of_stream(&mut io).await,
            ReadOutcome::TimedOut => return conn.timed_out(&mut io).await,
            ReadOutcome::Drained | ReadOutcome::Failed => return,
        }
    }
}

/// One connection's state between turns.
struct Connection<'e> {
    env: &'e ShardEnv,
    lease: BufferLease<'e>,
    reader: RequestReader,
    wait: Wait,
    budget: Budget,
}

impl Connection<'_> {
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
        let Some(ConnBuffers { input, output }) = lease.held() else {
            return AfterWrite::ReadMore;
        };
        let date = env.date.get();
        let mut answered = 0;
        // For the stats: set when the first request of the batch is decoded.
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
                    refuse(env, error, &date, &mut output.bytes);
                    break AfterWrite::Linger;
                }
            };
            started.get_or_insert_with(Instant::now);
            let request = Request::from_parts(parts, peer);
            let response = respond(app, &request, env).await;
            classes[status_class(response.status())] += 1;
            let answer = encode_answer(env, &date, &request, response, false, output);
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
        if let Some(started) = started {
            record_answers(env, answered, &classes, started.elapsed());
        }
        after
    }

    /// Write everything this turn produced, in one write when the socket takes it.
    async fn write_output<C: AsyncWrite + Unpin>(&mut self, io: &mut C) -> Result<(), WriteFailed> {
        let Some(buffers) = self.lease.held() else {
            return Ok(());
        };
        if buffers.output.is_empty() {
            return Ok(());
        }
        let send_timeout = self.env.limits.send_timeout;
        let written = write_output(
            io,
            &buffers.output,
            &mut self.wait,
            &mut self.budget,
            send_timeout,
        )
        .await;
        buffers.output.clear();
        if written == Err(WriteFailed::TimedOut) {
            self.env.stats.timed_out(TimeoutKind::Send);
        }
        written
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
        send_stream(
            io,
            body,
            chunked,
            output,
            &mut self.wait,
            &mut self.budget,
            &self.env.limits,
        )
        .await
    }

    /// What the client sent after the request being answered.
    fn take_unread(&mut self) -> Vec<u8> {
        match self.lease.held() {
            Some(buffers) => self.reader.unconsumed(&buffers.input).to_vec(),
            None => Vec::new(),
        }
    }

    async fn read_more<C: AsyncRead + Unpin>(&mut self, io: &mut C) -> ReadOutcome {
        let outcome = read_more(
            io,
            ReadInto {
                env: self.env,
                lease: &mut self.lease,
                reader: &mut self.reader,
                wait: &mut self.wait,
                budget: &mut self.budget,
            },
        )
        .await;
        if matches!(outcome, ReadOutcome::Data) && self.wait.waiting() == Waiting::Body {
            // body_timeout counts from the last bytes of the body.
            self.wait.restart();
        }
        outcome
    }

    /// The client closed its side. Mid-request, say why nothing more will come.
    async fn end_of_stream<C: AsyncRead + AsyncWrite + Unpin>(&mut self, io: &mut C) {
        let partial = match self.lease.held() {
            Some(buffers) => self.reader.has_buffered(&buffers.input),
            None => false,
        };
        if partial {
            self.answer_and_close(io, HttpError::BadRequest("incomplete request"))
                .await;
        }
    }

    /// A wait ran out: a partial request gets a 408, an idle connection just closes.
    async fn timed_out<C: AsyncRead + AsyncWrite + Unpin>(&mut self, io: &mut C) {
        self.env.stats.timed_out(match self.wait.waiting() {
            Waiting::Initial | Waiting::Head => TimeoutKind::Header,
            Waiting::Body => TimeoutKind::Body,
            Waiting::Idle | Waiting::Draining => TimeoutKind::Idle,
        });
        if matches!(self.wait.waiting(), Waiting::Head | Waiting::Body) {
            self.answer_and_close(io, HttpError::RequestTimeout).await;
        }
    }

    /// Send an error response on a connection that is being given up, then close it gracefully.
    async fn answer_and_close<C: AsyncRead + AsyncWrite + Unpin>(
        &mut self,
        io: &mut C,
        error: HttpError,
    ) {
        let output = &mut self.lease.get().output;
        output.clear();
        refuse(self.env, error, &self.env.date.get(), &mut output.bytes);
        if self.write_output(io).await.is_ok() {
            linger_close(io).await;
        }
    }
}

/// The index of a status code's class in `responses_by_class` (1xx → 0).
fn status_class(status: ::http::StatusCode) -> usize {
    usize::from(status.as_u16() / 100).clamp(1, 5) - 1
}

/// Add a batch's answers to the shard's stats: one atomic per counter per
/// batch, not per request.
fn record_answers(env: &ShardEnv, answered: u64, classes: &[u64; 5], took: Duration) {
    env.stats.requests.fetch_add(answered, Relaxed);
    for (counter, &count) in env.stats.responses_by_class.iter().zip(classes) {
        if count > 0 {
            counter.fetch_add(count, Relaxed);
        }
    }
    env.stats.request_duration.record(took, answered);
}

/// Run the app; a panic becomes a 500 that closes the connection.
async fn respond<A: App>(app: &A, request: &Request<'_>, env: &ShardEnv) -> Response {
    let response = match call_app(app, request).await {
        Some(response) => response,
        None => {
            env.stats.handler_panics.fetch_add(1, Relaxed);
            return internal_error().close_connection();
        }
    };
    if response.upgrades() && !may_upgrade(request) {
        return internal_error();
    }
    response
}

/// What encoding an answer left to do.
enum Answer {
    /// Head and body are in the output (or beside it); `close` after them.
    Sent { close: bool },
    /// A stream to send or an upgrade to run once the output is written.
    Then(AfterWrite),
}

/// Encode `response` to `request` into `output`. `must_close`: the
/// connection cannot carry another request (an upload not read to its end).
fn encode_answer(
    env: &ShardEnv,
    date: &[u8; DATE_LEN],
    request: &Request<'_>,
    mut response: Response,
    must_close: bool,
    output: &mut Output,
) -> Answer {
    let version = request.parts().version;
    // Decided after the handler: a drain may have begun while it ran.
    // HTTP/1.0 has no chunked coding: a stream ends with the connection.
    let close = must_close
        || !request.parts().keep_alive
        || response.closes_connection()
        || env.drain.is_draining()
        || (version == Version::Http10 && response.body().is_stream());
    let options = EncodeOptions {
        date,
        head_only: request.is_head(),
        close,
        keep_alive_1_0: version == Version::Http10 && !close,
        http11: version == Version::Http11,
    };
    let plan = encode_response(&response, &options, &mut output.bytes);
    match plan {
        BodyPlan::Written => Answer::Sent { close },
        BodyPlan::Separate => {
            output.push_separate(response.take_body());
            Answer::Sent { close }
        }
        BodyPlan::Chunked | BodyPlan::UntilClose => {
            let Body::Stream(body) = response.take_body() else {
                unreachable!("the plan streams only stream bodies")
            };
            let chunked = plan == BodyPlan::Chunked;
            Answer::Then(AfterWrite::Stream {
                body,
                chunked,
                close,
            })
        }
        BodyPlan::Upgrade => match response.take_upgrade() {
            Some(on_upgrade) => Answer::Then(AfterWrite::Upgrade(on_upgrade)),
            None => unreachable!("the plan upgrades only with a handler"),
        },
    }
}

/// Update the wait for what the reader needs next; owe `100 Continue` if asked.
fn wait_for(awaiting: Awaiting, wait: &mut Wait, output: &mut Output) {
    match awaiting {
        // Still Initial or Idle, as before.
        Awaiting::Request => {}
        Awaiting::Head => wait.switch(Waiting::Head),
        Awaiting::Body { send_continue } => {
            wait.switch(Waiting::Body);
            if send_continue {
                output
                    .bytes
                    .extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
            }
        }
    }
}

/// A `101` only answers an HTTP/1.1 request that asked to upgrade.
fn may_upgrade(request: &Request<'_>) -> bool {
    request.version() == ::http::Version::HTTP_11 && request.header("upgrade").is_some()
}

/// After a response that closes the connection: bytes the client already
/// sent behind it would turn our close into a reset, so linger over them.
fn after_closing_response(more_buffered: bool) -> AfterWrite {
    if more_buffered {
        AfterWrite::Linger
    } else {
        AfterWrite::Close
    }
}

/// Encode the answer to a refused request, and count it.
fn refuse(env: &ShardEnv, error: HttpError, date: &[u8; DATE_LEN], output: &mut Vec<u8>) {
    if error != HttpError::RequestTimeout {
        env.stats.bad_requests.fetch_add(1, Relaxed);
    }
    env.stats.requests.fetch_add(1, Relaxed);
    env.stats.responses_by_class[status_class(error.status())].fetch_add(1, Relaxed);
    encode_error(error, date, output);
}
