//! What both database peers share: the command line, the TechEmpower
//! queries on a deadpool-postgres pool, and the fortunes page. Each binary
//! only adds its framework's routing around them.

use std::collections::BTreeMap;

use askama::Template;
use clap::Parser;
use deadpool_postgres::{Client, Manager, ManagerConfig, Pool, PoolError, RecyclingMethod};
use futures_util::future::try_join_all;
use rand::Rng;
use serde::Serialize;
use tokio_postgres::NoTls;

/// The command line of both peers.
#[derive(Parser, Debug, Clone)]
pub struct Options {
    /// TCP port on 127.0.0.1.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// Worker threads (actix-web workers, or tokio worker threads for axum).
    #[arg(long, default_value_t = 2)]
    pub threads: usize,
    /// Postgres connections for the whole server (actix-web: split evenly
    /// over its workers, each worker keeping its own). Default: 8 per
    /// thread. Each request holds one connection while its queries run (its
    /// own reads pipelined on it); with a database on the same few cores,
    /// more connections than that only add Postgres processes competing for
    /// them, fewer leave requests waiting for a connection.
    #[arg(long)]
    pub pool: Option<usize>,
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE
    #[arg(long)]
    pub database_url: String,
}

impl Options {
    /// The connections of the whole server.
    pub fn pool_size(&self) -> usize {
        self.pool.unwrap_or(8 * self.threads).max(1)
    }
}

/// A row of `world`, as TechEmpower's JSON spells it.
#[derive(Serialize, Debug, Clone, Copy)]
pub struct World {
    pub id: i32,
    #[serde(rename = "randomNumber")]
    pub random_number: i32,
}

/// A row of `fortune`.
pub struct Fortune {
    pub id: i32,
    pub message: String,
}

#[derive(Template)]
#[template(path = "fortunes.html")]
struct FortunesPage<'a> {
    fortunes: &'a [Fortune],
}

/// The world ids are 1..=10000.
const WORLD_ROWS: i32 = 10_000;

const SELECT_WORLD: &str = "SELECT id, randomnumber FROM world WHERE id = $1";
const SELECT_FORTUNES: &str = "SELECT id, message FROM fortune";
/// All of a request's new numbers in one statement.
const UPDATE_WORLDS: &str = "UPDATE world SET randomnumber = new.randomnumber \
     FROM (SELECT unnest($1::int[]) AS id, unnest($2::int[]) AS randomnumber) AS new \
     WHERE world.id = new.id";

