//! One shard's life: a thread-local tokio runtime, the accept loop over its
//! [`Listener`], and the drain at the end.
//!
//! The loop below is the same whatever listener it is given.

use std::io;
use std::pin::pin;
use std::rc::Rc;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::runtime::LocalOptions;
use tokio::time::sleep;

use crate::access_log::AccessLog;
use crate::app::App;
use crate::buffers::BufferPool;
use crate::connection::serve_connection;
use crate::drain::Drain;
use crate::env::ShardEnv;
use crate::http::DateCache;
use crate::info::ShardInfo;
use crate::limits::Limits;
use crate::listener::{Accepted, Listener, PeerAddr};
use crate::listeners::stack::{ListenerStack, ServeListener};
use crate::shard_config::ShardConfig;
use crate::slot::ConnectionSlot;
use crate::stats::ShardStats;

/// Pause after a failed accept (EMFILE and friends) before trying again.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(10);

/// Messages from the main thread to a shard.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardCommand {
    /// Stop taking connections, finish the open ones, return.
    Drain,
    /// Enforce these limits from now on (a configuration reload); open
    /// connections see them from their next read of a limit.
    SetLimits(Limits),
    /// Panic the shard's thread, to exercise the supervisor (fault injection).
    #[cfg(feature = "fault-injection")]
    Kill,
}

/// Everything a shard thread is started with.
pub struct ShardSetup {
    /// Who the shard is.
    pub info: ShardInfo,
    /// What it takes from the server configuration.
    pub config: ShardConfig,
    /// Shared with the main thread.
    pub stats: Arc<ShardStats>,
    /// Commands from the main thread (drain).
    pub commands: flume::Receiver<ShardCommand>,
}

/// Run one shard on the calling thread until it has drained.
///
/// The factories run inside the shard's runtime, on its thread, so the
/// listener may register sockets with the shard's reactor and the app may
/// hold `!Send` state.
pub fn run_shard<L, A>(
    setup: ShardSetup,
    make_listener: impl FnOnce(&ShardInfo) -> io::Result<L>,
    make_app: impl FnOnce(&ShardInfo) -> A,
) -> io::Result<()>
where
    L: Listener,
    A: App,
{
    // A `LocalRuntime` runs `!Send` tasks itself: no `LocalSet` in between
    // to queue and wake them a second time (about 150 instructions a wake-up).
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .enable_time()
        .build_local(LocalOptions::default())?;
    runtime.block_on(async move {
        let listener = make_listener(&setup.info)?;
        // Static files and compression built by the factory count here.
        crate::content_stats::set_current_shard_stats(setup.stats.clone());
        let app = make_app(&setup.info);
        let stats = setup.stats.clone();
        let access_log = setup
            .config
            .access_log
            .clone()
            .map(|sink| AccessLog::new(sink, setup.info.shard_id, setup.stats.clone()));
        let env = Rc::new(ShardEnv {
            limits: setup.config.limits.clone().into(),
            date: DateCache::new(),
            pool: BufferPool::new(setup.config.pooled_buffers),
            drain: Drain::default(),
            stats: setup.stats,
            access_log,
            http2: setup.config.http2.clone(),
        });
        let shard = Shard {
            id: setup.info.shard_id,
            env,
            app: Rc::new(app),
        };
        let stack = ListenerStack {
            proxy_protocol: setup.config.proxy_protocol,
            tls: setup.config.tls.map(|tls| (tls, stats)),
        };
        let server = ServeShard {
            shard: &shard,
            commands: setup.commands,
            drain_timeout: setup.config.drain_timeout,
        };
        stack.serve(listener, server).await;
        Ok(())
    })
}

/// The shard's loop, waiting for the listener stack built over its listener.
struct ServeShard<'a, A> {
    shard: &'a Shard<A>,
    commands: flume::Receiver<ShardCommand>,
    drain_timeout: Duration,
}

