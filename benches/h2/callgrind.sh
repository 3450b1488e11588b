#!/usr/bin/env bash
# User-space instructions per HTTP/2 request, under callgrind: shardd and,
# side by side in the same run, any other server given as a command.
#
#   benches/h2/callgrind.sh                       # shardd (release build), h2c
#   SHARDD=path/to/shardd benches/h2/callgrind.sh
#   PEER="path/to/peer-hyper-h2 --port {port} --threads 1" benches/h2/callgrind.sh
#   STREAMS=1 CONNS=16 REQUESTS=20000 ...         # the workload (h2load -m/-c/-n)
#   KEEP=1 ...                                    # keep the dumps in /tmp
#
# Each server runs under valgrind on one thread (shardd: --shards 1), is
# warmed up with 2,000 requests, has its counters zeroed, serves
# REQUESTS GET /plaintext over CONNS h2c connections with STREAMS
# concurrent streams each (h2load: deterministic counts), is dumped, and is
# stopped. Prints Ir per request (user-space instructions: the kernel's
# share of each system call is not in it) and the functions with the most
# self cost. Needs valgrind, h2load and python3.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
streams=${STREAMS:-100}; conns=${CONNS:-4}; requests=${REQUESTS:-20000}
for tool in valgrind callgrind_control h2load python3; do
  command -v $tool >/dev/null || { echo "callgrind.sh: $tool is not installed" >&2; exit 1; }
done
if [ -z "${SHARDD:-}" ]; then
  cargo build --release --manifest-path "$root/Cargo.toml" --bin shardd >/dev/null
  SHARDD=$root/target/release/shardd
fi
port=${PORT:-18530}
work=$(mktemp -d /tmp/shardd-cg-h2-XXXX)
vpid=""
trap '[ -n "$vpid" ] && kill -TERM $vpid 2>/dev/null; [ -n "${KEEP:-}" ] && cp "$work"/*.out.* /tmp/ 2>/dev/null; rm -rf "$work"' EXIT

measure() { # label command...
  local label=$1; shift
  valgrind --tool=callgrind --callgrind-out-file="$work/$label.out" "$@" >"$work/$label.log" 2>&1 &
  vpid=$!
  for _ in $(seq 150); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.2; done
  h2load -n 2000 -c "$conns" -m "$streams" "http://127.0.0.1:$port/plaintext" >/dev/null
  callgrind_control -z "$vpid" >/dev/null 2>&1
  local report
  report=$(h2load -n "$requests" -c "$conns" -m "$streams" "http://127.0.0.1:$port/plaintext")
  grep -q "$requests succeeded" <<<"$report" || { echo "$label: not every request succeeded:"; echo "$report"; }
  callgrind_control -d "$vpid" >/dev/null 2>&1
  kill -TERM "$vpid"; wait "$vpid" 2>/dev/null || true; vpid=""
  local dump total
  dump=$(ls "$work/$label".out.* | sort | tail -1)
  total=$(awk '/^(summary|totals):/ {print $2; exit}' "$dump")
  echo "$label: h2c, $conns connections x $streams streams, $requests requests: Ir/request = $(python3 -c "print(round($total / $requests, 1))")"
  python3 "$here/../support/self_cost.py" "$dump" 12
}

measure shardd "$SHARDD" --bind "127.0.0.1:$port" --shards 1 --no-pin
if [ -n "${PEER:-}" ]; then
  # shellcheck disable=SC2086
  measure peer ${PEER//\{port\}/$port}
fi
