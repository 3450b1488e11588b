#!/usr/bin/env bash
# The TechEmpower database tests, shardd beside actix-web and axum, against one
# throw-away Postgres on the same box, same run.
#
#   benches/db/run.sh                       # SERVERS="shardd actix axum" THREADS=2
#   SERVERS="actix axum" benches/db/run.sh  # the peers only
#
# Servers: shardd (`--shards N --app techempower --database-url URL`),
# peer-actix-db and peer-axum-db (benches/db/peers: tokio-postgres through
# deadpool-postgres pools; `--threads N`, their default pool of 8 connections
# per thread, PEER_POOL overrides). Each endpoint (ENDPOINTS, default /db,
# /queries?q=20, /fortunes, /updates?q=20) gets 2 s of wrk warm-up then
# DURATION seconds (10) with CONNECTIONS connections (64), wrk -t WRK_THREADS
# (2); no pinning: servers, Postgres and wrk share the box's cores.
# Before measuring, every endpoint of every server is checked once with curl
# (response shape, q clamping, fortunes markup and escaping); a wrong answer
# stops the run. Servers run in turn, in reverse order every second of REPS
# repetitions (1).
#
# Reports per server and endpoint: requests/s, server CPU µs per request
# (utime+stime of its process from /proc over the window) and Postgres CPU µs
# per request (the postmaster, every process under it, and the backends that
# exited), as a Markdown table (means over REPS); the raw rows are TSV in
# $CARGO_TARGET_DIR/bench-results (default target/). Needs wrk, curl and
# Debian's postgresql. Stops every process it started, by pid.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SERVERS=${SERVERS:-"shardd actix axum"}
THREADS=${THREADS:-2}; DURATION=${DURATION:-10}; CONNECTIONS=${CONNECTIONS:-64}
WRK_THREADS=${WRK_THREADS:-2}; REPS=${REPS:-1}; PORT=${PORT:-18100}
ENDPOINTS=${ENDPOINTS:-"/db /queries?q=20 /fortunes /updates?q=20"}
export PG_DIR=${PG_DIR:-/tmp/shardd-bench-db-$$}
for tool in wrk curl; do
  command -v "$tool" >/dev/null || { echo "run.sh: $tool is not installed (apt-get install $tool)" >&2; exit 1; }
done

fail() { echo "run.sh: $*" >&2; exit 1; }
trap 'echo "run.sh: failed at line $LINENO: $BASH_COMMAND" >&2' ERR

target=${CARGO_TARGET_DIR:-$root/target}
peer_target=${PEER_TARGET_DIR:-$target/db-peers}
shardd=$target/release/shardd
if [[ " $SERVERS " == *" shardd "* ]]; then
  cargo build --release --manifest-path "$root/Cargo.toml" --bin shardd >&2
  "$shardd" --help | grep -q -- --database-url ||
    fail "shardd has no --database-url: build from a commit with issue 21 (or SERVERS=\"actix axum\")"
fi
CARGO_TARGET_DIR=$peer_target cargo build --release --manifest-path "$here/peers/Cargo.toml" >&2

server_pid=""
cleanup() {
  if [ -n "$server_pid" ]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  "$here/postgres.sh" stop || true
}
trap cleanup EXIT
url=$("$here/postgres.sh" start)
postmaster=$("$here/postgres.sh" pid)
echo "Postgres: $url (postmaster $postmaster)" >&2

command_for() {
  local pool=()
  [ -z "${PEER_POOL:-}" ] || pool=(--pool "$PEER_POOL")
  case "$1" in
    shardd) echo "$shardd --bind 127.0.0.1:$PORT --shards $THREADS --app techempower --database-url $url" ;;
    actix | axum) echo "$peer_target/release/peer-$1-db --port $PORT --threads $THREADS --database-url $url ${pool[*]}" ;;
    *) fail "unknown server $1 (shardd, actix, axum)" ;;
  esac
}

