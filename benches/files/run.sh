#!/usr/bin/env bash
# Static files side by side, one run: wrk (HTTP/1.1, keep-alive) against
# shardd --static and Debian's nginx (sendfile on, open_file_cache), one
# worker each on the same core, serving the same 1 KiB, 16 KiB and 1 MiB
# files. Per cell: requests/s and the server's CPU µs per request
# (utime+stime of its process tree from /proc, read right before and right
# after wrk, as benches/h2/run.sh does). Prints Markdown.
#
# TLS=1 runs the same over TLS 1.3: one self-signed P-256 certificate for
# both, nginx with `ssl_protocols TLSv1.3` and the cipher suite rustls
# picks for wrk (TLS_AES_256_GCM_SHA384, checked with openssl s_client and
# printed above the table), keep-alive, so handshakes are a few per run.
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
#   TLS [0]                           1: HTTPS on both (needs openssl)
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
TLS=${TLS:-0}
tools="wrk curl taskset"
[ "$TLS" = 1 ] && tools="$tools openssl"
for tool in $tools; do
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

scheme=http
if [ "$TLS" = 1 ]; then
  scheme=https
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=localhost -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
  chmod 644 "$work/key.pem" "$work/cert.pem"
fi

tree_ticks() {  # utime+stime (clock ticks) of a process and its children
  local p
  { echo "$1"; ps -o pid= --ppid "$1" || true; } | while read -r p; do cat "/proc/$p/stat" 2>/dev/null || true; done |
    awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); t += f[12] + f[13] } END { print t + 0 }'
}

wait_listening() {  # port
  for _ in $(seq 100); do
    curl -sk -o /dev/null "$scheme://127.0.0.1:$1/1k.bin" && return 0
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
      tls_flags=()
      [ "$TLS" = 1 ] && tls_flags=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
      taskset -c "$SERVER_CPUS" "$SHARDD" --bind "127.0.0.1:$port" --shards 1 --no-pin \
        --config "$work/shardd.toml" "${tls_flags[@]}" >"$work/shardd.log" 2>&1 &
      pid=$!;;
    nginx)
      port=$((PORT + 1))
      ssl=""; ssl_config=""
      if [ "$TLS" = 1 ]; then
        ssl=" ssl"
        ssl_config="ssl_certificate $work/cert.pem; ssl_certificate_key $work/key.pem; ssl_protocols TLSv1.3; ssl_conf_command Ciphersuites TLS_AES_256_GCM_SHA384;"
      fi
      sed -e "s#@DIR@#$work#g" -e "s#@PORT@#$port#g" -e "s#@SSL@#$ssl#g" \
        -e "s#@SSL_CONFIG@#$ssl_config#g" "$here/nginx.conf.in" >"$work/nginx.conf"
      taskset -c "$SERVER_CPUS" "$NGINX" -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf" \
        -g "daemon off; master_process on; worker_processes 1; pid $work/nginx.pid;" &
      pid=$!;;
    *) echo "files/run.sh: unknown server $1" >&2; exit 2;;
  esac
  started+=("$pid")
  wait_listening "$port"
  if [ "$TLS" = 1 ]; then
    cipher[$1]=$(openssl s_client -connect "127.0.0.1:$port" </dev/null 2>/dev/null |
      awk '/^New, / { print $NF }')
  fi
}

declare -A cipher

declare -A cell
for server in $SERVERS; do
  start "$server"
  for size in $SIZES; do
    url="$scheme://127.0.0.1:$port/$size.bin"
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
if [ "$TLS" = 1 ]; then
  printf 'TLS 1.3, one P-256 certificate; cipher suites:'
  for s in $SERVERS; do printf ' %s %s;' "$s" "${cipher[$s]}"; done
  echo
fi
echo "Each cell: requests/s · server CPU µs per request (utime+stime of its process tree)."
echo
printf '| file |'; for s in $SERVERS; do printf ' %s |' "$s"; done; echo
printf '|---|'; for s in $SERVERS; do printf -- '---|'; done; echo
for size in $SIZES; do
  printf '| %s |' "$size"
  for s in $SERVERS; do printf ' %s |' "${cell[$s:$size]}"; done
  echo
done
