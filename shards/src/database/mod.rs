//! A database on every shard: Postgres connections opened on each shard's
//! own runtime, shared by that shard's requests with their queries
//! pipelined, never shared across cores (feature `postgres`).
//!
//! | file | what |
//! | --- | --- |
//! | `settings.rs` | [`DatabaseSettings`], the `[database]` table |
//! | `pool.rs` | [`Database`]: a shard's connections, kept open with backoff; the [`Lease`] a request runs its queries through |
//! | `error.rs` | [`DatabaseError`] and the 503/500 a client gets for it |
//! | `probe.rs` | [`probe`]: connect once, for `shardd --check` |
//! | `health.rs` | [`DatabaseHealth`]: live connections per shard and outcome counters, for `/health/ready` and `/metrics` |
//!
//! ```no_run
//! use std::sync::Arc;
//! use shardd_shards::database::{Database, DatabaseHealth, DatabaseSettings};
//! use shardd_shards::{App, Request, Response};
//!
//! const STATEMENTS: &[&str] = &["SELECT randomnumber FROM world WHERE id = $1"];
//!
//! struct Lookup {
//!     database: Database,
//! }
//!
//! impl App for Lookup {
//!     async fn call(&self, _request: &Request<'_>) -> Response {
//!         let lease = match self.database.lease().await {
//!             Ok(lease) => lease,
//!             Err(error) => return error.response(), // 503 at once
//!         };
//!         let row = lease.run(lease.client().query_one(lease.statement(0), &[&1i32])).await;
//!         match row {
//!             Ok(row) => Response::text(row.get::<_, i32>(0).to_string()),
//!             Err(error) => error.response(),
//!         }
//!     }
//! }
//!
//! // In the app factory, which runs on each shard:
//! fn make_app(shard: &shardd_shards::ShardInfo, health: &Arc<DatabaseHealth>) -> Lookup {
//!     let settings = DatabaseSettings::with_url("postgres://user:password@127.0.0.1/db");
//!     Lookup {
//!         database: Database::start(&settings, STATEMENTS, shard, health).expect("valid settings"),
//!     }
//! }
//! # let _ = make_app;
//! ```

mod error;
mod health;
mod pool;
mod probe;
mod settings;

pub use error::DatabaseError;
pub use health::{DatabaseHealth, Outcome};
pub use pool::{Database, Lease};
pub use probe::probe;
pub use settings::DatabaseSettings;
