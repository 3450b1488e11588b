#!/usr/bin/env bash
# The TechEmpower plaintext run, with wrk, the way TFB's toolset runs it
# (toolset/wrk/pipeline.sh): a primer, a warm-up, then pipelined runs at
# concurrency 256, 1024, 4096 and 16384, 16 requests per write, --timeout 8,
# wrk threads = number of cores, TFB's request headers.
#
# Usage
#   benches/techempower-wrk.sh [shardd flags...]      build and start target/release/shardd
#                                                     (e.g. --shards 2 --listener reuseport)
#   benches/techempower-wrk.sh --url http://127.0.0.1:8080/plaintext [--pid PID]
#                                                     use a server that is already running
#
# Environment (defaults in brackets; TFB's own values unless noted)
#   DURATION [15]          seconds per concurrency level and of the warm-up (DURATION=5 for a quick run)
#   PRIMER_DURATION [5]    seconds of the primer (wrk -c 8 -t 8)
#   WARMUP_DURATION [$DURATION]
#   LEVELS ["256 1024 4096 16384"]   concurrency levels
#   WARMUP_CONNECTIONS [largest level]  TFB warms up at its top concurrency, unpipelined
#   PIPELINE [16]          requests per write
#   THREADS [nproc]        wrk threads (capped at the level's connection count)
#   PAUSE [5]              seconds after the primer and after the warm-up
#   LEVEL_PAUSE [2]        seconds after each level
#   PORT [free port]       where the started shardd listens
#   SHARDD [target/release/shardd]   binary to start (built with cargo if it is the default)
#
# Output: wrk's own report for every run, then a summary table: requests/s,
# latency p50/p99, socket errors and non-2xx, and the server's CPU µs per
# request (utime+stime from /proc/PID/stat over the run; needs the PID, known
# when this script starts the server, or --pid).
#
# Skips (exit 0) when wrk is not installed.
set -euo pipefail

if ! command -v wrk >/dev/null 2>&1; then
  echo "techempower-wrk.sh: wrk is not installed; skipping (apt-get install wrk)"
  exit 0
fi

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
DURATION=${DURATION:-15}
PRIMER_DURATION=${PRIMER_DURATION:-5}
WARMUP_DURATION=${WARMUP_DURATION:-$DURATION}
LEVELS=${LEVELS:-"256 1024 4096 16384"}
PIPELINE=${PIPELINE:-16}
THREADS=${THREADS:-$(nproc)}
PAUSE=${PAUSE:-5}
LEVEL_PAUSE=${LEVEL_PAUSE:-2}
max_level=0
for c in $LEVELS; do [ "$c" -gt "$max_level" ] && max_level=$c; done
WARMUP_CONNECTIONS=${WARMUP_CONNECTIONS:-$max_level}

url=""; pid=""; shardd_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --url) url=$2; shift 2;;
    --pid) pid=$2; shift 2;;
    -h|--help) sed -n '2,30p' "$0"; exit 0;;
    --) shift; shardd_args+=("$@"); break;;
    *) shardd_args+=("$1"); shift;;
  esac
done

# TFB sends these three headers; wrk adds Host from the URL.
accept='text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'
headers=(-H "Accept: $accept" -H 'Connection: keep-alive')

# wrk at 16384 connections needs that many descriptors.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt $((max_level + 64)) ]; then
  echo "techempower-wrk.sh: open-file limit $(ulimit -n) is below the top level $max_level; wrk will fail there" >&2
fi

work=$(mktemp -d /tmp/shardd-tfb-XXXX)
started=""
cleanup() {
  if [ -n "$started" ] && kill -0 "$started" 2>/dev/null; then
    kill -TERM "$started" 2>/dev/null || true
    for _ in $(seq 150); do kill -0 "$started" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$started" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# The pipelining script: every write carries $PIPELINE copies of the request,
# and the summary comes out as one parseable line.
cat >"$work/pipeline.lua" <<'LUA'
-- Write `depth` requests at once (TFB plaintext pipelining). wrk counts
-- every response, so its requests/sec is HTTP requests, not writes.
local batch

function init(args)
  local depth = tonumber(args[1] or "") or 1
  local one = wrk.format(nil, nil)
  batch = string.rep(one, depth)
end

function request()
  return batch
end

function done(summary, latency, requests)
  local e = summary.errors
  print(string.format(
    "TFBSUM requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d max_us=%d",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50.0), latency:percentile(99.0), latency.max))
end
LUA

