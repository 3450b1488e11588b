//! One generator thread: a level-triggered epoll loop over its non-blocking
//! connections, each a small state machine (connect, write a batch, read and
//! check the responses, time out, reconnect), counting what it sees.

use std::io;
use std::sync::atomic::{AtomicU8, Ordering::Relaxed};
use std::time::{Duration, Instant};

use super::response::{parse_response, Parsed};
use super::{ErrorKind, GenConfig, GenResult, MEASURE, STOP};
use crate::workload::Workload;

/// Read buffer per connection; 16 plaintext responses take about 2.3 KiB.
const CONN_BUF: usize = 32 * 1024;
/// Pause before reconnecting after a failed connect.
const CONNECT_BACKOFF: Duration = Duration::from_millis(10);
/// How often timeouts and delayed reconnects are looked for.
const SWEEP_EVERY: Duration = Duration::from_millis(50);
/// Longest wait in epoll_wait, so a phase change is seen soon.
const WAIT_MS: i32 = 20;

/// Drive `connections` connections until the phase is `STOP`; what they saw.
pub fn run(cfg: &GenConfig, connections: usize, phase: &AtomicU8) -> GenResult {
    let mut g = Generator::new(cfg, connections, phase.load(Relaxed));
    for i in 0..connections {
        g.open(i);
    }
    let mut events = vec![libc::epoll_event { events: 0, u64: 0 }; 1024];
    let mut last_sweep = Instant::now();
    loop {
        g.phase = phase.load(Relaxed);
        if g.phase == STOP {
            break;
        }
        // SAFETY: events is a valid buffer of the given length.
        let n =
            unsafe { libc::epoll_wait(g.epfd, events.as_mut_ptr(), events.len() as i32, WAIT_MS) };
        if n < 0 && errno() != libc::EINTR {
            panic!("epoll_wait: {}", io::Error::last_os_error());
        }
        for event in &events[..n.max(0) as usize] {
            g.event(event.u64 as usize, event.events);
        }
        let now = Instant::now();
        if now.duration_since(last_sweep) >= SWEEP_EVERY {
            last_sweep = now;
            g.sweep(now);
        }
    }
    g.close_all()
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum State {
    Closed,
    Connecting,
    /// A batch is partly written (socket buffer full).
    Writing,
    Reading,
}

struct Conn {
    fd: i32,
    state: State,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Responses still expected for the batch in flight.
    outstanding: usize,
    /// When the batch was written (churn: when the connect began).
    sent_at: Instant,
    written: usize,
    /// Churn: the one response arrived; now waiting for the server's FIN.
    answered: bool,
    retry_at: Option<Instant>,
    /// Bumped on every close, so callers can tell the connection was replaced.
    generation: u64,
    /// The last response said `Connection: close`.
    server_closes: bool,
}

impl Conn {
    fn new(now: Instant) -> Conn {
        Conn {
            fd: -1,
            state: State::Closed,
            buf: vec![0; CONN_BUF].into_boxed_slice(),
            start: 0,
            end: 0,
            outstanding: 0,
            sent_at: now,
            written: 0,
            answered: false,
            retry_at: None,
            generation: 0,
            server_closes: false,
        }
    }
}

/// How a non-blocking connect began.
enum ConnectStart {
    Connected,
    InProgress,
    Failed,
}

/// A non-blocking TCP socket with `TCP_NODELAY`, its connect to `addr`
/// begun; `None` if there is no socket.
fn begin_connect(addr: &libc::sockaddr_in) -> Option<(i32, ConnectStart)> {
    // SAFETY: plain socket calls on a fresh fd.
    let fd = unsafe {
        libc::socket(
            libc::AF_INET,
            libc::SOCK_STREAM | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
            0,
        )
    };
    if fd < 0 {
        return None;
    }
    let one: libc::c_int = 1;
    // SAFETY: fd is ours; option value is a c_int.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::IPPROTO_TCP,
            libc::TCP_NODELAY,
            (&one as *const libc::c_int).cast(),
            std::mem::size_of::<libc::c_int>() as libc::socklen_t,
        );
        libc::connect(
            fd,
            (addr as *const libc::sockaddr_in).cast(),
            std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
        )
    };
    let start = if rc == 0 {
        ConnectStart::Connected
    } else if errno() == libc::EINPROGRESS {
        ConnectStart::InProgress
    } else {
        ConnectStart::Failed
    };
    Some((fd, start))
}

