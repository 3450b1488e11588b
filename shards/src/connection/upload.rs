//! Serving a request whose body streams to the app: the app runs from the
//! moment the head has arrived, while the connection keeps reading the body
//! into the request's pipe — no further than the app has taken, so a slow
//! app slows the client instead of filling memory. The body is read by the
//! connection's one read ([`Connection::read_more`]), with its timeout and
//! budget.

use std::future::{poll_fn, Future};
use std::pin::pin;
use std::sync::Arc;
use std::task::Poll;

use bytes::Bytes;
use tokio::io::{AsyncRead, AsyncWrite};

use super::answer::{checked, AfterWrite, Answer, Batch};
use super::handler::call_app;
use super::io::ReadOutcome;
use super::owned_head::OwnedHead;
use super::state::Connection;
use super::wait::Waiting;
use super::write::WriteFailed;
use crate::app::App;
use crate::http::{encode_continue, BodyPiece, HttpError};
use crate::request::Request;
use crate::request_body::Pipe;

impl<C: AsyncRead + AsyncWrite + Unpin> Connection<'_, C> {
    /// Call the app on `head` and feed it the body as it arrives; encode its
    /// answer. If the app answered before the body ended, the connection
    /// closes after the answer (the rest of the body is not read). Fails
    /// when `100 Continue` could not be written.
    pub(super) async fn serve_upload<A: App>(
        &mut self,
        app: &A,
        head: OwnedHead,
    ) -> Result<AfterWrite, WriteFailed> {
        let mut batch = Batch::begin(self.env);
        if self.reader.stream_body().owes_continue() {
            encode_continue(&mut self.lease.get().output.bytes);
            self.write_output().await?;
        }
        self.wait.switch(Waiting::Body);
        let pipe = Arc::new(Pipe::default());
        let peer = self.peer.clone();
        let request = Request::with_upload(head.parts(), &peer, &pipe);
        let mut outcome = None;
        {
            let mut answer = pin!(call_app(app, &request, &mut outcome));
            let mut feed = pin!(self.feed_body(&pipe));
            let mut feeding = true;
            poll_fn(|cx| {
                if answer.as_mut().poll(cx).is_ready() {
                    return Poll::Ready(());
                }
                // Once the body is fed, only the app's answer is awaited.
                if feeding && feed.as_mut().poll(cx).is_ready() {
                    feeding = false;
                }
                Poll::Pending
            })
            .await;
        }
        // The app answered: an HTTP/1.1 connection cannot read the rest of
        // the body while it sends the answer, so the body ends with what
        // has arrived (its end, if that came with it: a small body sent in
        // one go), and a response body still reading it gets an error, not
        // a wait that never ends. (HTTP/2 streams keep reading.)
        if !pipe.is_finished() {
            self.feed_buffered(&pipe);
        }
        let response = checked(&mut outcome, &request, self.env);
        let output = &mut self.lease.get().output;
        let must_close = !pipe.is_complete();
        let answer = batch.encode(&request, response, must_close, output);
        batch.end();
        self.wait.answered();
        Ok(match answer {
            Answer::Sent { close: false } => AfterWrite::AnswerMore,
            Answer::Sent { close: true } => AfterWrite::Close,
            Answer::Then(after) => after,
        })
    }

    /// Hand the app what is already read of the body, as far as its pipe
    /// has room, without reading more; end the pipe there.
    fn feed_buffered(&mut self, pipe: &Pipe) {
        let mut piece = Vec::new();
        while pipe.has_room() && !pipe.is_finished() && self.hand_buffered_piece(pipe, &mut piece) {
        }
        if !pipe.is_finished() {
            pipe.finish(Err(HttpError::BadRequest(
                "the app answered before the request body ended",
            )));
        }
    }

    /// Hand the app the body, piece by piece, while its pipe has room,
    /// reading more when all that is buffered was handed over; end the
    /// pipe with the body's end or with why it did not come.
    async fn feed_body(&mut self, pipe: &Pipe) {
        let mut piece = Vec::new();
        while !pipe.is_finished() {
            // The app wakes this task when it has taken some.
            poll_fn(|cx| match pipe.poll_room(cx) {
                true => Poll::Ready(()),
                false => Poll::Pending,
            })
            .await;
            if self.hand_buffered_piece(pipe, &mut piece) {
                continue;
            }
            match self.read_more().await {
                ReadOutcome::Data => {}
                ReadOutcome::TimedOut => return pipe.finish(Err(HttpError::RequestTimeout)),
                ReadOutcome::Eof | ReadOutcome::Failed | ReadOutcome::Drained => {
                    return pipe.finish(Err(HttpError::BadRequest("incomplete request")))
                }
            }
        }
    }

    /// Hand the app the next piece of the body already read, or its end:
    /// `false` when nothing of it is buffered (more must be read first).
    fn hand_buffered_piece(&mut self, pipe: &Pipe, piece: &mut Vec<u8>) -> bool {
        let input = &mut self.lease.get().input;
        match self.reader.next_body_piece(input, &self.env.limits, piece) {
            BodyPiece::Data(_) => pipe.push(Bytes::from(std::mem::take(piece))),
            BodyPiece::End => pipe.finish(Ok(())),
            BodyPiece::Refused(error) => pipe.finish(Err(error)),
            BodyPiece::NeedMore => return false,
        }
        true
    }
}