if [ -z "$url" ]; then
  SHARDD=${SHARDD:-$root/target/release/shardd}
  if [ "$SHARDD" = "$root/target/release/shardd" ]; then
    (cd "$root" && cargo build --release --bin shardd --quiet)
  fi
  if [ -z "${PORT:-}" ]; then
    PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])' 2>/dev/null || echo 18080)
  fi
  log="$work/shardd.log"
  "$SHARDD" --bind "127.0.0.1:$PORT" "${shardd_args[@]}" >"$log" 2>&1 &
  started=$!
  pid=$started
  for _ in $(seq 100); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then break; fi
    kill -0 "$started" 2>/dev/null || { echo "shardd exited:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.1
  done
  url="http://127.0.0.1:$PORT/plaintext"
  echo "started $SHARDD --bind 127.0.0.1:$PORT ${shardd_args[*]} (pid $pid)"
fi

clk_tck=$(getconf CLK_TCK)
cpu_ticks() {  # utime+stime of $pid (all threads), fields 14 and 15 of /proc/PID/stat
  [ -n "$pid" ] || { echo 0; return; }
  awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); print f[12] + f[13] }' "/proc/$pid/stat" 2>/dev/null || echo 0
}

banner() {
  echo
  echo "---------------------------------------------------------"
  echo " $1"
  echo " $2"
  echo "---------------------------------------------------------"
  echo
}

rows=()
run_wrk() {  # label connections threads duration pipelined(0|1)
  local label=$1 c=$2 t=$3 d=$4 pipelined=$5 out c0 c1
  local args
  args=("${headers[@]}" --latency -d "$d" -c "$c" --timeout 8 -t "$t" "$url" -s "$work/pipeline.lua")
  if [ "$pipelined" = 1 ]; then args+=(-- "$PIPELINE"); fi
  local shown
  printf -v shown '%q ' wrk "${args[@]}"
  banner "$label" "$shown"
  c0=$(cpu_ticks)
  out=$(wrk "${args[@]}" 2>&1) || true
  c1=$(cpu_ticks)
  grep -v '^TFBSUM' <<<"$out" || true
  local sum
  sum=$(grep '^TFBSUM' <<<"$out" || true)
  if [ -z "$sum" ]; then
    rows+=("$(printf '%-8s %6s %12s' "$label" "$c" "failed")")
    return
  fi
  rows+=("$(awk -v sum="$sum" -v label="$label" -v c="$c" -v cpu="$((c1 - c0))" -v tck="$clk_tck" '
    BEGIN {
      n = split(sum, kv, " "); for (i = 2; i <= n; i++) { split(kv[i], p, "="); v[p[1]] = p[2] }
      secs = v["duration_us"] / 1e6
      rps = secs > 0 ? v["requests"] / secs : 0
      errs = v["connect"] + v["read"] + v["write"] + v["timeout"]
      us = (v["requests"] > 0 && cpu > 0) ? cpu / tck * 1e6 / v["requests"] : 0
      # wrk sometimes returns 0 for a percentile of a pipelined multi-thread run
      # (its histogram count and buckets disagree): show n/a, not 0.
      printf "%-8s %6d %12.0f %10s %10s %8d %8d %12s\n", label, c, rps,
        (v["p50_us"] > 0 ? sprintf("%.2f", v["p50_us"] / 1000) : "n/a"),
        (v["p99_us"] > 0 ? sprintf("%.2f", v["p99_us"] / 1000) : "n/a"), errs, v["status"],
        (us > 0 ? sprintf("%.3f", us) : "-")
    }')")
}

cores=$(nproc)
run_wrk primer 8 8 "$PRIMER_DURATION" 0
sleep "$PAUSE"
run_wrk warmup "$WARMUP_CONNECTIONS" "$THREADS" "$WARMUP_DURATION" 0
sleep "$PAUSE"
for c in $LEVELS; do
  t=$(( c > THREADS ? THREADS : c ))
  run_wrk "c=$c" "$c" "$t" "$DURATION" 1
  sleep "$LEVEL_PAUSE"
done

echo
echo "TechEmpower plaintext with wrk: $url, pipeline $PIPELINE, ${DURATION}s per level, $THREADS wrk threads, $cores cores"
printf '%-8s %6s %12s %10s %10s %8s %8s %12s\n' run conns "req/s" "p50 ms" "p99 ms" "sockerr" "non-2xx" "srv µs/req"
printf '%s\n' "${rows[@]}"

if [ -n "$started" ]; then
  kill -TERM "$started"
  status=0
  wait "$started" || status=$?
  started=""
  if [ "$status" != 0 ]; then
    echo "shardd exited with status $status after SIGTERM; log:" >&2
    cat "$log" >&2
    exit 1
  fi
fi