fn errno() -> i32 {
    io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

struct Generator<'a> {
    epfd: i32,
    cfg: &'a GenConfig,
    conns: Vec<Conn>,
    result: GenResult,
    phase: u8,
}

impl<'a> Generator<'a> {
    fn new(cfg: &'a GenConfig, connections: usize, phase: u8) -> Generator<'a> {
        // SAFETY: creating an epoll instance.
        let epfd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
        assert!(epfd >= 0, "epoll_create1: {}", io::Error::last_os_error());
        let now = Instant::now();
        Generator {
            epfd,
            cfg,
            conns: (0..connections).map(|_| Conn::new(now)).collect(),
            result: GenResult::new(),
            phase,
        }
    }
}

impl Generator<'_> {
    /// Close every connection and the epoll set; what was counted.
    fn close_all(mut self) -> GenResult {
        for i in 0..self.conns.len() {
            self.close(i);
        }
        // SAFETY: our epoll fd.
        unsafe { libc::close(self.epfd) };
        self.result
    }

    /// An epoll event with `flags` for connection `i`.
    fn event(&mut self, i: usize, flags: u32) {
        match self.conns[i].state {
            State::Closed => {}
            State::Connecting => self.connected(i),
            State::Writing => {
                if flags & (libc::EPOLLOUT as u32) != 0 {
                    self.write_more(i);
                }
                if self.conns[i].state != State::Closed
                    && flags & (libc::EPOLLIN | libc::EPOLLHUP | libc::EPOLLERR) as u32 != 0
                {
                    self.readable(i);
                }
            }
            State::Reading => self.readable(i),
        }
    }

    fn ctl(&self, op: i32, i: usize, events: u32) -> bool {
        let mut event = libc::epoll_event {
            events,
            u64: i as u64,
        };
        // SAFETY: valid epoll fd and socket fd; the event is a plain struct.
        unsafe { libc::epoll_ctl(self.epfd, op, self.conns[i].fd, &mut event) == 0 }
    }

    fn count_error(&mut self, kind: ErrorKind) {
        if self.phase == MEASURE {
            self.result.errors[kind as usize] += 1;
        } else {
            self.result.other_errors += 1;
        }
    }

    fn close(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if conn.fd >= 0 {
            // SAFETY: our own fd; close also removes it from the epoll set.
            unsafe { libc::close(conn.fd) };
        }
        conn.fd = -1;
        conn.generation += 1;
        conn.state = State::Closed;
        conn.start = 0;
        conn.end = 0;
        conn.outstanding = 0;
        conn.answered = false;
    }

    fn fail(&mut self, i: usize, kind: ErrorKind) {
        self.count_error(kind);
        self.close(i);
        if matches!(kind, ErrorKind::Connect) {
            self.conns[i].retry_at = Some(Instant::now() + CONNECT_BACKOFF);
        } else {
            self.open(i);
        }
    }

