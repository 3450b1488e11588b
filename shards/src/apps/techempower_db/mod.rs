//! The TechEmpower database tests on a per-shard Postgres pool:
//! `/db`, `/queries`, `/fortunes`, `/updates`, `/cached-queries`, beside
//! the in-memory `/plaintext` and `/json` of [`TechEmpower`].
//!
//! | file | what |
//! | --- | --- |
//! | `mod.rs` | the app: routes, and a database error into its 503/500 |
//! | `queries.rs` | the statements and the queries each test runs, pipelined |
//! | `fortunes.rs` | the fortunes page, an askama template |
//! | `count.rs` | the `?q=N` count, clamped to 1–500 as the rules say |
//!
//! The rules this follows: every response is built per request; `/queries`
//! and `/updates` read each row with a query of its own (pipelined on one
//! connection, not one `WHERE id IN`), `/updates` writes them back in one
//! batched statement; `/fortunes` adds a fortune at request time, sorts,
//! and escapes through the template; `/cached-queries` reads a cache of
//! the `world` table the shard loads once.

mod count;
mod fortunes;
mod queries;

use std::rc::Rc;
use std::sync::Arc;

use http::StatusCode;
use serde::Serialize;
use tokio::sync::OnceCell;

use self::count::query_count;
use self::queries::{World, STATEMENTS};
use super::techempower::TechEmpower;
use crate::database::{Database, DatabaseError, DatabaseHealth, DatabaseSettings};
use crate::{App, Request, Response, ShardInfo};

/// The whole TechEmpower suite on one shard: the database tests on the
/// shard's own [`Database`], plaintext and json as [`TechEmpower`] serves
/// them. The `shardd` binary serves it with `--database-url`.
#[derive(Clone)]
pub struct TechEmpowerDb {
    database: Database,
    /// `/cached-queries`: every world's number, by id − 1, loaded by the
    /// first request that needs it (and again if that load failed).
    cache: Rc<OnceCell<Box<[i32]>>>,
}

impl TechEmpowerDb {
    /// The statements it prepares on every connection (what `shardd
    /// --check` prepares to find a missing table before a start).
    pub const STATEMENTS: &'static [&'static str] = STATEMENTS;

    /// Start the app on `shard`: its pool connects in the background.
    /// Call it in the app factory (it runs on the shard).
    pub fn start(
        settings: &DatabaseSettings,
        shard: &ShardInfo,
        health: &Arc<DatabaseHealth>,
    ) -> Result<TechEmpowerDb, String> {
        Ok(TechEmpowerDb {
            database: Database::start(settings, STATEMENTS, shard, health)?,
            cache: Rc::new(OnceCell::new()),
        })
    }

    async fn database_test(
        &self,
        path: &str,
        request: &Request<'_>,
    ) -> Result<Response, DatabaseError> {
        let count = || query_count(request.query());
        if path == "/cached-queries" {
            let cache = self
                .cache
                .get_or_try_init(|| async {
                    let lease = self.database.lease().await?;
                    lease.run(queries::all_worlds(&lease)).await
                })
                .await?;
            return Ok(json(&queries::cached_worlds(cache, count())));
        }
        let lease = self.database.lease().await?;
        Ok(match path {
            "/db" => json(&lease.run(queries::random_world(&lease)).await?),
            "/queries" => json(&lease.run(queries::random_worlds(&lease, count())).await?),
            "/updates" => json(&lease.run(queries::update_worlds(&lease, count())).await?),
            _ => {
                let rows = lease.run(queries::fortunes(&lease)).await?;
                let page = fortunes::render(rows.iter().map(queries::fortune).collect());
                Response::new(StatusCode::OK)
                    .with_header("Content-Type", "text/html; charset=utf-8")
                    .with_body(page)
            }
        })
    }
}

fn json<T: Serialize + ?Sized>(value: &T) -> Response {
    Response::json(serde_json::to_vec(value).unwrap_or_default())
}

impl App for TechEmpowerDb {
    async fn call(&self, request: &Request<'_>) -> Response {
        let path = request.path();
        if !matches!(
            path,
            "/db" | "/queries" | "/fortunes" | "/updates" | "/cached-queries"
        ) {
            return TechEmpower.respond(request);
        }
        if !matches!(request.method_str(), "GET" | "HEAD") {
            return Response::new(StatusCode::METHOD_NOT_ALLOWED)
                .with_header("Allow", "GET, HEAD")
                .with_header("Content-Type", "text/plain")
                .with_body("method not allowed\n");
        }
        self.database_test(path, request)
            .await
            .unwrap_or_else(|error| error.response())
    }
}

/// A world as the tests answer it: `{"id":1,"randomNumber":2}`.
impl Serialize for World {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct;
        let mut world = serializer.serialize_struct("World", 2)?;
        world.serialize_field("id", &self.id)?;
        world.serialize_field("randomNumber", &self.random_number)?;
        world.end()
    }
}
