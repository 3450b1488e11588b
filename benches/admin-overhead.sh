#!/usr/bin/env bash
# What the admin port costs the hot path: pipelined server CPU per request of
# the same release binary without and with --admin, in one run of the load
# bench, while every admin port is scraped (/metrics and /status.json) once a
# second, as by Prometheus at a harsh interval and an open /status page.
#
#   benches/admin-overhead.sh                 # 4 rounds, 10 s windows
#   ROUNDS=2 DURATION=5 benches/admin-overhead.sh
#
# The servers run side by side and are measured in turn, ABBA (plain-1,
# admin-1, admin-2, plain-2, plain-3, ...), so the rounds show the noise of
# the box and a drift cancels out. Compare the `srv µs/req` column; the last
# lines pool each side (server CPU seconds / requests over all its rounds).
# Results: target/bench-results/load.csv.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-10}
ROUNDS=${ROUNDS:-4}
SHARDS=${SHARDS:-2}
SCRAPE_EVERY=${SCRAPE_EVERY:-1}

cargo bench --bench load --no-run 2>/dev/null
BIN=target/release/shardd   # the binary the load bench starts for its own modes

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

extras=()
admin_ports=()
for round in $(seq "$ROUNDS"); do
    port=$(free_port)
    admin_ports+=("$port")
    plain=(--extra "plain-$round=$BIN --bind 127.0.0.1:{port} --shards $SHARDS")
    admin=(--extra "admin-$round=$BIN --bind 127.0.0.1:{port} --shards $SHARDS --admin 127.0.0.1:$port")
    # ABBA: odd rounds plain first, even rounds admin first, so a drift of the box cancels out.
    if ((round % 2)); then extras+=("${plain[@]}" "${admin[@]}"); else extras+=("${admin[@]}" "${plain[@]}"); fi
done

# The scraper: bounded in time, stopped when the bench ends.
(
    deadline=$((SECONDS + 1800))
    while ((SECONDS < deadline)); do
        for port in "${admin_ports[@]}"; do
            curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/metrics" || true
            curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$port/status.json" || true
        done
        sleep "$SCRAPE_EVERY"
    done
) &
SCRAPER=$!
trap 'kill "$SCRAPER" 2>/dev/null || true' EXIT

cargo bench --bench load -- --duration "$DURATION" --workloads pipeline --modes none "${extras[@]}"

# Pooled: all rounds of each side, from the CSV (columns by name).
awk -F, 'NR == 1 { for (i = 1; i <= NF; i++) col[$i] = i; next }
    { side = substr($col["mode"], 1, 5); cpu[side] += $col["server_cpu_s"]; req[side] += $col["requests"] }
    END {
        for (side in cpu) printf "pooled %s: %.4f us/req (%.2f s CPU, %d requests)\n", side, 1e6 * cpu[side] / req[side], cpu[side], req[side]
        if (req["plain"] && req["admin"]) printf "admin / plain: %+.2f %%\n", 100 * ((cpu["admin"] / req["admin"]) / (cpu["plain"] / req["plain"]) - 1)
    }' target/bench-results/load.csv
