#!/usr/bin/env bash
# A throw-away Postgres cluster with the TechEmpower data, for benches/db/run.sh
# (the same set-up as the tests' tests/support/postgres.rs, in shell).
#
#   benches/db/postgres.sh start   # initdb + start + load; prints the URL
#   benches/db/postgres.sh url     # postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:PORT/hello_world
#   benches/db/postgres.sh pid     # the postmaster's pid
#   benches/db/postgres.sh stop    # stop it and delete its directory
#
# PG_DIR: the cluster's directory (default /tmp/shardd-bench-pg); PG_PORT: its
# port on 127.0.0.1 (default: the first free one from 55432). POSTGRES_BINDIR: where initdb, pg_ctl and
# psql are (default: the newest /usr/lib/postgresql/<version>/bin, Debian's
# `postgresql` package). Postgres refuses root: as root, it runs as the
# package's `postgres` user. Settings: loopback only, fsync and synchronous
# commit off (a benchmark cluster: nothing needs to survive a crash),
# max_connections 200.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
PG_DIR=${PG_DIR:-/tmp/shardd-bench-pg}

bin_dir() {
  if [ -n "${POSTGRES_BINDIR:-}" ]; then echo "$POSTGRES_BINDIR"; return; fi
  local newest
  newest=$(find /usr/lib/postgresql -mindepth 3 -maxdepth 3 -path '*/bin/initdb' 2>/dev/null |
    sort -t/ -k5,5n | tail -n 1)
  if [ -z "$newest" ]; then
    echo "postgres.sh: the Postgres server is not installed (no /usr/lib/postgresql/<version>/bin/initdb):" \
      "apt-get install -y postgresql, or set POSTGRES_BINDIR" >&2
    exit 1
  fi
  dirname "$newest"
}

# Runs a Postgres program, as the postgres user when we are root.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then
    (cd "$PG_DIR" && setpriv --reuid=postgres --regid=postgres --init-groups env HOME="$PG_DIR" "$@")
  else
    (cd "$PG_DIR" && "$@")
  fi
}

free_port() {
  local port=55432
  while ss -Hltn "sport = :$port" | grep -q .; do port=$((port + 1)); done
  echo "$port"
}

url() { echo "postgres://benchmarkdbuser:benchmarkdbpass@127.0.0.1:$(cat "$PG_DIR/port")/hello_world"; }

psql_super() { # database
  as_owner "$bin/psql" --host "$PG_DIR" --port "$(cat "$PG_DIR/port")" --username postgres \
    --dbname "$1" --no-psqlrc --quiet --set ON_ERROR_STOP=1 --file -
}

start() {
  if [ -e "$PG_DIR" ]; then
    echo "postgres.sh: $PG_DIR exists (a cluster running? \`$0 stop\` removes it)" >&2
    exit 1
  fi
  mkdir -p "$PG_DIR"
  [ "$(id -u)" -ne 0 ] || chown postgres:postgres "$PG_DIR"
  local port=${PG_PORT:-$(free_port)}
  echo "$port" >"$PG_DIR/port"
  as_owner "$bin/initdb" --pgdata "$PG_DIR/data" --username=postgres --encoding=UTF8 --no-locale \
    --auth-local=trust --auth-host=scram-sha-256 --no-sync >/dev/null
  as_owner tee "$PG_DIR/data/postgresql.auto.conf" >/dev/null <<SETTINGS
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$PG_DIR'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 128MB
SETTINGS
  as_owner "$bin/pg_ctl" start --pgdata "$PG_DIR/data" --log "$PG_DIR/postgres.log" --wait --timeout=30 >/dev/null ||
    { cat "$PG_DIR/postgres.log" >&2; exit 1; }
  psql_super postgres <<SQL
CREATE ROLE benchmarkdbuser LOGIN PASSWORD 'benchmarkdbpass';
CREATE DATABASE hello_world OWNER benchmarkdbuser;
SQL
  # Loaded as the benchmark's user (over TCP, with its password), so it owns the tables.
  "$bin/psql" "$(url)" --no-psqlrc --quiet --set ON_ERROR_STOP=1 \
    --file "$root/config/techempower-postgres.sql" >/dev/null
  url
}

stop() {
  if [ -f "$PG_DIR/data/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" stop --pgdata "$PG_DIR/data" --mode fast --wait >/dev/null
  fi
  rm -rf "$PG_DIR"
}

bin=$(bin_dir)
case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  pid) head -n 1 "$PG_DIR/data/postmaster.pid" ;;
  *) echo "usage: $0 start|stop|url|pid (PG_DIR=$PG_DIR)" >&2; exit 2 ;;
esac
