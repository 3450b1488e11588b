#!/usr/bin/env bash
# User-space instructions per keep-alive request, under callgrind.
#
#   benches/callgrind-keepalive.sh [CONNECTIONS=16] [ROUNDS=500] [-- shardd flags]
#   DEPTH=16 benches/callgrind-keepalive.sh      # 16 pipelined requests per write
#   KEEP=1 ...                                   # keep the dump as /tmp/ka-dump
#   SHARDD=path/to/shardd ...                    # measure that binary (default: build the release one)
#
# ../shared/peers/callgrind.sh measures pipelined requests (100 per write);
# this measures the other common shape: CONNECTIONS keep-alive connections,
# and ROUNDS rounds in which every connection sends one request and waits
# for its response, so each request costs a wake-up, a read and a write.
# With DEPTH=N each round sends N requests in one write instead (wrk's
# pipelined workload, whose connections stay open), so a turn's wake-up,
# read and write are shared by N requests.
# It starts the release shardd (1 shard, unpinned) under valgrind, warms it
# up with 20 rounds, zeroes the counters, runs the measured rounds, dumps,
# and prints Ir per request and the functions with the most self cost.
# Needs valgrind and python3; exits 0 with a message if either is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
conns=${1:-16}; rounds=${2:-500}; depth=${DEPTH:-1}
shift $(( $# > 2 ? 2 : $# )) || true
[ "${1:-}" = "--" ] && shift
for tool in valgrind callgrind_control python3; do
  command -v $tool >/dev/null || { echo "callgrind-keepalive.sh: $tool is not installed; skipping"; exit 0; }
done
if [ -z "${SHARDD:-}" ]; then
  cargo build --release --manifest-path "$root/Cargo.toml" --bin shardd >/dev/null
  SHARDD=$root/target/release/shardd
fi
port=${PORT:-18520}
work=$(mktemp -d /tmp/shardd-cg-keepalive-XXXX)
valgrind --tool=callgrind --callgrind-out-file="$work/cg.out" \
  "$SHARDD" --bind "127.0.0.1:$port" --shards 1 --no-pin "$@" \
  >"$work/server.log" 2>&1 &
vpid=$!
trap 'kill -TERM $vpid 2>/dev/null || true; [ -n "${KEEP:-}" ] && cp "$work"/cg.out.* /tmp/ka-dump || true; rm -rf "$work"' EXIT
for _ in $(seq 150); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.2; done
python3 "$here/support/rounds_client.py" "$port" "$conns" 20 "$depth"
callgrind_control -z "$vpid" >/dev/null 2>&1
python3 "$here/support/rounds_client.py" "$port" "$conns" "$rounds" "$depth"
callgrind_control -d "$vpid" >/dev/null 2>&1
dump=$(ls "$work"/cg.out.* | sort | tail -1)
total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
requests=$((conns * rounds * depth))
echo "keep-alive: $conns connections x $rounds rounds x $depth per write = $requests requests"
echo "Ir/request = $(python3 -c "print(round($total / $requests, 1))")"
python3 "$here/support/self_cost.py" "$dump" 15
