-- The TechEmpower database benchmark's schema and data for Postgres: the
-- `world` table (10,000 rows, random numbers 1..=10000) read and written by
-- /db, /queries, /updates and /cached-queries, and the `fortune` table (the
-- benchmark's 12 fixed messages) read by /fortunes.
--
-- Load it into an empty database owned by the benchmark's user (the names
-- and password every TechEmpower entry uses), as a superuser first:
--
--   createuser --pwprompt benchmarkdbuser        # password: benchmarkdbpass
--   createdb --owner benchmarkdbuser hello_world
--   psql -v ON_ERROR_STOP=1 \
--     postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1/hello_world \
--     -f config/techempower-postgres.sql
--
-- then point shardd at it:
--   shardd --app techempower \
--     --database-url postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1/hello_world
--
-- The tests (tests/support/postgres.rs) and benches/db/postgres.sh load it
-- into a throw-away cluster the same way. Running it twice fails (the tables
-- exist): load it into an empty database.

BEGIN;

CREATE TABLE world (
    id integer PRIMARY KEY,
    randomnumber integer NOT NULL
);

-- random() is in [0, 1), so each number is uniform over 1..=10000.
INSERT INTO world (id, randomnumber)
SELECT id, 1 + floor(random() * 10000)::integer
FROM generate_series(1, 10000) AS id;

CREATE TABLE fortune (
    id integer PRIMARY KEY,
    message varchar(2048) NOT NULL
);

-- The benchmark's fixed rows: an HTML-escaping check (11) and a
-- multi-byte UTF-8 check (12) among them.
INSERT INTO fortune (id, message) VALUES
    (1, 'fortune: No such file or directory'),
    (2, 'A computer scientist is someone who fixes things that aren''t broken.'),
    (3, 'After enough decimal places, nobody gives a damn.'),
    (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),
    (5, 'A computer program does what you tell it to do, not what you want it to do.'),
    (6, 'Emacs is a nice operating system, but I prefer UNIX. — Tom Christaensen'),
    (7, 'Any program that runs right is obsolete.'),
    (8, 'A list is only as strong as its weakest link. — Donald Knuth'),
    (9, 'Feature: A bug with seniority.'),
    (10, 'Computers make very fast, very accurate mistakes.'),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, 'フレームワークのベンチマーク');

COMMIT;

-- Planner statistics now, so the first benchmark seconds use index scans.
ANALYZE world;
ANALYZE fortune;
