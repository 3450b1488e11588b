#!/usr/bin/env bash
# Bounded soak: well-behaved wrk traffic mixed with misbehaving clients.
#
#   benches/soak.sh [SECONDS=180]
#
# Starts the release shardd (2 shards, short timeouts from benches/soak.toml),
# runs wrk (keep-alive, 64 connections, pipelined 16 deep) for SECONDS while
# a Python script keeps slowloris heads, garbage, smuggling attempts,
# clients that never read, and connect-and-drop clients coming. Samples the
# server's RSS every 10 s. Prints wrk's totals (the well-behaved traffic
# must see zero errors and only 200s) and the RSS series (must stay flat).
# Needs wrk and python3; exits 0 with a message if wrk is missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
secs=${1:-180}
port=${PORT:-18181}
command -v wrk >/dev/null || { echo "soak.sh: wrk is not installed (apt-get install wrk); skipping"; exit 0; }

cargo build --release --manifest-path "$root/Cargo.toml" --bin shardd >/dev/null
bin="$root/target/release/shardd"
cfg=$(mktemp /tmp/shardd-soak-XXXX.toml)
cat > "$cfg" <<TOML
bind = "127.0.0.1:$port"
shards = 2
[limits]
header_timeout_ms = 2000
idle_timeout_ms = 5000
body_timeout_ms = 2000
send_timeout_ms = 2000
max_output_bytes = 65536
TOML
RUST_LOG=warn "$bin" --config "$cfg" & server=$!
trap 'kill -TERM $server 2>/dev/null || true; rm -f "$cfg"' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done

lua=$(mktemp /tmp/shardd-soak-XXXX.lua)
cat > "$lua" <<'LUA'
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format(nil, "/plaintext") end
  req = table.concat(r)
end
request = function() return req end
response = function(status, headers, body)
  if status ~= 200 then bad = (bad or 0) + 1 end
end
done = function(summary, latency, requests)
  io.write(string.format("WRK requests=%d errors_connect=%d errors_read=%d errors_write=%d errors_status=%d errors_timeout=%d\n",
    summary.requests, summary.errors.connect, summary.errors.read, summary.errors.write, summary.errors.status, summary.errors.timeout))
end
LUA

python3 - "$port" "$secs" <<'PY' & misbehaving=$!
import socket, sys, time, random
port, secs = int(sys.argv[1]), float(sys.argv[2])
end = time.time() + secs
held = []
kinds = {"slowloris": 0, "garbage": 0, "smuggle": 0, "no-read": 0, "drop": 0}
def conn():
    s = socket.socket(); s.settimeout(2); s.connect(("127.0.0.1", port)); return s
while time.time() < end:
    kind = random.choice(list(kinds))
    try:
        s = conn()
        if kind == "slowloris":
            s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-Slow: "); held.append(s)
        elif kind == "garbage":
            s.sendall(bytes(random.getrandbits(8) for _ in range(200))); s.close()
        elif kind == "smuggle":
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"); s.recv(4096); s.close()
        elif kind == "no-read":
            s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n" * 2000); held.append(s)
        else:
            s.close()
        kinds[kind] += 1
    except OSError:
        pass
    held = held[-200:]
    time.sleep(0.01)
print("MISBEHAVING", " ".join(f"{k}={v}" for k, v in kinds.items()))
PY

( for _ in $(seq $(( secs / 10 + 1 ))); do
    echo "RSS t=${SECONDS}s $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status)"; sleep 10
  done ) & sampler=$!
wrk -t 1 -c 64 -d "${secs}s" --timeout 8 -s "$lua" "http://127.0.0.1:$port/plaintext"
wait $misbehaving || true
kill $sampler 2>/dev/null || true
echo "RSS end $(awk '/VmRSS/ {print $2, $3}' /proc/$server/status)"
rm -f "$lua"