    fn open(&mut self, i: usize) {
        if self.phase == STOP {
            return;
        }
        self.conns[i].retry_at = None;
        let Some((fd, start)) = begin_connect(&self.cfg.addr) else {
            self.count_error(ErrorKind::Connect);
            self.conns[i].retry_at = Some(Instant::now() + CONNECT_BACKOFF);
            return;
        };
        let now = Instant::now();
        if self.phase == MEASURE {
            self.result.opens += 1;
        }
        let conn = &mut self.conns[i];
        conn.fd = fd;
        conn.sent_at = now;
        match start {
            ConnectStart::Connected => {
                conn.state = State::Reading;
                if !self.ctl(libc::EPOLL_CTL_ADD, i, libc::EPOLLIN as u32) {
                    return self.fail(i, ErrorKind::Connect);
                }
                self.send_batch(i);
            }
            ConnectStart::InProgress => {
                conn.state = State::Connecting;
                if !self.ctl(libc::EPOLL_CTL_ADD, i, libc::EPOLLOUT as u32) {
                    self.fail(i, ErrorKind::Connect);
                }
            }
            ConnectStart::Failed => self.fail(i, ErrorKind::Connect),
        }
    }

    fn connected(&mut self, i: usize) {
        let mut error: libc::c_int = 0;
        let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
        // SAFETY: fd is ours; error/len are valid out-pointers.
        let rc = unsafe {
            libc::getsockopt(
                self.conns[i].fd,
                libc::SOL_SOCKET,
                libc::SO_ERROR,
                (&mut error as *mut libc::c_int).cast(),
                &mut len,
            )
        };
        if rc != 0 || error != 0 {
            return self.fail(i, ErrorKind::Connect);
        }
        self.conns[i].state = State::Reading;
        if !self.ctl(libc::EPOLL_CTL_MOD, i, libc::EPOLLIN as u32) {
            return self.fail(i, ErrorKind::Connect);
        }
        self.send_batch(i);
    }

    fn send_batch(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if self.cfg.workload != Workload::Churn {
            conn.sent_at = Instant::now();
        }
        conn.outstanding = self.cfg.batch_requests;
        conn.written = 0;
        self.write_more(i);
    }

    fn write_more(&mut self, i: usize) {
        let batch = &self.cfg.batch;
        loop {
            let conn = &mut self.conns[i];
            if conn.written == batch.len() {
                if conn.state == State::Writing {
                    conn.state = State::Reading;
                    if !self.ctl(libc::EPOLL_CTL_MOD, i, libc::EPOLLIN as u32) {
                        self.fail(i, ErrorKind::Io);
                    }
                }
                return;
            }
            let rest = &batch[conn.written..];
            // SAFETY: writing from a live slice to our fd.
            let n = unsafe {
                libc::send(
                    conn.fd,
                    rest.as_ptr().cast(),
                    rest.len(),
                    libc::MSG_NOSIGNAL,
                )
            };
            if n > 0 {
                conn.written += n as usize;
                continue;
            }
            let e = errno();
            if n < 0 && (e == libc::EAGAIN || e == libc::EINTR) {
                if e == libc::EAGAIN && conn.state != State::Writing {
                    conn.state = State::Writing;
                    let events = (libc::EPOLLIN | libc::EPOLLOUT) as u32;
                    if !self.ctl(libc::EPOLL_CTL_MOD, i, events) {
                        return self.fail(i, ErrorKind::Io);
                    }
                }
                if e == libc::EAGAIN {
                    return;
                }
                continue;
            }
            return self.fail(i, ErrorKind::Io);
        }
    }

    fn readable(&mut self, i: usize) {
        loop {
            let conn = &mut self.conns[i];
            if conn.end == conn.buf.len() {
                if conn.start == 0 {
                    return self.fail(i, ErrorKind::Parse);
                }
                conn.buf.copy_within(conn.start..conn.end, 0);
                conn.end -= conn.start;
                conn.start = 0;
            }
            let space = conn.buf.len() - conn.end;
            // SAFETY: reading into the unused tail of our own buffer.
            let n = unsafe { libc::read(conn.fd, conn.buf[conn.end..].as_mut_ptr().cast(), space) };
            if n > 0 {
                conn.end += n as usize;
                let generation = conn.generation;
                self.consume(i);
                if self.conns[i].generation != generation {
                    return; // failed and replaced
                }
                let conn = &self.conns[i];
                // Level-triggered: one read per event unless it filled the buffer,
                // except that churn looks for the FIN right behind the response.
                if (n as usize) < space && !(conn.answered && conn.state == State::Reading) {
                    return;
                }
                continue;
            }
            if n == 0 {
                return self.eof(i);
            }
            match errno() {
                libc::EAGAIN => return,
                libc::EINTR => continue,
                _ => return self.fail(i, ErrorKind::Io),
            }
        }
    }

