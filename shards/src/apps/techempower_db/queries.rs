//! The statements the tests prepare on every connection, and the queries
//! each test runs. Queries of one request are issued together and
//! pipelined on its connection: one round trip's wait for all of them.

use futures_util::future::try_join_all;
use tokio_postgres::{Error, Row};

use super::count::MAX_COUNT;
use super::fortunes::Fortune;
use crate::database::Lease;

/// Rows in the `world` table (ids 1..=10000).
const WORLD_ROWS: i32 = 10_000;

/// Prepared on every connection; indexed by the constants below.
pub(super) const STATEMENTS: &[&str] = &[
    "SELECT id, randomnumber FROM world WHERE id = $1",
    "SELECT id, message FROM fortune",
    // One statement for a whole batch: the new numbers arrive as two
    // arrays, joined to the table by id.
    "UPDATE world SET randomnumber = new.randomnumber \
     FROM UNNEST($1::int[], $2::int[]) AS new(id, randomnumber) \
     WHERE world.id = new.id",
    "SELECT id, randomnumber FROM world ORDER BY id",
];
const WORLD_BY_ID: usize = 0;
const ALL_FORTUNES: usize = 1;
const UPDATE_WORLDS: usize = 2;
const ALL_WORLDS: usize = 3;

/// One row of the `world` table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct World {
    pub(super) id: i32,
    pub(super) random_number: i32,
}

fn random_id() -> i32 {
    fastrand::i32(1..=WORLD_ROWS)
}

async fn world(lease: &Lease, id: i32) -> Result<World, Error> {
    let row = lease
        .client()
        .query_one(lease.statement(WORLD_BY_ID), &[&id])
        .await?;
    Ok(World {
        id: row.get(0),
        random_number: row.get(1),
    })
}

/// `/db`: one random world.
pub(super) async fn random_world(lease: &Lease) -> Result<World, Error> {
    world(lease, random_id()).await
}

/// `/queries`: `count` random worlds, a query each, all in flight at once.
pub(super) async fn random_worlds(lease: &Lease, count: usize) -> Result<Vec<World>, Error> {
    try_join_all((0..count.min(MAX_COUNT)).map(|_| world(lease, random_id()))).await
}

/// `/updates`: `count` random worlds read, given new random numbers,
/// written back in one statement.
pub(super) async fn update_worlds(lease: &Lease, count: usize) -> Result<Vec<World>, Error> {
    let mut worlds = random_worlds(lease, count).await?;
    for world in &mut worlds {
        world.random_number = random_id();
    }
    // Sorted ids and one number per id: two requests updating the same
    // rows lock them in the same order (no deadlock), and an id drawn
    // twice is written once, with the number both answers show.
    let mut written: Vec<World> = worlds.clone();
    written.sort_unstable_by_key(|world| world.id);
    written.dedup_by_key(|world| world.id);
    for world in &mut worlds {
        if let Ok(at) = written.binary_search_by_key(&world.id, |w| w.id) {
            world.random_number = written[at].random_number;
        }
    }
    let ids: Vec<i32> = written.iter().map(|world| world.id).collect();
    let numbers: Vec<i32> = written.iter().map(|world| world.random_number).collect();
    lease
        .client()
        .execute(lease.statement(UPDATE_WORLDS), &[&ids, &numbers])
        .await?;
    Ok(worlds)
}

/// `/fortunes`: every row of the `fortune` table (read with
/// [`fortune`], which borrows from the row).
pub(super) async fn fortunes(lease: &Lease) -> Result<Vec<Row>, Error> {
    lease
        .client()
        .query(lease.statement(ALL_FORTUNES), &[])
        .await
}

/// One row of [`fortunes`].
pub(super) fn fortune(row: &Row) -> Fortune<'_> {
    Fortune {
        id: row.get(0),
        message: row.get(1),
    }
}

/// The `/cached-queries` cache: every world's number, at index id − 1.
pub(super) async fn all_worlds(lease: &Lease) -> Result<Box<[i32]>, Error> {
    let rows = lease
        .client()
        .query(lease.statement(ALL_WORLDS), &[])
        .await?;
    let mut numbers = vec![0; WORLD_ROWS as usize];
    for row in rows {
        let id: i32 = row.get(0);
        if let Some(slot) = usize::try_from(id - 1)
            .ok()
            .and_then(|i| numbers.get_mut(i))
        {
            *slot = row.get(1);
        }
    }
    Ok(numbers.into_boxed_slice())
}

/// `/cached-queries`: `count` random worlds from the cache.
pub(super) fn cached_worlds(cache: &[i32], count: usize) -> Vec<World> {
    (0..count.min(MAX_COUNT))
        .map(|_| {
            let id = random_id();
            World {
                id,
                random_number: cache.get(id as usize - 1).copied().unwrap_or_default(),
            }
        })
        .collect()
}
