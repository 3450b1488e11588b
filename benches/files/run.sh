#!/usr/bin/env bash
# Static files side by side, one run: wrk (HTTP/1.1, keep-alive) against
# shardd --static and Debian's nginx (sendfile on, open_file_cache), one
# worker each on the same core, serving the same 1 KiB, 16 KiB and 1 MiB
# files. Per cell: requests/s and the server's CPU µs per request
# (utime+stime of its process tree from /proc, read right before and right
# after wrk, as benches/h2/run.sh does). Prints Markdown.
#
# Usage
#   cargo build --release && benches/files/run.sh
#
# Environment (defaults in brackets)
#   SHARDD [target/release/shardd]   the shardd binary (not built here)
#   SERVERS ["shardd nginx"]  SIZES ["1k 16k 1m"]
#   CONNECTIONS [32]  DURATION [4]  WARMUP [1]   wrk -c, seconds measured, seconds before
#   SERVER_CPUS [1]  LOAD_CPUS [0]   taskset lists: server and load generator apart
#   PORT [18590]                      first of two ports on 127.0.0.1
#   CACHE_ENTRIES [1024]              shardd's open_file_cache_entries (0: open and
#                                     fstat on every request, to see what the cache saves)
#
# Every process started here is stopped by PID on exit. Needs wrk, curl, nginx.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SHARDD=${SHARDD:-${CARGO_TARGET_DIR:-$root/target}/release/shardd}
SERVERS=${SERVERS:-"shardd nginx"}
SIZES=${SIZES:-"1k 16k 1m"}
CONNECTIONS=${CONNECTIONS:-32}
DURATION=${DURATION:-4}
WARMUP=${WARMUP:-1}
SERVER_CPUS=${SERVER_CPUS:-1}
LOAD_CPUS=${LOAD_CPUS:-0}
PORT=${PORT:-18590}
CACHE_ENTRIES=${CACHE_ENTRIES:-1024}
for tool in wrk curl taskset; do
  command -v "$tool" >/dev/null || { echo "files/run.sh: $tool is not installed" >&2; exit 1; }
done
[ -x "$SHARDD" ] || { echo "files/run.sh: $SHARDD not built (cargo build --release)" >&2; exit 1; }
NGINX=$(command -v nginx || echo /usr/sbin/nginx)

CLK_TCK=$(getconf CLK_TCK)
work=$(mktemp -d /tmp/shardd-filesbench-XXXXXX)
chmod 755 "$work" # nginx's workers run as nobody
started=()
cleanup() {
  local pid
  for pid in "${started[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${started[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

mkdir -p "$work/www"
head -c 1024 /dev/urandom >"$work/www/1k.bin"
head -c 16384 /dev/urandom >"$work/www/16k.bin"
head -c 1048576 /dev/urandom >"$work/www/1m.bin"
chmod 644 "$work/www/"*

tree_ticks() {  # utime+stime (clock ticks) of a process and its children
  local p
  { echo "$1"; ps -o pid= --ppid "$1" || true; } | while read -r p; do cat "/proc/$p/stat" 2>/dev/null || true; done |
    awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); t += f[12] + f[13] } END { print t + 0 }'
}

wait_listening() {  # port
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://127.0.0.1:$1/1k.bin" && return 0
    sleep 0.1
  done
  echo "files/run.sh: nothing answers on port $1" >&2; exit 1
}

start() {  # server -> $pid, $port
  case "$1" in
    shardd)
      port=$PORT
      printf '[[static]]\nprefix = "/"\ndir = "%s"\nopen_file_cache_entries = %s\n' \
        "$work/www" "$CACHE_ENTRIES" >"$work/shardd.toml"
      taskset -c "$SERVER_CPUS" "$SHARDD" --bind "127.0.0.1:$port" --shards 1 --no-pin \
        --config "$work/shardd.toml" >"$work/shardd.log" 2>&1 &
      pid=$!;;
    nginx)
      port=$((PORT + 1))
      sed -e "s#@DIR@#$work#g" -e "s#@PORT@#$port#g" "$here/nginx.conf.in" >"$work/nginx.conf"
      taskset -c "$SERVER_CPUS" "$NGINX" -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf" \
        -g "daemon off; master_process on; worker_processes 1; pid $work/nginx.pid;" &
      pid=$!;;
    *) echo "files/run.sh: unknown server $1" >&2; exit 2;;
  esac
  started+=("$pid")
  wait_listening "$port"
}

declare -A cell
for server in $SERVERS; do
  start "$server"
  for size in $SIZES; do
    url="http://127.0.0.1:$port/$size.bin"
    taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNECTIONS" -d"${WARMUP}s" "$url" >/dev/null
    t0=$(tree_ticks "$pid")
    out=$(taskset -c "$LOAD_CPUS" wrk -t1 -c"$CONNECTIONS" -d"${DURATION}s" "$url")
    t1=$(tree_ticks "$pid")
    requests=$(awk '/requests in/ { print $1 }' <<<"$out")
    errors=$(awk '/Non-2xx|Socket errors/ { print }' <<<"$out")
    [ -z "$errors" ] || echo "files/run.sh: $server $size: $errors" >&2
    cell[$server:$size]=$(awk -v r="$requests" -v d="$DURATION" -v t=$((t1 - t0)) -v hz="$CLK_TCK" \
      'BEGIN { printf "%.0f req/s · %.1f µs", r / d, t / hz * 1e6 / r }')
  done
done

echo "wrk -t1 -c$CONNECTIONS, ${DURATION}s per cell, keep-alive; server on CPU $SERVER_CPUS, wrk on CPU $LOAD_CPUS; $("$NGINX" -v 2>&1 | sed 's/.*: //')"
echo "shardd: open_file_cache_entries = $CACHE_ENTRIES"
echo "Each cell: requests/s · server CPU µs per request (utime+stime of its process tree)."
echo
printf '| file |'; for s in $SERVERS; do printf ' %s |' "$s"; done; echo
printf '|---|'; for s in $SERVERS; do printf -- '---|'; done; echo
for size in $SIZES; do
  printf '| %s |' "$size"
  for s in $SERVERS; do printf ' %s |' "${cell[$s:$size]}"; done
  echo
done
