#!/usr/bin/env bash
# Data-cache misses per connection turn with many connections, under
# cachegrind's cache simulation: how much of its memory a connection
# touches each time it is served, which decides what a request costs once
# the connections outgrow the caches (TechEmpower's 1,024 to 16,384).
#
#   benches/cachegrind-connections.sh [CONNECTIONS=1024] [ROUNDS=50] [DEPTH=16] [-- server command]
#
# Starts the release shardd (1 shard, unpinned) under cachegrind, or the
# server command given after `--` (it must listen on $PORT, default 18530);
# opens CONNECTIONS connections; then ROUNDS rounds in which every
# connection sends DEPTH pipelined requests in one write and reads the
# answers. Prints instructions and D1 misses (reads + writes) per request
# and per turn (one connection's read, answers and write), and the
# functions with the most D1 misses. Start-up and 2 warm-up rounds are in
# the counts; with the defaults they are a few percent of them.
#
# Figures are simulated (a 32 KiB 8-way D1, 64-byte lines), so they repeat
# exactly for the same binary and workload whatever the machine is doing.
# Needs valgrind and python3; exits 0 with a message if either is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
conns=${1:-1024}; rounds=${2:-50}; depth=${3:-16}
shift $(( $# > 3 ? 3 : $# )) || true
[ "${1:-}" = "--" ] && shift
for tool in valgrind cg_annotate python3; do
  command -v $tool >/dev/null || { echo "cachegrind-connections.sh: $tool is not installed; skipping"; exit 0; }
done
port=${PORT:-18530}
if [ $# -eq 0 ]; then
  cargo build --release --manifest-path "$root/Cargo.toml" --bin shardd >/dev/null
  set -- "$root/target/release/shardd" --bind "127.0.0.1:$port" --shards 1 --no-pin
fi
[ "$(ulimit -n)" -gt $((conns + 64)) ] || ulimit -n $((conns + 1024))
work=$(mktemp -d /tmp/shardd-cachegrind-XXXX)
valgrind --tool=cachegrind --cache-sim=yes --D1=32768,8,64 \
  --cachegrind-out-file="$work/cg.out" "$@" >"$work/server.log" 2>&1 &
vpid=$!
trap 'kill -TERM $vpid 2>/dev/null || true; [ -n "${KEEP:-}" ] && cp "$work"/cg.out /tmp/cc-dump; rm -rf "$work"' EXIT
for _ in $(seq 150); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.2; done
python3 "$here/support/rounds_client.py" "$port" "$conns" $((rounds + 2)) "$depth"
kill -TERM $vpid
wait $vpid 2>/dev/null || true
requests=$((conns * (rounds + 2) * depth))
turns=$((conns * (rounds + 2)))
echo "$conns connections x $((rounds + 2)) rounds x $depth per write = $requests requests"
awk -v req="$requests" -v turns="$turns" '
  /^events:/ { for (i = 2; i <= NF; i++) name[i] = $i }
  /^summary:/ {
    for (i = 2; i <= NF; i++) v[name[i]] = $i
    printf "Ir/request = %.1f\n", v["Ir"] / req
    printf "D1 misses/request = %.2f (reads %.2f, writes %.2f)\n", (v["D1mr"] + v["D1mw"]) / req, v["D1mr"] / req, v["D1mw"] / req
    printf "D1 misses/turn = %.1f\n", (v["D1mr"] + v["D1mw"]) / turns
  }' "$work/cg.out"
echo "functions with the most D1 misses (reads, writes):"
cg_annotate --show=D1mr,D1mw --sort=D1mw --auto=no "$work/cg.out" 2>/dev/null \
  | awk '/file:function/ { on = 1; next } on && NF { print } on && !NF && seen++ { exit }' | head -12
