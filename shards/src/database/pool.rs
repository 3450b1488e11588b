//! `Database`: one shard's Postgres connections, kept open by a task each,
//! and the lease a request takes to use one.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::{CancelToken, Client, NoTls, Statement};

use super::error::describe;
use super::health::{DatabaseHealth, LiveConnection, Outcome};
use super::{DatabaseError, DatabaseSettings};
use crate::ShardInfo;

/// tokio-postgres' default `keepalives_idle` (libpq's: the system's two hours).
const DEFAULT_KEEPALIVES_IDLE: Duration = Duration::from_secs(2 * 60 * 60);

/// A connection that closes sooner than this after opening counts as a
/// failure for the reconnect backoff.
const SHORT_LIVED: Duration = Duration::from_secs(1);

/// The first wait before reconnecting; doubled after each failure.
const FIRST_RECONNECT_DELAY: Duration = Duration::from_millis(50);

/// One shard's Postgres pool: `connections_per_shard` connections, each
/// kept open (and reopened with backoff) by a task on the shard, with the
/// statements the app named prepared on each.
///
/// Cheap to clone (an `Rc`); `!Send`, like everything on a shard. A
/// request takes a [`Lease`] and runs its queries through it; the
/// queries of all the requests on one connection are pipelined by
/// `tokio-postgres` (written as they come, answered in order).
#[derive(Clone)]
pub struct Database {
    pool: Rc<Pool>,
}

struct Pool {
    config: tokio_postgres::Config,
    statements: &'static [&'static str],
    query_timeout: Duration,
    connect_timeout: Duration,
    max_reconnect_delay: Duration,
    max_waiting: usize,
    connections: Box<[RefCell<Option<Rc<Connection>>>]>,
    next: Cell<usize>,
    waiting: Cell<usize>,
    /// Whether the first attempt to connect has ended (up or failed).
    settled: Cell<bool>,
    /// Wakes the requests waiting for the first attempt.
    settle: Notify,
    /// A connection was lost or could not be opened: the next one that
    /// opens is logged.
    was_down: Cell<bool>,
    health: Arc<DatabaseHealth>,
    shard: usize,
}

/// One open connection and its prepared statements.
struct Connection {
    client: Client,
    statements: Vec<Statement>,
    /// Wakes the connection's task to close it (a query timed out).
    abandon: Rc<Notify>,
    /// Set once it is being closed: no new lease takes it, and the
    /// other requests that time out on it send no second cancel.
    abandoned: Cell<bool>,
    _live: LiveConnection,
}

impl Database {
    /// Start `shard`'s pool: its connections open in the background, so
    /// a shard serves at once (requests get 503 until one is up).
    /// `statements` are prepared on every connection, in order; a request
    /// uses them by index ([`Lease::statement`]). Call it on the shard (in
    /// the app factory): the tasks run on the shard's runtime.
    ///
    /// `settings` must have passed [`DatabaseSettings::validate`].
    pub fn start(
        settings: &DatabaseSettings,
        statements: &'static [&'static str],
        shard: &ShardInfo,
        health: &Arc<DatabaseHealth>,
    ) -> Result<Database, String> {
        settings.validate()?;
        let mut config = settings.connection_config()?;
        // A database host that vanishes (no FIN, no RST) is found by TCP
        // keepalives within ~30 s even on an idle connection, instead of
        // the system's two hours; a URL that sets its own keeps them.
        if config.get_keepalives_idle() == DEFAULT_KEEPALIVES_IDLE {
            config
                .keepalives(true)
                .keepalives_idle(Duration::from_secs(15))
                .keepalives_interval(Duration::from_secs(5))
                .keepalives_retries(3);
        }
        if config.get_application_name().is_none() {
            config.application_name(format!("shardd shard {}", shard.shard_id));
        }
        let pool = Rc::new(Pool {
            config,
            statements,
            query_timeout: settings.query_timeout(),
            connect_timeout: settings.connect_timeout(),
            max_reconnect_delay: settings.max_reconnect_delay(),
            max_waiting: settings.max_waiting_per_shard,
            connections: (0..settings.connections_per_shard)
                .map(|_| RefCell::new(None))
                .collect(),
            next: Cell::new(0),
            waiting: Cell::new(0),
            settled: Cell::new(false),
            settle: Notify::new(),
            was_down: Cell::new(false),
            health: Arc::clone(health),
            shard: shard.shard_id,
        });
        for index in 0..pool.connections.len() {
            tokio::task::spawn_local(Rc::clone(&pool).keep_connected(index));
        }
        Ok(Database { pool })
    }

    /// A connection for one request, or `Busy` (too many requests wait
    /// already) or `Unavailable` (no live connection), both at once.
    /// Connections are taken in turn, so a shard's requests spread over
    /// them. Only while the shard's first connection is being opened (a
    /// shard just started, say by an upgrade) does a request wait for it,
    /// at most `connect_timeout_ms`, rather than get a 503 a moment
    /// before the database would have answered.
    pub async fn lease(&self) -> Result<Lease, DatabaseError> {
        let pool = &self.pool;
        if pool.waiting.get() >= pool.max_waiting {
            pool.health.count(pool.shard, Outcome::Busy);
            return Err(DatabaseError::Busy);
        }
        // Counted as waiting from here, so the wait below is bounded too.
        pool.waiting.set(pool.waiting.get() + 1);
        let waiting = Waiting(pool);
        if let Some(connection) = pool.next_connection() {
            return Ok(waiting.into_lease(connection));
        }
        if !pool.settled.get() {
            let settled = pool.settle.notified();
            let _ = tokio::time::timeout(pool.connect_timeout, settled).await;
            if let Some(connection) = pool.next_connection() {
                return Ok(waiting.into_lease(connection));
            }
        }
        pool.health.count(pool.shard, Outcome::Unavailable);
        Err(DatabaseError::Unavailable)
    }

    /// Whether this shard has a live connection.
    pub fn is_connected(&self) -> bool {
        self.pool
            .connections
            .iter()
            .any(|slot| slot.borrow().as_ref().is_some_and(|c| c.is_usable()))
    }
}

