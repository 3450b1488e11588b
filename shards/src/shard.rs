//! One shard's life: a current-thread tokio runtime with a `LocalSet`, the
//! accept loop over its [`Listener`], and the drain at the end.
//!
//! This is the counterpart of a Racket place running the web server: the
//! loop below is the same whatever listener it is given.

use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::task::LocalSet;
use tokio::time::sleep;

use crate::app::App;
use crate::buffers::BufferPool;
use crate::connection::{serve_connection, Registration};
use crate::context::ShardContext;
use crate::drain::Drain;
use crate::http::DateCache;
use crate::limits::Limits;
use crate::listener::{Accepted, Listener};
use crate::room::RoomSignal;
use crate::stats::ShardStats;

/// Pause after a failed accept (EMFILE and friends) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Messages from the main thread to a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ShardCommand {
    /// Stop taking connections, finish the open ones, return.
    Drain,
    /// Panic the shard's thread (fault-injection hook for tests of the supervisor).
    Kill,
}

/// Settings a shard takes from the server configuration.
#[derive(Clone, Debug)]
pub struct ShardSettings {
    pub limits: Limits,
    /// How long a drain may take before open connections are cut.
    pub drain_timeout: Duration,
    /// Buffer sets kept for reuse (see [`BufferPool`]).
    pub pooled_buffers: usize,
}

impl Default for ShardSettings {
    fn default() -> Self {
        ShardSettings {
            limits: Limits::default(),
            drain_timeout: Duration::from_secs(10),
            pooled_buffers: 256,
        }
    }
}

/// State shared by every connection task on one shard (single-threaded: `Rc`, `Cell`).
pub struct ShardLocal {
    pub ctx: ShardContext,
    pub limits: Limits,
    pub date: DateCache,
    pub pool: BufferPool,
    pub drain: Drain,
    pub stats: Arc<ShardStats>,
    /// Tells the acceptor when this shard gets room (admission control).
    pub room: Option<Arc<RoomSignal>>,
}

/// Everything a shard thread needs to start.
pub struct ShardSpec {
    pub ctx: ShardContext,
    pub settings: ShardSettings,
    pub stats: Arc<ShardStats>,
    pub room: Option<Arc<RoomSignal>>,
    pub commands: flume::Receiver<ShardCommand>,
}

/// Run one shard on the calling thread until it has drained.
///
/// The factories run inside the shard's runtime, on its thread, so the
/// listener may register sockets with the shard's reactor and the app may
/// hold `!Send` state.
pub fn run_shard<L, A>(
    spec: ShardSpec,
    make_listener: impl FnOnce(&ShardContext) -> io::Result<L>,
    make_app: impl FnOnce(&ShardContext) -> A,
) -> io::Result<()>
where
    L: Listener,
    A: App,
{
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build()?;
    let tasks = LocalSet::new();
    tasks.block_on(&runtime, async move {
        let listener = make_listener(&spec.ctx)?;
        let app = make_app(&spec.ctx);
        let shard = Rc::new(ShardLocal {
            limits: spec.settings.limits.clone(),
            date: DateCache::new(),
            pool: BufferPool::new(spec.settings.pooled_buffers),
            drain: Drain::default(),
            stats: spec.stats,
            room: spec.room,
            ctx: spec.ctx,
        });
        serve(
            listener,
            Rc::new(app),
            shard,
            spec.commands,
            spec.settings.drain_timeout,
        )
        .await;
        Ok(())
    })
}

/// The shard's server loop: accept, spawn a task per connection, drain.
async fn serve<L: Listener, A: App>(
    mut listener: L,
    app: Rc<A>,
    shard: Rc<ShardLocal>,
    commands: flume::Receiver<ShardCommand>,
    drain_timeout: Duration,
) {
    let date_task = tokio::task::spawn_local(refresh_date(shard.clone()));
    // Lives across loop turns so a new accept does not re-register it.
    let mut command = pin!(commands.recv_async());
    loop {
        tokio::select! {
            biased;
            received = &mut command => match received {
                Ok(ShardCommand::Kill) => panic!("shard {} killed on request", shard.ctx.shard_id),
                Ok(ShardCommand::Drain) | Err(_) => {
                    listener.stop_accepting();
                    // Serve what the listener already holds (a handoff queue, a
                    // kernel accept queue), but wait for nothing new.
                    while let Some(Ok(Some(accepted))) = now_or_never(listener.accept()).await {
                        spawn_connection(accepted, &shard, &app);
                    }
                    break;
                }
            },
            accepted = listener.accept() => match accepted {
                Ok(Some(accepted)) => spawn_connection(accepted, &shard, &app),
                Ok(None) => break,
                Err(error) => {
                    log::warn!("shard {}: accept failed: {error}", shard.ctx.shard_id);
                    sleep(ACCEPT_BACKOFF).await;
                }
            },
        }
    }
    // No more connections will come. Close the listener now (a listening
    // socket would keep completing handshakes nobody will serve), close idle
    // connections, let in-flight requests finish, but not past the deadline.
    drop(listener);
    shard.drain.start();
    let _ = tokio::time::timeout(drain_timeout, shard.drain.all_closed()).await;
    date_task.abort();
}

/// Poll a future once: its output if it is ready now, `None` if it would wait.
async fn now_or_never<F: std::future::Future>(future: F) -> Option<F::Output> {
    let mut future = pin!(future);
    std::future::poll_fn(|cx| {
        std::task::Poll::Ready(match future.as_mut().poll(cx) {
            std::task::Poll::Ready(output) => Some(output),
            std::task::Poll::Pending => None,
        })
    })
    .await
}

fn spawn_connection<C, A>(accepted: Accepted<C>, shard: &Rc<ShardLocal>, app: &Rc<A>)
where
    C: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + 'static,
    A: App,
{
    shard.stats.accepted.fetch_add(1, Relaxed);
    let registration = Registration::new(shard.clone());
    let (shard, app) = (shard.clone(), app.clone());
    tokio::task::spawn_local(async move {
        serve_connection(accepted.conn, accepted.peer, &shard, &*app, registration).await;
    });
}

/// Refresh the shard's `Date` cache just after each second boundary.
async fn refresh_date(shard: Rc<ShardLocal>) {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let to_next_second = Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()));
        sleep(to_next_second + Duration::from_millis(1)).await;
        shard.date.refresh();
    }
}
