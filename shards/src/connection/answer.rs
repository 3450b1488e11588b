//! How an answer is made: running the app (panics contained), deciding
//! whether the connection closes after it, encoding it, and counting it.

use std::time::Duration;

use tokio::time::Instant;

use super::handler::internal_error;
use super::owned_head::OwnedHead;
use crate::access_log::AccessLog;
use crate::body::{Body, BodyStream};
use crate::env::ShardEnv;
use crate::http::{
    encode_error, encode_remembered, BodyPlan, EncodeOptions, Encoded, HttpError, Version, DATE_LEN,
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
    /// The connection opened with the HTTP/2 preface: serve it as HTTP/2.
    Http2,
    /// Hand the connection to this upgrade handler.
    Upgrade(OnUpgrade),
    /// Call the app now and stream this request's body to it as it arrives.
    Upload(OwnedHead),
}

/// The index of a status code's class in `responses_by_class` (1xx → 0).
pub(super) fn status_class(status: ::http::StatusCode) -> usize {
    usize::from(status.as_u16() / 100).clamp(1, 5) - 1
}

/// Add a batch's answers to the shard's stats: one store per counter per
/// batch, not per request.
pub(super) fn record_answers(env: &ShardEnv, answered: u64, classes: &[u64; 5], took: Duration) {
    add_own(&env.stats.requests, answered);
    for (counter, &count) in env.stats.responses_by_class.iter().zip(classes) {
        if count > 0 {
            add_own(counter, count);
        }
    }
    env.stats.request_duration.record(took, answered);
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

/// Encode `response` to `request` into `output`, and log it if the access
/// log is on. `must_close`: the connection cannot carry another request
/// (an upload not read to its end). `started`: when answering the
/// request's batch began (what the access log's duration counts from).
/// The response is borrowed, not moved: it is large, and a move is a copy.
#[inline(always)]
pub(super) fn encode_answer(
    env: &ShardEnv,
    date: &[u8; DATE_LEN],
    request: &Request<'_>,
    response: &mut Response,
    must_close: bool,
    started: &Instant,
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
    let sent = encode_remembered(&mut output.memo, &*response, &options, &mut output.bytes);
    if let Some(access_log) = &env.access_log {
        log_answer(access_log, request, response, &options, sent, started);
    }
    let plan = sent.plan;
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

/// Write the access-log line of an answer the encoder `sent`. Out of line:
/// the hot path with the access log off pays the branch that skips it, not
/// its code.
#[cold]
#[inline(never)]
fn log_answer(
    access_log: &AccessLog,
    request: &Request<'_>,
    response: &Response,
    options: &EncodeOptions<'_>,
    sent: Encoded,
    started: &Instant,
) {
    let status = sent.status;
    let body_bytes = if sent.replaced {
        None // the app's response could not be sent: a 500 went instead
    } else if options.head_only
        || status == ::http::StatusCode::NO_CONTENT
        || status == ::http::StatusCode::NOT_MODIFIED
    {
        Some(0)
    } else {
        match sent.plan {
            BodyPlan::Written | BodyPlan::Separate => response.body().as_bytes().map(<[u8]>::len),
            BodyPlan::Chunked | BodyPlan::UntilClose => None,
            BodyPlan::Upgrade => Some(0),
        }
    };
    access_log.record(request, status, body_bytes, started.elapsed());
}

/// A `101` only answers an HTTP/1.1 request that asked to upgrade.
pub(super) fn may_upgrade(request: &Request<'_>) -> bool {
    request.version() == ::http::Version::HTTP_11 && request.header("upgrade").is_some()
}

/// After a response that closes the connection: bytes the client already
/// sent behind it would turn our close into a reset, so linger over them.
pub(super) fn after_closing_response(more_buffered: bool) -> AfterWrite {
    if more_buffered {
        AfterWrite::Linger
    } else {
        AfterWrite::Close
    }
}

/// Encode the answer to a refused request, count it and log it.
pub(super) fn refuse(
    env: &ShardEnv,
    peer: &PeerAddr,
    error: HttpError,
    date: &[u8; DATE_LEN],
    output: &mut Vec<u8>,
) {
    if error != HttpError::RequestTimeout {
        add_own(&env.stats.bad_requests, 1);
    }
    add_own(&env.stats.requests, 1);
    add_own(
        &env.stats.responses_by_class[status_class(error.status())],
        1,
    );
    encode_error(error, date, output);
    if let Some(access_log) = &env.access_log {
        // The body `encode_error` sends: the detail and a newline.
        access_log.record_refusal(peer, error.status(), error.detail().len() + 1);
    }
}