/// One request's use of a connection: counts as waiting on the database
/// until dropped.
pub struct Lease {
    connection: Rc<Connection>,
    pool: Rc<Pool>,
}

impl Lease {
    /// The connection's client: issue queries with it inside [`Lease::run`].
    pub fn client(&self) -> &Client {
        &self.connection.client
    }

    /// The statement at `index` of those given to [`Database::start`],
    /// prepared on this connection.
    ///
    /// # Panics
    /// If `index` is out of range (a programming error).
    pub fn statement(&self, index: usize) -> &Statement {
        &self.connection.statements[index]
    }

    /// Run `queries` (made with [`client`](Self::client)) within
    /// `query_timeout_ms`. Past it the query is cancelled and the
    /// connection replaced: a stuck query holds up every query pipelined
    /// behind it on the same connection.
    pub async fn run<T>(
        &self,
        queries: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, DatabaseError> {
        let health = &self.pool.health;
        match tokio::time::timeout(self.pool.query_timeout, queries).await {
            Ok(Ok(value)) => {
                health.count(self.pool.shard, Outcome::Answered);
                Ok(value)
            }
            Ok(Err(error)) => {
                health.count(self.pool.shard, Outcome::Failed);
                let error = DatabaseError::Query(error);
                // A query Postgres refused is a bug worth a line each time;
                // an outage is logged once by the connection's task.
                if !error.is_transient() {
                    log::warn!("database: shard {}: {error}", self.pool.shard);
                }
                Err(error)
            }
            Err(_elapsed) => {
                health.count(self.pool.shard, Outcome::TimedOut);
                self.connection.abandon(self.pool.shard);
                Err(DatabaseError::TimedOut)
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.pool.waiting.set(self.pool.waiting.get() - 1);
    }
}

impl Connection {
    fn is_usable(&self) -> bool {
        !self.abandoned.get() && !self.client.is_closed()
    }

    /// Cancel what runs on it and close it; its task reconnects.
    fn abandon(&self, shard: usize) {
        if self.abandoned.replace(true) {
            return;
        }
        log::warn!("database: shard {shard}: a query timed out; replacing its connection");
        let cancel: CancelToken = self.client.cancel_token();
        tokio::task::spawn_local(async move {
            // Without it Postgres would run the query (or wait on its lock)
            // until it next notices the closed socket.
            let _ = cancel.cancel_query(NoTls).await;
        });
        self.abandon.notify_one();
    }
}

/// One request counted in `waiting` until it has its lease (which then
/// counts it) or gives up.
struct Waiting<'a>(&'a Rc<Pool>);

impl Waiting<'_> {
    fn into_lease(self, connection: Rc<Connection>) -> Lease {
        let pool = Rc::clone(self.0);
        std::mem::forget(self);
        Lease { connection, pool }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.waiting.set(self.0.waiting.get() - 1);
    }
}

impl Pool {
    /// The next usable connection in turn, if any.
    fn next_connection(&self) -> Option<Rc<Connection>> {
        let count = self.connections.len();
        let start = self.next.get();
        (0..count).find_map(|step| {
            let index = (start + step) % count;
            let connection = self.connections[index].borrow().clone()?;
            connection.is_usable().then(|| {
                self.next.set(index + 1);
                connection
            })
        })
    }

