#!/usr/bin/env bash
# Compressed JSON responses: server CPU µs per request of shardd
# (`App::compressed`), actix-web with its `Compress` middleware and axum with
# tower-http's `CompressionLayer`, all at gzip level 1 on every body size,
# same run.
#
#   benches/compression.sh        # REPS=3 DURATION=5 CONNS=64
#
# Paths: /json (TechEmpower's 27-byte message) and /list (50 items,
# HttpArena's `json` shape, ~5 KiB), serialized per request by every
# server; wrk sends `Accept-Encoding: gzip`. Each server runs one thread
# (one shard) pinned to core 1, wrk -t 1 on core 0; server CPU is
# utime+stime of its process from /proc, read before and after each wrk
# window (the robust figure on a small box). `shardd-off` is the same
# shardd server with compression off: what compression itself costs.
# Each repetition runs the servers in turn, every second one in reverse.
# Before measuring, each server is checked to answer gzip.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
REPS=${REPS:-3}; DURATION=${DURATION:-5}; CONNS=${CONNS:-64}; PORT=${PORT:-18090}
SERVERS=${SERVERS:-"shardd actix axum shardd-off"}
PATHS=${PATHS:-"/json /list"}
command -v wrk >/dev/null || { echo "compression.sh: wrk is not installed (apt-get install wrk)" >&2; exit 1; }

target=${CARGO_TARGET_DIR:-$root/target}
peer_target=${PEER_TARGET_DIR:-$target/compression-peers}
cargo build --release --manifest-path "$root/Cargo.toml" --example compression_server >&2
CARGO_TARGET_DIR=$peer_target cargo build --release --manifest-path "$here/compression/peers/Cargo.toml" >&2
shardd=$target/release/examples/compression_server

command_for() {
  case "$1" in
    shardd) echo "$shardd --port $PORT --shards 1";;
    shardd-off) echo "$shardd --port $PORT --shards 1 --off";;
    actix) echo "$peer_target/release/actix-compress --port $PORT --threads 1";;
    axum) echo "$peer_target/release/axum-compress --port $PORT --threads 1";;
  esac
}

CLK_TCK=$(getconf CLK_TCK)
ticks() { awk '{ s=$0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$1/stat"; }
listening() { ss -Hltn "sport = :$PORT" 2>/dev/null | grep -q .; }

rows=$(mktemp)
trap 'rm -f "$rows"; [ -n "${pid:-}" ] && kill "$pid" 2>/dev/null || true' EXIT
for rep in $(seq "$REPS"); do
  order=$SERVERS
  [ $((rep % 2)) -eq 0 ] && order=$(printf '%s\n' $SERVERS | tac | xargs)
  for server in $order; do
    # shellcheck disable=SC2046
    taskset -c 1 $(command_for "$server") >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 100); do listening && break; sleep 0.1; done
    listening || { echo "compression.sh: $server did not listen on $PORT" >&2; exit 1; }
    for path in $PATHS; do
      url="http://127.0.0.1:$PORT$path"
      encoding=$(curl -s -o /dev/null -D - -H 'Accept-Encoding: gzip' "$url" | tr -d '\r' |
        awk -F': ' 'tolower($1) == "content-encoding" { print $2 }')
      bytes=$(curl -s -o /dev/null -w '%{size_download}' -H 'Accept-Encoding: gzip' "$url")
      if [ "$server" != shardd-off ] && [ "$encoding" != gzip ]; then
        echo "compression.sh: $server $path is not gzip (Content-Encoding: '$encoding')" >&2; exit 1
      fi
      taskset -c 0 wrk -t 1 -c "$CONNS" -d 2s -H 'Accept-Encoding: gzip' "$url" >/dev/null 2>&1
      before=$(ticks "$pid")
      out=$(taskset -c 0 wrk -t 1 -c "$CONNS" -d "${DURATION}s" -H 'Accept-Encoding: gzip' "$url")
      after=$(ticks "$pid")
      requests=$(awk '/requests in/ { print $1 }' <<<"$out")
      rps=$(awk '/Requests\/sec/ { print $2 }' <<<"$out")
      errors=$(awk '/Non-2xx|Socket errors/ { print }' <<<"$out" | tr '\n' ' ')
      us=$(awk -v a="$before" -v b="$after" -v t="$CLK_TCK" -v n="$requests" 'BEGIN { printf "%.2f", (b - a) / t * 1e6 / n }')
      printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$server" "$path" "$bytes" "$rps" "$us" "$errors" >>"$rows"
      echo "rep $rep $server $path: $bytes bytes, $rps req/s, $us µs CPU/request $errors" >&2
    done
    kill "$pid"; wait "$pid" 2>/dev/null || true; pid=""
    for _ in $(seq 50); do listening || break; sleep 0.1; done
  done
done

echo "| server | path | body bytes (gzip) | req/s (mean) | server CPU µs/request: mean (min–max) |"
echo "|---|---|---|---|---|"
sort -k2,2 -k1,1 -s "$rows" | awk -F'\t' '
  { k = $1 "\t" $2; if (!(k in n)) { order[++m] = k; lo[k] = $5; hi[k] = $5 }
    n[k]++; b[k] = $3; r[k] += $4; u[k] += $5
    if ($5 < lo[k]) lo[k] = $5; if ($5 > hi[k]) hi[k] = $5 }
  END { for (i = 1; i <= m; i++) { k = order[i]; split(k, p, "\t")
    printf "| %s | %s | %s | %.0f | %.2f (%.2f–%.2f) |\n", p[1], p[2], b[k], r[k] / n[k], u[k] / n[k], lo[k], hi[k] } }'
