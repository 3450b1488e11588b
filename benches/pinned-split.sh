#!/usr/bin/env bash
# Where a server's CPU per request goes in the pinned set-up (server on one
# core, one wrk thread on the other): user-space and kernel time apart, the
# voluntary context switches, the whole box's busy CPU per request (server,
# wrk and the kernel's interrupt work: what a change that only moves work
# from the server to the client would not reduce), and, where `perf` can
# read the kernel's tracepoints, the system calls per request by name.
#
#   benches/pinned-split.sh LABEL WORKLOAD [DURATION=5] -- SERVER_CMD...
#       WORKLOAD: pipeline (256 connections, 16 per write), keepalive (256
#       connections), churn (64 connections, one request each)
#
# The server command must listen on $PORT (default 18700). It runs under
# `taskset -c 1`, wrk under `taskset -c 0`, as in the peers' pinned variant.
# Run it for two servers one after the other, more than once, and compare:
# a 5-second cell moves 5-15 % on a shared box. Prints one line:
#   LABEL WORKLOAD req=N user=U sys=S total=T us/req vcsw/req=V box=B us/req [syscalls/req: read=… …]
# Needs wrk and taskset; exits 0 with a message without them. The system
# call counts come from a second run with `perf stat` attached (tracepoints
# cost a little), so they are printed apart from the CPU figures.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
label=${1:?label}; workload=${2:?workload}; shift 2
duration=5
if [ "${1:-}" != "--" ]; then duration=$1; shift; fi
[ "${1:-}" = "--" ] && shift
[ $# -gt 0 ] || { echo "usage: $0 LABEL WORKLOAD [DURATION] -- SERVER_CMD..." >&2; exit 2; }
for tool in wrk taskset; do
  command -v $tool >/dev/null || { echo "pinned-split.sh: $tool is not installed; skipping"; exit 0; }
done
port=${PORT:-18700}
url=http://127.0.0.1:$port/plaintext
accept='Accept: text/plain,text/html;q=0.9,application/xhtml+xml;q=0.9,application/xml;q=0.8,*/*;q=0.7'
pipeline_lua=$(mktemp /tmp/pinned-split-XXXX.lua)
cat > "$pipeline_lua" <<'LUA'
init = function(args)
  local depth = tonumber(args[1]) or 16
  local r = {}
  for i = 1, depth do r[i] = wrk.format() end
  req = table.concat(r)
end
request = function() return req end
LUA

taskset -c 1 "$@" >/dev/null 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null || true; wait $pid 2>/dev/null || true; rm -f "$pipeline_lua"' EXIT
for _ in $(seq 100); do ss -Hltn "sport = :$port" | grep -q . && break; sleep 0.1; done
taskset -c 0 wrk -t1 -c64 -d2s "$url" >/dev/null 2>&1 || true
sleep 0.5

load() {  # run the workload once; prints the completed requests
  local out
  case $workload in
    pipeline) out=$(taskset -c 0 wrk -t1 -c256 -d"${duration}s" -H "$accept" -H 'Connection: keep-alive' -s "$pipeline_lua" "$url" -- 16);;
    keepalive) out=$(taskset -c 0 wrk -t1 -c256 -d"${duration}s" -H "$accept" -H 'Connection: keep-alive' "$url");;
    churn) out=$(taskset -c 0 wrk -t1 -c64 -d"${duration}s" -H "$accept" -H 'Connection: close' "$url");;
    *) echo "unknown workload $workload" >&2; exit 2;;
  esac
  grep -o '[0-9]* requests in' <<<"$out" | awk '{print $1}'
}
ticks() { awk '{print $14, $15}' "/proc/$pid/stat"; }
switches() { cat /proc/$pid/task/*/status | awk '/^voluntary_ctxt/ {v += $2} END {print v}'; }
busy() { awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat; }  # user nice system irq softirq

read -r u0 s0 < <(ticks); v0=$(switches); b0=$(busy)
requests=$(load)
read -r u1 s1 < <(ticks); v1=$(switches); b1=$(busy)
hz=$(getconf CLK_TCK)
line=$(awk -v l="$label" -v w="$workload" -v r="$requests" -v u=$((u1 - u0)) -v s=$((s1 - s0)) \
           -v v=$((v1 - v0)) -v b=$((b1 - b0)) -v hz="$hz" 'BEGIN {
  printf "%s %s req=%d user=%.3f sys=%.3f total=%.3f us/req vcsw/req=%.3f box=%.2f us/req", l, w, r,
    u / hz * 1e6 / r, s / hz * 1e6 / r, (u + s) / hz * 1e6 / r, v / r, b / hz * 1e6 / r }')

if command -v perf >/dev/null && perf stat -e raw_syscalls:sys_enter true >/dev/null 2>&1; then
  events=raw_syscalls:sys_enter
  for call in read recvfrom write writev sendto sendmsg epoll_wait epoll_pwait epoll_ctl accept4 close futex; do
    events="$events,syscalls:sys_enter_$call"
  done
  counts=$(mktemp /tmp/pinned-split-XXXX.perf)
  perf stat -x, -e "$events" -p "$pid" -o "$counts" -- sleep $((duration + 1)) &
  perf_pid=$!
  sleep 0.3
  traced=$(load)
  wait $perf_pid || true
  line="$line syscalls/req:$(awk -F, -v r="$traced" '$1 ~ /^[0-9]+$/ && $1 > 0 {
      n = $3; sub(/.*sys_enter_/, "", n); sub(/raw_syscalls:sys_enter/, "all", n)
      printf " %s=%.3f", n, $1 / r }' "$counts")"
  rm -f "$counts"
fi
echo "$line"