    /// The first attempt to connect has ended, either way: requests stop
    /// waiting for it.
    fn settle(&self) {
        if !self.settled.replace(true) {
            self.settle.notify_waiters();
        }
    }

    /// Keep connection `index` open for the life of the shard.
    async fn keep_connected(self: Rc<Self>, index: usize) {
        let mut delay = FIRST_RECONNECT_DELAY;
        let mut failures: u32 = 0;
        loop {
            match self.open_and_serve(index).await {
                Ok(lived) if lived >= SHORT_LIVED => {
                    delay = FIRST_RECONNECT_DELAY;
                    failures = 0;
                }
                // Closed right after it opened (a proxy or a database
                // turning connections away after the handshake): back
                // off as after a failure rather than reconnect in a loop.
                Ok(_) => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max_reconnect_delay);
                }
                Err(error) => {
                    self.settle();
                    self.health.count_connect_failure();
                    self.was_down.set(true);
                    failures += 1;
                    // The first failure of a run is news; the rest of an
                    // outage would flood the log at every retry.
                    if failures == 1 {
                        log::warn!(
                            "database: shard {} cannot connect: {error}; retrying every {:?} at most",
                            self.shard,
                            self.max_reconnect_delay
                        );
                    } else {
                        log::debug!("database: shard {} cannot connect: {error}", self.shard);
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(self.max_reconnect_delay);
                }
            }
        }
    }

    /// Open connection `index`, prepare the statements, serve requests on
    /// it until it closes or is abandoned: `Ok(how long it was up)`.
    /// `Err`: it never came up.
    async fn open_and_serve(&self, index: usize) -> Result<Duration, String> {
        let (client, connection) =
            tokio::time::timeout(self.connect_timeout, self.config.connect(NoTls))
                .await
                .map_err(|_| format!("no connection within {:?}", self.connect_timeout))?
                .map_err(|error| describe(&error))?;
        let abandon = Rc::new(Notify::new());
        let mut driver = pin!({
            let abandon = Rc::clone(&abandon);
            async move {
                tokio::select! {
                    ended = connection => ended.err(),
                    () = abandon.notified() => None,
                }
            }
        });
        let prepare = prepare_all(&client, self.statements);
        let statements = tokio::select! {
            prepared = tokio::time::timeout(self.connect_timeout, prepare) => match prepared {
                Ok(prepared) => prepared?,
                Err(_) => return Err(format!("statements not prepared within {:?}", self.connect_timeout)),
            },
            ended = &mut driver => {
                return Err(ended.map_or("connection closed".into(), |error| describe(&error)));
            }
        };
        if self.was_down.replace(false) {
            log::info!("database: shard {} connected again", self.shard);
        }
        let up_since = tokio::time::Instant::now();
        *self.connections[index].borrow_mut() = Some(Rc::new(Connection {
            client,
            statements,
            abandon,
            abandoned: Cell::new(false),
            _live: self.health.connected(self.shard),
        }));
        self.settle();
        if let Some(error) = driver.await {
            self.was_down.set(true);
            log::warn!(
                "database: shard {}: connection lost: {}",
                self.shard,
                describe(&error)
            );
        }
        // Requests holding a lease keep the client until they finish;
        // their queries fail as closed (503).
        self.connections[index].borrow_mut().take();
        Ok(up_since.elapsed())
    }
}

/// Prepare `statements` on `client`, in order. The error names the
/// statement Postgres refused (a missing table, say).
pub(super) async fn prepare_all(
    client: &Client,
    statements: &[&str],
) -> Result<Vec<Statement>, String> {
    let mut prepared = Vec::with_capacity(statements.len());
    for sql in statements {
        let statement = client
            .prepare(sql)
            .await
            .map_err(|error| format!("preparing {sql:?}: {}", describe(&error)))?;
        prepared.push(statement);
    }
    Ok(prepared)
}