    fn eof(&mut self, i: usize) {
        let conn = &self.conns[i];
        let clean = conn.outstanding == 0 && conn.start == conn.end;
        if self.cfg.workload == Workload::Churn {
            if clean && conn.answered {
                self.close(i);
                return self.open(i);
            }
            return self.fail(i, ErrorKind::Io);
        }
        if clean {
            // The server closed an idle keep-alive connection: not an error.
            self.close(i);
            return self.open(i);
        }
        self.fail(i, ErrorKind::Io)
    }

    /// Take every complete response from the buffer, then go on (next batch,
    /// or churn's close). The connection may be failed (and replaced) on the way.
    fn consume(&mut self, i: usize) {
        let now = Instant::now();
        let mut good = 0u64;
        loop {
            let conn = &mut self.conns[i];
            if conn.start == conn.end {
                conn.start = 0;
                conn.end = 0;
                break;
            }
            match parse_response(&conn.buf[conn.start..conn.end]) {
                Parsed::Incomplete => break,
                Parsed::Bad => {
                    self.record(i, good, now);
                    return self.fail(i, ErrorKind::Parse);
                }
                Parsed::Response {
                    len,
                    status,
                    body,
                    close,
                } => {
                    if conn.outstanding == 0 || conn.answered {
                        self.record(i, good, now);
                        return self.fail(i, ErrorKind::Parse);
                    }
                    let body = &conn.buf[conn.start + body.0..conn.start + body.1];
                    let ok = status == 200 && body == self.cfg.expected_body;
                    conn.start += len;
                    conn.outstanding -= 1;
                    conn.server_closes = close;
                    if !ok {
                        self.record(i, good, now);
                        good = 0;
                        self.count_error(ErrorKind::Status);
                        continue;
                    }
                    good += 1;
                }
            }
        }
        self.record(i, good, now);
        self.after_responses(i);
    }

    /// The batch is answered (if it is): send the next one, or for churn
    /// close (or wait for the server to).
    fn after_responses(&mut self, i: usize) {
        let conn = &mut self.conns[i];
        if conn.outstanding != 0 || conn.state != State::Reading {
            return;
        }
        if self.cfg.workload == Workload::Churn {
            if conn.server_closes && !self.cfg.client_close {
                // The server said it closes: wait for its FIN (as an HTTP
                // client should), so the TIME_WAIT lands on its side.
                conn.answered = true;
            } else {
                // Close ourselves, as wrk does.
                self.close(i);
                self.open(i);
            }
        } else if self.phase != STOP {
            self.send_batch(i);
        }
    }

    fn record(&mut self, i: usize, good: u64, now: Instant) {
        if good == 0 {
            return;
        }
        if self.phase == MEASURE {
            let ns = now
                .saturating_duration_since(self.conns[i].sent_at)
                .as_nanos() as u64;
            self.result.hist.record_n(ns, good);
            self.result.completed += good;
        } else {
            self.result.other_completed += good;
        }
    }

    /// Timeouts and delayed reconnects.
    fn sweep(&mut self, now: Instant) {
        for i in 0..self.conns.len() {
            let conn = &self.conns[i];
            let waited = now.saturating_duration_since(conn.sent_at);
            if conn.state == State::Closed {
                if conn.retry_at.is_some_and(|at| at <= now) {
                    self.open(i);
                }
            } else if waited > self.cfg.timeout
                && (conn.outstanding > 0 || conn.state == State::Connecting || conn.answered)
            {
                // No response in time (or, churn: answered but never closed).
                self.fail(i, ErrorKind::Timeout);
            }
        }
    }
}
