#!/usr/bin/env bash
# A screenshot of the admin port's /status page, in a real headless browser,
# taken against a release shardd under wrk load.
#
#   benches/status-screenshot.sh [OUT.png]      # default: target/status.png
#   SHARDD_FLAGS="--max-connections-per-shard 16 --max-pending 8" benches/status-screenshot.sh
#
# Starts target/release/shardd (built if missing) with --admin on free ports,
# loads it with wrk (bounded: LOAD seconds, CONNECTIONS connections), and
# while the load runs takes the page with Debian's chromium (installed with
# apt-get if missing and we are root). The page polls status.json every
# second and charts requests/s and p99 latency per shard from what it polled;
# --virtual-time-budget (BUDGET ms) lets it take that many seconds of
# readings. Virtual time runs faster than the clock (each poll waits only
# for its fetch), so the charts' seconds are the page's, taken over a
# second or two of real load: the picture of a steady load, not a record.
# Then it stops wrk and shardd (SIGTERM, which must exit 0).
# Not run by CI: it needs chromium and wrk, and a release build
# (tests/status_page_browser.rs is the test CI runs, with chromium).
#
# To see an imbalance like one wrk thread's (one shard served twice what the
# other did), THREADS=1 and a CONNECTIONS of a few hundred may show it.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${1:-target/status.png}
SHARDS=${SHARDS:-2}
LOAD=${LOAD:-10}                 # seconds of wrk load (the screenshot comes after WARMUP)
WARMUP=${WARMUP:-2}
CONNECTIONS=${CONNECTIONS:-64}
THREADS=${THREADS:-1}            # wrk threads
BUDGET=${BUDGET:-30000}          # ms of the page's virtual time: about that many polls / 1000
SHARDD_FLAGS=${SHARDD_FLAGS:-}

CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [[ -z "$CHROMIUM" ]]; then
    if [[ $(id -u) -eq 0 ]] && command -v apt-get >/dev/null; then
        echo "installing chromium (Debian) ..." >&2
        apt-get install -y chromium >/dev/null || { apt-get update >/dev/null && apt-get install -y chromium >/dev/null; }
        CHROMIUM=$(command -v chromium)
    else
        echo "chromium not found: apt-get install -y chromium" >&2
        exit 1
    fi
fi
command -v wrk >/dev/null || { echo "wrk not found: apt-get install -y wrk" >&2; exit 1; }

BIN=${CARGO_TARGET_DIR:-target}/release/shardd
[[ -x "$BIN" ]] || cargo build --release --bin shardd

work=$(mktemp -d)
SHARDD_PID=""
WRK_PID=""
cleanup() {
    [[ -n "$WRK_PID" ]] && kill "$WRK_PID" 2>/dev/null || true
    [[ -n "$SHARDD_PID" ]] && kill "$SHARDD_PID" 2>/dev/null || true
    rm -rf "$work"
}
trap cleanup EXIT

# Free ports (port 0), read back from the log.
# shellcheck disable=SC2086
RUST_LOG=info "$BIN" --bind 127.0.0.1:0 --admin 127.0.0.1:0 --shards "$SHARDS" --no-pin $SHARDD_FLAGS \
    2>"$work/shardd.log" &
SHARDD_PID=$!
for _ in $(seq 100); do
    grep -q "serving on" "$work/shardd.log" && break
    sleep 0.05
done
ADDR=$(grep -o 'serving on http://[0-9.:]*' "$work/shardd.log" | sed 's|.*http://||')
ADMIN=$(grep -o 'admin on http://[0-9.:]*' "$work/shardd.log" | sed 's|.*http://||')
[[ -n "$ADDR" && -n "$ADMIN" ]] || { cat "$work/shardd.log" >&2; exit 1; }
echo "shardd on $ADDR, admin on $ADMIN" >&2

wrk -t "$THREADS" -c "$CONNECTIONS" -d "${LOAD}s" "http://$ADDR/plaintext" >"$work/wrk.txt" 2>&1 &
WRK_PID=$!
sleep "$WARMUP"

mkdir -p "$(dirname "$OUT")"
"$CHROMIUM" --headless --no-sandbox --disable-gpu --disable-background-networking \
    --disable-component-update --disable-sync --no-first-run --hide-scrollbars --disable-quic \
    --user-data-dir="$work/profile" --window-size=1200,900 --virtual-time-budget="$BUDGET" \
    --screenshot="$OUT" "http://$ADMIN/status" >"$work/chromium.log" 2>&1 \
    || { cat "$work/chromium.log" >&2; exit 1; }
echo "screenshot: $OUT" >&2

# The same moment as text, for the record.
curl -s "http://$ADMIN/status.json" >&2 && echo >&2 || true

wait "$WRK_PID" || true
WRK_PID=""
grep -E "Requests/sec|requests in" "$work/wrk.txt" >&2 || true
kill -TERM "$SHARDD_PID"
if wait "$SHARDD_PID"; then SHARDD_PID=""; else
    echo "shardd did not exit 0 after SIGTERM" >&2
    SHARDD_PID=""
    exit 1
fi