/// A pool of at most `size` connections to `url`; connections open on first use.
pub fn pool(url: &str, size: usize) -> Pool {
    let config: tokio_postgres::Config = url
        .parse()
        .unwrap_or_else(|e| panic!("--database-url is not a Postgres URL: {e}"));
    let manager = Manager::from_config(
        config,
        NoTls,
        ManagerConfig {
            // Checks only that the connection is not closed: no round trip per request.
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(size)
        .build()
        .expect("build the connection pool")
}

/// `q` of `/queries?q=N` and `/updates?q=N` by TechEmpower's rules: missing
/// or not a number is 1, and it is clamped to 1..=500.
pub fn query_count(q: Option<&str>) -> usize {
    q.and_then(|q| q.parse::<i64>().ok())
        .unwrap_or(1)
        .clamp(1, 500) as usize
}

/// The value of `name` in a query string (`a=1&q=20`).
pub fn query_param<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A random id of `world`, or a new random number for it (the same range).
fn random_id() -> i32 {
    rand::rng().random_range(1..=WORLD_ROWS)
}

/// One random row (`/db`).
pub async fn random_world(pool: &Pool) -> Result<World, PoolError> {
    let client = pool.get().await?;
    let select = client.prepare_cached(SELECT_WORLD).await?;
    let row = client.query_one(&select, &[&random_id()]).await?;
    Ok(World {
        id: row.get(0),
        random_number: row.get(1),
    })
}

/// `count` random rows, one query each (`/queries`), all in flight at once
/// on one connection.
pub async fn random_worlds(pool: &Pool, count: usize) -> Result<Vec<World>, PoolError> {
    let client = pool.get().await?;
    Ok(read_worlds(&client, count).await?)
}

async fn read_worlds(client: &Client, count: usize) -> Result<Vec<World>, tokio_postgres::Error> {
    let select = client.prepare_cached(SELECT_WORLD).await?;
    let reads = (0..count).map(|_| {
        let id = random_id();
        let select = &select;
        async move {
            let row = client.query_one(select, &[&id]).await?;
            Ok::<_, tokio_postgres::Error>(World {
                id: row.get(0),
                random_number: row.get(1),
            })
        }
    });
    try_join_all(reads).await
}

/// `count` random rows read one query each, given new random numbers and
/// written back in one batched statement (`/updates`); answers the rows as
/// written.
pub async fn update_worlds(pool: &Pool, count: usize) -> Result<Vec<World>, PoolError> {
    let client = pool.get().await?;
    let mut worlds = read_worlds(&client, count).await?;
    for world in &mut worlds {
        world.random_number = random_id();
    }
    // One new number per id (the last one drawn if an id came twice), in id
    // order: concurrent updates lock rows in the same order, never deadlock.
    let written: BTreeMap<i32, i32> = worlds.iter().map(|w| (w.id, w.random_number)).collect();
    for world in &mut worlds {
        world.random_number = written[&world.id];
    }
    let ids: Vec<i32> = written.keys().copied().collect();
    let numbers: Vec<i32> = written.values().copied().collect();
    let update = client.prepare_cached(UPDATE_WORLDS).await?;
    client.execute(&update, &[&ids, &numbers]).await?;
    Ok(worlds)
}

/// The fortunes page: every row plus one added now, sorted by message,
/// rendered (and HTML-escaped) by the askama template.
pub async fn fortunes_page(pool: &Pool) -> Result<String, PoolError> {
    let client = pool.get().await?;
    let select = client.prepare_cached(SELECT_FORTUNES).await?;
    let mut fortunes: Vec<Fortune> = client
        .query(&select, &[])
        .await?
        .iter()
        .map(|row| Fortune {
            id: row.get(0),
            message: row.get(1),
        })
        .collect();
    fortunes.push(Fortune {
        id: 0,
        message: "Additional fortune added at request time.".to_owned(),
    });
    fortunes.sort_by(|a, b| a.message.cmp(&b.message));
    Ok(FortunesPage {
        fortunes: &fortunes,
    }
    .render()
    .expect("render the fortunes template"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_count_follows_the_techempower_rules() {
        assert_eq!(query_count(None), 1);
        assert_eq!(query_count(Some("")), 1);
        assert_eq!(query_count(Some("foo")), 1);
        assert_eq!(query_count(Some("0")), 1);
        assert_eq!(query_count(Some("-3")), 1);
        assert_eq!(query_count(Some("20")), 20);
        assert_eq!(query_count(Some("501")), 500);
        assert_eq!(query_count(Some("99999999999999999999")), 1);
    }

    #[test]
    fn query_param_finds_q_among_others() {
        assert_eq!(query_param("a=1&q=20", "q"), Some("20"));
        assert_eq!(query_param("qq=3", "q"), None);
    }

    #[test]
    fn the_fortunes_template_escapes_and_keeps_the_markup() {
        let page = FortunesPage {
            fortunes: &[Fortune {
                id: 11,
                message: "<script>alert(\"x\");</script>".to_owned(),
            }],
        }
        .render()
        .unwrap();
        assert_eq!(
            page,
            "<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>\
             <tr><th>id</th><th>message</th></tr>\
             <tr><td>11</td><td>&#60;script&#62;alert(&#34;x&#34;);&#60;/script&#62;</td></tr>\
             </table></body></html>"
        );
    }
}
