#!/usr/bin/env bash
# shardd beside the peer servers, same run, through ../shared/peers/bench.sh.
#
#   benches/peers.sh            # REPS=2 DURATION=5 VARIANTS="pinned shared"
#
# Servers: limit, may, actix, hyper (../shared/peers/servers, built first if
# needed), shardd with the handoff listener, and shardd with reuseport.
# Variants as in ../shared/peers/run_peers.sh: "pinned" = server on core 1
# with 1 thread/shard, wrk on core 0; "shared" = 2 threads/shards, wrk -t 2,
# no taskset. Each repetition runs the servers in turn, and every second one
# in reverse order: a box that drifts during a run (it does) then favours no
# server, where a fixed order always gives the last one the same cells.
# PEER_BIN_DIR: where the peer-* binaries are (default: the peers' own
# target/release, built there if missing).
# Prints the summary tables (server CPU µs per request is the figure to
# compare) and leaves the raw TSV in target/bench-results/.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
peers=$(cd "$root/../shared/peers" 2>/dev/null && pwd) || { echo "peers.sh: ../shared/peers not found; skipping"; exit 0; }
command -v wrk >/dev/null || { echo "peers.sh: wrk is not installed; skipping"; exit 0; }
REPS=${REPS:-2}; VARIANTS=${VARIANTS:-"pinned shared"}; PORT=${PORT:-18080}
SERVERS=${SERVERS:-"limit may actix hyper shardd shardd-reuseport"}
export DURATION=${DURATION:-5}

cargo build --release --manifest-path "$root/Cargo.toml" --bin shardd >/dev/null
shardd=${SHARDD_BIN:-$root/target/release/shardd}
peer_bin=${PEER_BIN_DIR:-$peers/servers/target/release}
[ -x "$peer_bin/peer-limit" ] || (cd "$peers/servers" && cargo build --release)
mkdir -p "$root/target/bench-results"
out="$root/target/bench-results/peers-$(date +%Y%m%d-%H%M%S).tsv"

command_for() { # server threads
  case "$1" in
    shardd) echo "$shardd --bind 127.0.0.1:$PORT --shards $2";;
    shardd-reuseport) echo "$shardd --bind 127.0.0.1:$PORT --shards $2 --listener reuseport";;
    *) echo "$peer_bin/peer-$1 --port $PORT --threads $2";;
  esac
}

cd "$peers"
for rep in $(seq "$REPS"); do
  order=$SERVERS
  if [ $((rep % 2)) -eq 0 ]; then order=$(printf '%s\n' $SERVERS | tac | xargs); fi
  for variant in $VARIANTS; do
    for server in $order; do
      if [ "$variant" = pinned ]; then
        threads=1; envs=(WRK_CPUS=0 SERVER_CPUS=1 WRK_THREADS=1)
      else
        threads=2; envs=(WRK_CPUS= SERVER_CPUS= WRK_THREADS=2)
      fi
      # shellcheck disable=SC2046
      env "${envs[@]}" OUT="$out" ./bench.sh --label "$server|$variant|r$rep" --port "$PORT" \
        -- $(command_for "$server" "$threads") >&2
    done
  done
done
echo "raw rows: $out" >&2
python3 tools/summarize.py "$out"