CLK_TCK=$(getconf CLK_TCK)
# utime+stime of one process.
ticks() { awk '{ s=$0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
# Postgres: the postmaster with its reaped children, and every live process under it.
postgres_ticks() {
  # cat fails for a process that exited meanwhile; the others still count.
  { cat /proc/[0-9]*/stat 2>/dev/null || true; } | awk -v p="$postmaster" '
    { pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ") }
    pid == p { t += f[12] + f[13] + f[14] + f[15] }
    f[2] == p { t += f[12] + f[13] }
    END { print t }'
}
listening() { ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; }

# The number of World objects in a JSON array answer.
worlds_in() { grep -o '"randomNumber":[0-9]*' <<<"$1" | wc -l; }

check_endpoints() { # server
  local base="http://127.0.0.1:$PORT" body type
  body=$(curl -sf "$base/db") || fail "$1: GET /db failed"
  [[ $body =~ ^\{\"id\":[0-9]+,\"randomNumber\":[0-9]+\}$ ]] || fail "$1: /db answered $body"
  for path in queries updates; do
    for q in "20:20" "0:1" "foo:1" "501:500" ":1"; do
      body=$(curl -sf "$base/$path?q=${q%%:*}") || fail "$1: GET /$path?q=${q%%:*} failed"
      [ "${body:0:1}" = "[" ] && [ "$(worlds_in "$body")" -eq "${q#*:}" ] ||
        fail "$1: /$path?q=${q%%:*} should answer ${q#*:} worlds, answered ${body:0:200}"
    done
  done
  type=$(curl -sf -o /dev/null -w '%{content_type}' "$base/fortunes") || fail "$1: GET /fortunes failed"
  [ "${type,,}" = "text/html; charset=utf-8" ] || fail "$1: /fortunes Content-Type is $type"
  body=$(curl -sf "$base/fortunes")
  local head='<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table><tr><th>id</th><th>message</th></tr>'
  [[ $body == "$head"*'</table></body></html>' ]] || fail "$1: /fortunes markup: $body"
  [ "$(grep -o '<tr><td>' <<<"$body" | wc -l)" -eq 13 ] || fail "$1: /fortunes should have 13 rows: $body"
  [[ $body == *'<tr><td>0</td><td>Additional fortune added at request time.</td></tr>'* ]] ||
    fail "$1: /fortunes lacks the fortune added at request time"
  [[ $body == *'<tr><td>12</td><td>フレームワークのベンチマーク</td></tr>'* ]] || fail "$1: /fortunes lost the UTF-8 row"
  [[ $body != *'<script>'* ]] && [[ $body =~ (&lt;|&#60;|&#x3c;)script ]] || fail "$1: /fortunes did not escape <script>"
  # Sorted by message (byte order): "<script>..." first, the added fortune between "A list ..." and "After ...".
  [[ $body =~ script.*A\ list.*Additional\ fortune.*After\ enough ]] || fail "$1: /fortunes is not sorted by message"
}

mkdir -p "$target/bench-results"
out="$target/bench-results/db-$(date +%Y%m%d-%H%M%S).tsv"
printf 'server\tendpoint\trep\trequests\treq_per_s\tserver_us_per_req\tpostgres_us_per_req\terrors\n' >"$out"
for rep in $(seq "$REPS"); do
  order=$SERVERS
  [ $((rep % 2)) -eq 1 ] || order=$(printf '%s\n' $SERVERS | tac | xargs)
  for server in $order; do
    listening && fail "something already listens on port $PORT"
    # shellcheck disable=SC2046
    $(command_for "$server") >"$PG_DIR/$server.log" 2>&1 &
    server_pid=$!
    for _ in $(seq 100); do listening && break; sleep 0.1; done
    listening || { cat "$PG_DIR/$server.log" >&2; fail "$server did not listen on $PORT"; }
    check_endpoints "$server"
    for endpoint in $ENDPOINTS; do
      target_url="http://127.0.0.1:$PORT$endpoint"
      wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d 2s "$target_url" >/dev/null
      server_before=$(ticks "$server_pid"); postgres_before=$(postgres_ticks)
      report=$(wrk -t "$WRK_THREADS" -c "$CONNECTIONS" -d "${DURATION}s" "$target_url")
      server_after=$(ticks "$server_pid"); postgres_after=$(postgres_ticks)
      requests=$(awk '/requests in/ { print $1 }' <<<"$report")
      rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$report")
      errors=$(awk '/Non-2xx|Socket errors/ { sub(/^ +/, ""); printf "%s; ", $0 }' <<<"$report")
      per_request() { awk -v a="$1" -v b="$2" -v t="$CLK_TCK" -v n="$requests" \
        'BEGIN { if (n > 0) printf "%.1f", (b - a) / t * 1e6 / n; else print "nan" }'; }
      server_us=$(per_request "$server_before" "$server_after")
      postgres_us=$(per_request "$postgres_before" "$postgres_after")
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$endpoint" "$rep" "$requests" "$rps" \
        "$server_us" "$postgres_us" "${errors:-}" >>"$out"
      echo "rep $rep $server $endpoint: $rps req/s, server $server_us µs/req, Postgres $postgres_us µs/req ${errors:-}" >&2
    done
    kill "$server_pid"; wait "$server_pid" 2>/dev/null || true; server_pid=""
    for _ in $(seq 50); do listening || break; sleep 0.1; done
  done
done

echo "raw rows: $out" >&2
echo
echo "THREADS=$THREADS CONNECTIONS=$CONNECTIONS DURATION=${DURATION}s REPS=$REPS, $(nproc) cores shared by servers, Postgres and wrk"
echo
echo "| endpoint | server | req/s | server CPU µs/request | Postgres CPU µs/request | errors |"
echo "|---|---|---:|---:|---:|---|"
awk -F'\t' 'NR > 1 {
    key = $2 "\t" $1
    if (!(key in n)) order[++keys] = key
    n[key]++; rps[key] += $5; server[key] += $6; pg[key] += $7
    if ($8 != "") errors[key] = errors[key] $8
  }
  END {
    for (i = 1; i <= keys; i++) {
      k = order[i]; split(k, part, "\t")
      printf "| %s | %s | %.0f | %.1f | %.1f | %s |\n", part[1], part[2], rps[k] / n[k],
        server[k] / n[k], pg[k] / n[k], (k in errors) ? errors[k] : "0"
    }
  }' "$out" | sort -t'|' -k2,2 -s
