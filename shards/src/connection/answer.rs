//! How an answer is made: running the app (panics contained), deciding
//! whether the connection closes after it, encoding it, and counting it.

use tokio::time::Instant;

use super::handler::internal_error;
use super::owned_head::OwnedHead;
use crate::body::{Body, BodyStream};
use crate::env::ShardEnv;
use crate::file_body::FileBody;
use crate::http::{
    encode_error, encode_remembered, BodyPlan, EncodeOptions, Encoded, HttpError, Version,
    COPY_LIMIT, DATE_LEN,
};
use crate::listener::PeerAddr;
use crate::output::Output;
use crate::request::Request;
use crate::response::Response;
use crate::stats::add_own;
use crate::upgrade::OnUpgrade;

/// What the connection does once this turn's output is written.
pub(super) enum AfterWrite {
    /// Everything buffered was answered: read more.
    ReadMore,
    /// The output reached `max_output_bytes` with requests still buffered:
    /// write, then answer those before reading more.
    AnswerMore,
    /// Close; if the client already sent more than was answered, linger
    /// over it first (bytes left unread would turn the close into a reset).
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
    /// Send this file body (its head is in the output), then go on
    /// answering (or close, if `close`).
    File { body: FileBody, close: bool },
    /// The connection opened with the HTTP/2 preface: serve it as HTTP/2.
    Http2,
    /// Hand the connection to this upgrade handler.
    Upgrade(OnUpgrade),
    /// Call the app now and stream this request's body to it as it arrives.
    Upload(OwnedHead),
}

/// The index of a status code's class in `responses_by_class` (1xx → 0).
pub(crate) fn status_class(status: ::http::StatusCode) -> usize {
    usize::from(status.as_u16() / 100).clamp(1, 5) - 1
}

/// The app's answer as it will be sent, fixed in place (a `Response` is
/// large: a move is a copy): a panic (`None`) becomes a 500 that closes the
/// connection, an upgrade nobody asked for a 500.
#[inline]
pub(super) fn checked<'r>(
    answer: &'r mut Option<Response>,
    request: &Request<'_>,
    env: &ShardEnv,
) -> &'r mut Response {
    match answer {
        Some(response) if response.upgrades() && !may_upgrade(request) => {
            *response = internal_error();
        }
        Some(_) => {}
        None => {
            add_own(&env.stats.handler_panics, 1);
            *answer = Some(internal_error().close_connection());
        }
    }
    answer.get_or_insert_with(internal_error)
}

/// What encoding an answer left to do.
pub(super) enum Answer {
    /// Head and body are in the output (or beside it); `close` after them.
    Sent { close: bool },
    /// A stream to send or an upgrade to run once the output is written.
    Then(AfterWrite),
}

/// Answers encoded in one go (a turn's batch, or an upload's one answer):
/// what they share and their tally for the shard's stats, recorded once
/// per batch rather than per request.
pub(super) struct Batch<'e> {
    env: &'e ShardEnv,
    date: [u8; DATE_LEN],
    /// When answering began: what the stats and the access log time from.
    started: Instant,
    answered: u64,
    /// Answers by status class (`status_class`).
    classes: [u64; 5],
}

impl<'e> Batch<'e> {
    #[inline]
    pub(super) fn begin(env: &'e ShardEnv) -> Self {
        Batch {
            env,
            date: env.date.get(),
            started: Instant::now(),
            answered: 0,
            classes: [0; 5],
        }
    }

