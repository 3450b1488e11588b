//! Serving a request whose body streams to the app: the app runs from the
//! moment the head has arrived, while the connection keeps reading the body
//! into the request's pipe — no further than the app has taken, so a slow
//! app slows the client instead of filling memory.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::rc::Rc;
use std::task::Poll;
use tokio::time::Instant;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use super::answer::{
    after_closing_response, checked, encode_answer, record_answers, status_class, AfterWrite,
    Answer,
};
use super::handler::call_app;
use super::io::{poll_read_more, ReadOutcome};
use super::owned_head::OwnedHead;
use super::state::Connection;
use super::wait::Waiting;
use crate::app::App;
use crate::http::{encode_continue, BodyPiece, HttpError};
use crate::listener::PeerAddr;
use crate::request::Request;
use crate::request_body::Pipe;
use crate::stats::TimeoutKind;

impl Connection<'_> {
    /// Call the app on `head` and feed it the body as it arrives; encode its
    /// answer. If the app answered before the body ended, the connection
    /// closes after the answer (the rest of the body is not read).
    pub(super) async fn serve_upload<C: AsyncRead + AsyncWrite + Unpin, A: App>(
        &mut self,
        io: &mut C,
        app: &A,
        peer: &PeerAddr,
        head: OwnedHead,
    ) -> AfterWrite {
        let env = self.env;
        let started = Instant::now();
        if self.reader.stream_body().owes_continue() {
            encode_continue(&mut self.lease.get().output.bytes);
            if self.write_output(io).await.is_err() {
                return AfterWrite::Close;
            }
        }
        self.wait.switch(Waiting::Body);
        let pipe = Rc::new(Pipe::default());
        let request = Request::with_upload(head.parts(), peer, &pipe);
        let mut outcome = None;
        {
            let mut answer = pin!(call_app(app, &request, &mut outcome));
            let mut piece = Vec::new();
            poll_fn(|cx| {
                if answer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                loop {
                    // Hand the app what is buffered, while it has room.
                    while !pipe.is_finished() && pipe.poll_room(cx) {
                        let input = &mut self.lease.get().input;
                        match self.reader.next_body_piece(input, &env.limits, &mut piece) {
                            BodyPiece::Data(_) => {
                                pipe.push(Bytes::from(std::mem::take(&mut piece)))
                            }
                            BodyPiece::NeedMore => break,
                            BodyPiece::End => pipe.finish(Ok(())),
                            BodyPiece::Refused(error) => pipe.finish(Err(error)),
                        }
                    }
                    // Finished or full: the app wakes this task when it has taken some.
                    if pipe.is_finished() || !pipe.poll_room(cx) {
                        return Poll::Pending;
                    }
                    if !self.budget.try_spend_turn() {
                        // A client that uploads nonstop yields to the shard's others.
                        cx.waker().wake_by_ref();
                        return Poll::Pending;
                    }
                    let read = poll_read_more(
                        io,
                        cx,
                        &mut self.lease,
                        &mut self.reader,
                        &mut self.wait,
                        &mut self.budget,
                        env,
                    );
                    match read {
                        Poll::Ready(ReadOutcome::Data) => self.wait.restart(),
                        Poll::Ready(ReadOutcome::TimedOut) => {
                            env.stats.timed_out(TimeoutKind::Body);
                            pipe.finish(Err(HttpError::RequestTimeout));
                        }
                        Poll::Ready(
                            ReadOutcome::Eof | ReadOutcome::Failed | ReadOutcome::Drained,
                        ) => {
                            pipe.finish(Err(HttpError::BadRequest("incomplete request")));
                        }
                        Poll::Pending => return Poll::Pending,
                    }
                }
            })
            .await;
        }
        let response = checked(&mut outcome, &request, env);
        let mut classes = [0; 5];
        classes[status_class(response.status())] = 1;
        record_answers(env, 1, &classes, started.elapsed());
        self.wait.answered();
        let date = env.date.get();
        let output = &mut self.lease.get().output;
        let must_close = !pipe.is_complete();
        match encode_answer(env, &date, &request, response, must_close, &started, output) {
            Answer::Sent { close: false } => AfterWrite::AnswerMore,
            Answer::Sent { close: true } => {
                let buffers = self.lease.get();
                after_closing_response(self.reader.has_buffered(&buffers.input))
            }
            Answer::Then(after) => after,
        }
    }
}
