#!/usr/bin/env bash
# System calls per request, by workload (seed 003: count them, then cut them).
#
#   benches/syscalls.sh [SECONDS=3] [-- extra shardd flags]
#
# For each workload (pipelined 16 deep, keep-alive, churn) it starts a fresh
# release shardd under `strace -f -c`, drives it with wrk for SECONDS, stops
# it, and prints the calls per request of every system call the server made
# during the run (start-up and shutdown included, which a 3 s run makes
# negligible). strace slows the server; the counts per request stay exact.
# Needs strace and wrk; exits 0 with a message if either is missing.
#
# Churn under strace: the acceptor and shards run as SCHED_BATCH, and a
# traced thread resumed by the tracer does not preempt, so churn counts
# then describe the tracer's scheduling more than the server's. Compare
# churn builds with `-- --no-batch-scheduling` on both sides.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${1:-3}; shift || true
[ "${1:-}" = "--" ] && shift
port=${PORT:-18182}
for tool in strace wrk; do
  command -v $tool >/dev/null || { echo "syscalls.sh: $tool is not installed; skipping"; exit 0; }
done
cargo build --release --manifest-path "$root/Cargo.toml" --bin shardd >/dev/null
bin="$root/target/release/shardd"
work=$(mktemp -d /tmp/shardd-syscalls-XXXX)
trap 'rm -rf "$work"' EXIT
cat > "$work/pipeline.lua" <<'LUA'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/plaintext") end
  req = table.concat(r)
end
request = function() return req end
LUA
cat > "$work/count.lua" <<'LUA'
done = function(summary, latency, requests)
  io.write(string.format("REQUESTS %d\n", summary.requests))
end
LUA
cat "$work/count.lua" >> "$work/pipeline.lua"
accept='Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'

run() { # name, wrk args...
  local name=$1; shift
  strace -f -c -o "$work/$name.strace" "$bin" --bind 127.0.0.1:$port --shards 2 "$@" 2>/dev/null &
  local tracer=$!
  for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
  local requests
  requests=$(wrk "${WRK_ARGS[@]}" -d "${secs}s" --timeout 8 -H "$accept" "http://127.0.0.1:$port/plaintext" | awk '/^REQUESTS/ {print $2}')
  kill -TERM "$(pgrep -P $tracer -f "$bin" | head -1)" 2>/dev/null || true
  wait $tracer 2>/dev/null || true
  echo "== $name: $requests requests"
  awk -v n="$requests" '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { calls=$4; name=$NF; if (calls/n >= 0.001) printf "  %-16s %8.3f per request\n", name, calls/n; total+=calls }
       END { printf "  %-16s %8.3f per request\n", "TOTAL", total/n }' "$work/$name.strace" | sort -k2 -rn
}
WRK_ARGS=(-t 1 -c 256 -H 'Connection: keep-alive' -s "$work/pipeline.lua"); run pipeline "$@"
WRK_ARGS=(-t 1 -c 256 -H 'Connection: keep-alive' -s "$work/count.lua"); run keepalive "$@"
WRK_ARGS=(-t 1 -c 64 -H 'Connection: close' -s "$work/count.lua"); run churn "$@"