    /// Encode `response` to `request` into `output`, count it, and log it
    /// if the access log is on. `must_close`: the connection cannot carry
    /// another request (an upload not read to its end). The response is
    /// borrowed, not moved: it is large, and a move is a copy.
    #[inline(always)]
    pub(super) fn encode(
        &mut self,
        request: &Request<'_>,
        response: &mut Response,
        must_close: bool,
        output: &mut Output,
    ) -> Answer {
        let env = self.env;
        self.classes[status_class(response.status())] += 1;
        self.answered += 1;
        let version = request.parts().version;
        // Decided after the handler: a drain may have begun while it ran.
        // HTTP/1.0 has no chunked coding: a stream ends with the connection.
        let close = must_close
            || !request.parts().keep_alive
            || response.closes_connection()
            || env.drain.is_draining()
            || (version == Version::Http10 && response.body().is_stream());
        let options = EncodeOptions {
            date: &self.date,
            head_only: request.is_head(),
            close,
            keep_alive_1_0: version == Version::Http10 && !close,
            http11: version == Version::Http11,
        };
        let sent = encode_remembered(&mut output.memo, &*response, &options, &mut output.bytes);
        if env.access_log.is_some() {
            self.log_answer(request, response, options.head_only, sent);
        }
        let plan = sent.plan;
        match plan {
            BodyPlan::Written => Answer::Sent { close },
            BodyPlan::Separate => {
                output.push_separate(response.take_body());
                Answer::Sent { close }
            }
            BodyPlan::Sized => {
                let Body::File(body) = response.take_body() else {
                    unreachable!("only a file body is sized without bytes")
                };
                if body.len() > COPY_LIMIT as u64 {
                    return Answer::Then(AfterWrite::File { body, close });
                }
                // A small file goes out in the same write as its head (and
                // the batch's other answers): one read from the page cache
                // costs less than a second system call to send it.
                match read_into(&body, &mut output.bytes) {
                    Ok(()) => Answer::Sent { close },
                    // The head promised more: cut the response short.
                    Err(_) => Answer::Sent { close: true },
                }
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

    /// Write the access-log line of an answer the encoder `sent`. Out of
    /// line: the hot path with the access log off pays the branch that
    /// skips it, not its code.
    #[cold]
    #[inline(never)]
    fn log_answer(
        &self,
        request: &Request<'_>,
        response: &Response,
        head_only: bool,
        sent: Encoded,
    ) {
        let Some(access_log) = &self.env.access_log else {
            return;
        };
        let status = sent.status;
        let body_bytes = if sent.replaced {
            None // the app's response could not be sent: a 500 went instead
        } else if head_only
            || status == ::http::StatusCode::NO_CONTENT
            || status == ::http::StatusCode::NOT_MODIFIED
        {
            Some(0)
        } else {
            match sent.plan {
                BodyPlan::Written | BodyPlan::Separate => {
                    response.body().as_bytes().map(<[u8]>::len)
                }
                BodyPlan::Sized => match response.body() {
                    Body::File(file) => Some(file.len() as usize),
                    _ => None,
                },
                BodyPlan::Chunked | BodyPlan::UntilClose => None,
                BodyPlan::Upgrade => Some(0),
            }
        };
        access_log.record(request, status, body_bytes, self.started.elapsed());
    }

    /// Add the batch to the shard's stats: one store per counter, not one
    /// per request. Returns when it ended (a clock reading the caller may
    /// reuse).
    #[inline]
    pub(super) fn end(self) -> Instant {
        let ended = Instant::now();
        let stats = &self.env.stats;
        add_own(&stats.requests, self.answered);
        for (counter, &count) in stats.responses_by_class.iter().zip(&self.classes) {
            if count > 0 {
                add_own(counter, count);
            }
        }
        stats
            .request_duration
            .record(ended - self.started, self.answered);
        ended
    }
}

/// Append all of `body` to `out` (it is at most [`COPY_LIMIT`] bytes).
fn read_into(body: &FileBody, out: &mut Vec<u8>) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    let start = out.len();
    out.resize(start + body.len() as usize, 0);
    let read = body.file().read_exact_at(&mut out[start..], body.offset());
    if read.is_err() {
        out.truncate(start);
    }
    read
}

/// A `101` only answers an HTTP/1.1 request that asked to upgrade.
pub(super) fn may_upgrade(request: &Request<'_>) -> bool {
    request.version() == ::http::Version::HTTP_11 && request.header("upgrade").is_some()
}

/// Encode the answer to a refused request, count it and log it.
pub(super) fn refuse(env: &ShardEnv, peer: &PeerAddr, error: HttpError, output: &mut Vec<u8>) {
    if error != HttpError::RequestTimeout {
        add_own(&env.stats.bad_requests, 1);
    }
    add_own(&env.stats.requests, 1);
    add_own(
        &env.stats.responses_by_class[status_class(error.status())],
        1,
    );
    encode_error(error, &env.date.get(), output);
    if let Some(access_log) = &env.access_log {
        // The body `encode_error` sends: the detail and a newline.
        access_log.record_refusal(peer, error.status(), error.detail().len() + 1);
    }
}