impl<A: App> ServeListener for ServeShard<'_, A> {
    async fn serve<L: Listener>(self, listener: L) {
        self.shard
            .serve(listener, self.commands, self.drain_timeout)
            .await
    }
}

/// One running shard: its id, the state its connections share, its app.
struct Shard<A> {
    id: usize,
    env: Rc<ShardEnv>,
    app: Rc<A>,
}

impl<A: App> Shard<A> {
    /// The shard's server loop: accept, spawn a task per connection, drain.
    async fn serve<L: Listener>(
        &self,
        mut listener: L,
        commands: flume::Receiver<ShardCommand>,
        drain_timeout: Duration,
    ) {
        let date_task = tokio::task::spawn_local(refresh_date(self.env.clone()));
        // Lives across loop turns so a new accept does not re-register it.
        let mut command = pin!(commands.recv_async());
        loop {
            tokio::select! {
                biased;
                received = &mut command => match received {
                    #[cfg(feature = "fault-injection")]
                    Ok(ShardCommand::Kill) => panic!("shard {} killed on request", self.id),
                    Ok(ShardCommand::SetLimits(limits)) => {
                        self.env.limits.set(limits);
                        command.set(commands.recv_async());
                    }
                    Ok(ShardCommand::Drain) | Err(_) => {
                        listener.stop_accepting();
                        // Serve what the listener already holds (a handoff queue, a
                        // kernel accept queue), but wait for nothing new.
                        while let Some(Ok(Some(accepted))) = now_or_never(listener.accept()).await {
                            self.spawn_connection::<L>(accepted);
                        }
                        break;
                    }
                },
                accepted = listener.accept() => match accepted {
                    Ok(Some(accepted)) => self.spawn_connection::<L>(accepted),
                    Ok(None) => break,
                    Err(error) => {
                        log::warn!("shard {}: accept failed: {error}", self.id);
                        sleep(ACCEPT_BACKOFF).await;
                    }
                },
            }
        }
        // No more connections will come. Close the listener now (a listening
        // socket would keep completing handshakes nobody will serve), close idle
        // connections, let in-flight requests finish, but not past the deadline.
        drop(listener);
        self.env.drain.start();
        let _ = tokio::time::timeout(drain_timeout, self.env.drain.all_closed()).await;
        date_task.abort();
        if let Some(access_log) = &self.env.access_log {
            access_log.flush();
        }
    }

    fn spawn_connection<L: Listener>(&self, accepted: Accepted<L::Conn>) {
        self.env.stats.accepted.fetch_add(1, Relaxed);
        // Taken now, not when the task first runs: a drain that starts in
        // between still waits for this connection.
        let slot = ConnectionSlot::take(self.env.clone());
        let (env, app) = (self.env.clone(), self.app.clone());
        tokio::task::spawn_local(async move {
            let Accepted { mut conn, mut peer } = accepted;
            if let Err(error) = L::establish(&mut conn, &mut peer).await {
                count_establish_failure(&env.stats, &peer, &error);
                return; // dropping the connection closes it
            }
            let key = slot.drain_key();
            serve_connection(conn, L::plain_socket, peer, &env, &*app, key).await;
            drop(slot);
        });
    }
}

/// A connection closed because its listener could not establish it.
fn count_establish_failure(stats: &ShardStats, peer: &PeerAddr, error: &io::Error) {
    let counter = match error.kind() {
        io::ErrorKind::TimedOut => &stats.establish_timeouts,
        _ => &stats.establish_failures,
    };
    counter.fetch_add(1, Relaxed);
    log::debug!("connection from {peer} closed before serving: {error}");
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

/// Refresh the shard's `Date` cache just after each second boundary; hand
/// the access log's lines of the last second to its writer.
async fn refresh_date(env: Rc<ShardEnv>) {
    loop {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        let to_next_second = Duration::from_nanos(1_000_000_000 - u64::from(now.subsec_nanos()));
        sleep(to_next_second + Duration::from_millis(1)).await;
        env.date.refresh();
        if let Some(access_log) = &env.access_log {
            access_log.tick();
        }
    }
}
