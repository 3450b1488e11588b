//! Answering `503 Service Unavailable` from the main thread, and closing
//! gracefully so the client reads the 503 instead of a reset.
//!
//! The 503 is written once the client's request has begun to arrive (or
//! after a second of silence), not the instant the connection is accepted:
//! a proxy may not expect an answer before it has sent its request (nginx
//! before 1.29.5 turned such early 503s into 502s on retry).
//!
//! Closing a socket with unread request bytes makes Linux send RST, which
//! can destroy our response before the client reads it. So after the 503
//! the socket is half-closed, and this thread reads and discards until the
//! client closes (or a short deadline), then closes.

use std::io::{ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::fd::OwnedFd;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use shardd_shards::http::{encode_response, DateCache, EncodeOptions};
use shardd_shards::Response;
use socket2::Socket;

/// How long a rejected connection may linger, waiting for the client to close.
const LINGER: Duration = Duration::from_secs(2);
/// Longest a rejected connection waits for the client's first bytes before
/// its 503 is sent anyway.
const AWAIT_REQUEST: Duration = Duration::from_secs(1);
/// Sweep interval while some connections linger.
const SWEEP: Duration = Duration::from_millis(10);
/// Rejected connections waiting for the lingering thread.
const QUEUE: usize = 4096;

/// What the acceptor tells the lingering thread.
enum Message {
    /// A rejected connection: answer it once its request arrives, then linger.
    Linger(Socket),
    /// The server is stopping: close everything by this instant, then exit.
    Finish(Instant),
}

/// Sends 503s; owned by the acceptor.
pub(crate) struct Rejecter {
    queue: Option<flume::Sender<Message>>,
    thread: Option<JoinHandle<()>>,
    retry_after: String,
}

impl Rejecter {
    pub(crate) fn start(retry_after_secs: u32) -> std::io::Result<Self> {
        let (queue, incoming) = flume::bounded(QUEUE);
        let thread = std::thread::Builder::new().name("rejecter".into()).spawn({
            let retry_after = retry_after_secs.to_string();
            move || linger_loop(incoming, retry_after)
        })?;
        Ok(Rejecter {
            queue: Some(queue),
            thread: Some(thread),
            retry_after: retry_after_secs.to_string(),
        })
    }

    /// Answer 503 and close gracefully (never blocks the acceptor). The
    /// stream is non-blocking, TCP or Unix.
    pub(crate) fn reject(&self, stream: OwnedFd) {
        let stream = Socket::from(stream);
        let Some(queue) = &self.queue else { return };
        // If the lingering thread is swamped, answer and close now.
        if let Err(flume::TrySendError::Full(Message::Linger(mut stream))) =
            queue.try_send(Message::Linger(stream))
        {
            let _ = stream.write_all(&service_unavailable(&self.retry_after));
            let _ = stream.shutdown(Shutdown::Write);
        }
    }

    /// Let lingering connections finish, but not past `deadline`, and stop the thread.
    pub(crate) fn finish(mut self, deadline: Instant) {
        if let Some(queue) = self.queue.take() {
            let _ = queue.send(Message::Finish(deadline));
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The 503 response, encoded by the same code the shards use.
pub(crate) fn service_unavailable(retry_after: &str) -> Vec<u8> {
    let date_bytes = DateCache::new().get();
    let response = Response::new(http::StatusCode::SERVICE_UNAVAILABLE)
        .with_header("Retry-After", retry_after.to_owned())
        .with_header("Content-Type", "text/plain")
        .with_body("server at capacity, retry later\n");
    let options = EncodeOptions {
        date: &date_bytes,
        head_only: false,
        close: true,
        keep_alive_1_0: false,
        http11: true,
    };
    let mut out = Vec::with_capacity(256);
    encode_response(&response, &options, &mut out);
    out
}

struct Rejected {
    stream: Socket,
    /// The 503 has been sent.
    answered: bool,
    /// Unanswered: when to answer anyway. Answered: when to stop lingering.
    until: Instant,
}

impl Rejected {
    fn answer(&mut self, response: &[u8], now: Instant) {
        let _ = self.stream.write_all(response);
        let _ = self.stream.shutdown(Shutdown::Write);
        self.answered = true;
        self.until = now + LINGER;
    }
}

fn linger_loop(incoming: flume::Receiver<Message>, retry_after: String) {
    let response = service_unavailable(&retry_after);
    let mut lingering: Vec<Rejected> = Vec::new();
    let mut finish_by: Option<Instant> = None;
    let mut sink = [0u8; 4096];
    loop {
        let received = match (finish_by, lingering.is_empty()) {
            (Some(_), true) => return,
            (Some(_), false) => None,
            (None, true) => incoming.recv().ok(),
            (None, false) => incoming.recv_timeout(SWEEP).ok(),
        };
        match received {
            Some(Message::Linger(stream)) => lingering.push(Rejected {
                stream,
                answered: false,
                until: Instant::now() + AWAIT_REQUEST,
            }),
            Some(Message::Finish(deadline)) => finish_by = Some(deadline),
            None if finish_by.is_some() => std::thread::sleep(SWEEP),
            None if lingering.is_empty() && incoming.is_disconnected() => return,
            None => {}
        }
        let now = Instant::now();
        if finish_by.is_some_and(|deadline| now >= deadline) {
            for rejected in lingering.iter_mut().filter(|r| !r.answered) {
                rejected.answer(&response, now);
            }
            return;
        }
        lingering.retain_mut(|rejected| {
            loop {
                match rejected.stream.read(&mut sink) {
                    Ok(0) => return false,
                    Ok(_) if !rejected.answered => rejected.answer(&response, now),
                    Ok(_) => continue,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                    Err(_) => return false,
                }
            }
            if now < rejected.until {
                return true;
            }
            if rejected.answered {
                return false;
            }
            rejected.answer(&response, now);
            true
        });
    }
}
