#!/usr/bin/env bash
# HTTP/2 side by side, one run: h2load against shardd, nginx, h2o and hyper
# (peer-hyper-h2), every server on the same core(s), over h2c (prior
# knowledge) and TLS (ALPN h2). Per cell: requests/s, the server's CPU µs per
# request (utime+stime of its process tree from /proc, read right before and
# right after h2load) and h2load's failed/errored counts. Prints Markdown.
#
# Usage
#   benches/h2/run.sh
#
# Environment (defaults in brackets)
#   SHARDD [target/release/shardd]   the shardd binary (not built here: cargo build --release)
#   SHARDD_ARGS []                   extra shardd flags (--shards and --bind are set here)
#   PEERS_DIR [../shared/peers]      the peers harness; peer-hyper-h2 is built from a copy
#   HYPER_H2 []                      an already built peer-hyper-h2 (skips that build)
#   SERVERS ["shardd nginx h2o hyper"]   TRANSPORTS ["h2c tls"]
#   WORKLOADS ["small-m100-c64 small-m100-c256 small-m1-c64 small-m1-c256 1mib-m1-c16"]
#                                    small-mM-cC = GET /plaintext (13-byte body) with
#                                    h2load -m M -c C; 1mib-mM-cC = GET /1mib (1 MiB body)
#   DURATION [4]  WARMUP [1]         seconds of h2load per cell, and of an unmeasured
#                                    run of the same shape right before it
#   SERVER_CPUS [1]  LOAD_CPUS [0]   taskset lists (../shared/peers' "pinned" split:
#                                    server on core 1, load generator on core 0)
#   SERVER_THREADS [1]  LOAD_THREADS [1]   server workers/shards; h2load -t
#   BASE_PORT [18480]                first port tried (5 are used, on 127.0.0.1)
#   RETRIES [1]  MAX_OTHER [0.1 × DURATION]   a cell during which other processes used
#                                    more than MAX_OTHER s of CPU is measured again, up
#                                    to RETRIES times; the least disturbed attempt counts
#   OUT []                           also write one TSV row per cell to this file
#
# A server that does not answer HTTP/2 on a transport (checked with curl before
# its cells) gets "no h2" in those cells; one without a 1 MiB route at /1mib
# gets "no /1mib" (shardd serves the file at /files/1mib, with --static); the
# run goes on. Every process started here is stopped by
# PID on exit. Needs h2load (Debian: nghttp2-client), curl, openssl, nginx, h2o.
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
SHARDD=${SHARDD:-$root/target/release/shardd}
SHARDD_ARGS=${SHARDD_ARGS:-}
PEERS_DIR=${PEERS_DIR:-$root/../shared/peers}
HYPER_H2=${HYPER_H2:-}
SERVERS=${SERVERS:-"shardd nginx h2o hyper"}
TRANSPORTS=${TRANSPORTS:-"h2c tls"}
WORKLOADS=${WORKLOADS:-"small-m100-c64 small-m100-c256 small-m1-c64 small-m1-c256 1mib-m1-c16"}
DURATION=${DURATION:-4}
WARMUP=${WARMUP:-1}
SERVER_CPUS=${SERVER_CPUS:-1}
LOAD_CPUS=${LOAD_CPUS:-0}
SERVER_THREADS=${SERVER_THREADS:-1}
LOAD_THREADS=${LOAD_THREADS:-1}
BASE_PORT=${BASE_PORT:-18480}
OUT=${OUT:-}
RETRIES=${RETRIES:-1}
MAX_OTHER=${MAX_OTHER:-$(awk -v d="${DURATION}" 'BEGIN { print 0.1 * d }')}
for n in DURATION WARMUP SERVER_THREADS LOAD_THREADS BASE_PORT; do
  [[ "${!n}" =~ ^[0-9]+$ ]] || { echo "h2/run.sh: $n must be a whole number, not '${!n}'" >&2; exit 2; }
done

for tool in h2load curl openssl taskset ss; do
  command -v "$tool" >/dev/null || {
    echo "h2/run.sh: $tool is not installed (Debian: apt-get install nghttp2-client curl openssl util-linux iproute2)" >&2
    exit 1
  }
done

CLK_TCK=$(getconf CLK_TCK)
work=$(mktemp -d /tmp/shardd-h2bench-XXXXXX)
started_pids=()

stop_servers() {
  local pid
  for pid in "${started_pids[@]}"; do
    kill -TERM "$pid" 2>/dev/null || true
  done
  for pid in "${started_pids[@]}"; do
    for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap stop_servers EXIT
trap 'exit 130' INT TERM

# ---- what the servers serve ---------------------------------------------------------
# The workers of nginx and h2o drop root for nobody: everything they read is world-readable.
chmod 755 "$work"
mkdir -p "$work/www"
printf 'Hello, World!' >"$work/www/plaintext.txt"
head -c 1048576 /dev/zero | tr '\0' 'x' >"$work/www/1mib"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
  -subj /CN=localhost -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
  -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
chmod -R a+rX "$work"

next_port=$BASE_PORT
free_port() {  # sets $port to the next port nobody listens on
  while ss -Hltn "sport = :$next_port" | grep -q .; do next_port=$((next_port + 1)); done
  port=$next_port
  next_port=$((next_port + 1))
}

# ---- starting the servers -------------------------------------------------------------
# port[server:transport] and pid[server:transport]; state[server:transport] holds why a
# server has no cells there (empty when it serves them).
declare -A port_of pid_of state_of

launch_as() {  # label command...
  local label=$1; shift
  taskset -c "$SERVER_CPUS" "$@" >"$work/$label.log" 2>&1 &
  launched_pid=$!
  started_pids+=("$launched_pid")
}

wait_listening() {  # pid port -> 0 when the port listens, 1 when the process died or 10 s passed
  for _ in $(seq 100); do
    ss -Hltn "sport = :$2" | grep -q . && return 0
    kill -0 "$1" 2>/dev/null || return 1
    sleep 0.1
  done
  return 1
}

register() {  # server transport port pid label
  port_of[$1:$2]=$3
  pid_of[$1:$2]=$4
  if wait_listening "$4" "$3"; then
    state_of[$1:$2]=""
  else
    state_of[$1:$2]="did not start"
    echo "h2/run.sh: $1 ($2) did not listen on $3; its log:" >&2
    cat "$work/$5.log" >&2 || true
  fi
}

start_shardd() {
  if [ ! -x "$SHARDD" ]; then
    state_of[shardd:h2c]="not built"; state_of[shardd:tls]="not built"
    echo "h2/run.sh: $SHARDD not found (cargo build --release, or SHARDD=path)" >&2
    return
  fi
  local transport
  for transport in $TRANSPORTS; do
    free_port
    local tls=()
    [ "$transport" = tls ] && tls=(--tls-cert "$work/cert.pem" --tls-key "$work/key.pem")
    # shellcheck disable=SC2086
    # The 1 MiB file comes from the same directory nginx and h2o serve it
    # from, through shardd's static-file service (mounted at /files).
    launch_as "shardd-$transport" "$SHARDD" --bind "127.0.0.1:$port" --shards "$SERVER_THREADS" \
      --static "/files=$work/www" "${tls[@]}" $SHARDD_ARGS
    register shardd "$transport" "$port" "$launched_pid" "shardd-$transport"
  done
}

start_nginx() {
  local nginx
  nginx=$(command -v nginx || echo /usr/sbin/nginx)
  if [ ! -x "$nginx" ]; then
    state_of[nginx:h2c]="not installed"; state_of[nginx:tls]="not installed"; return
  fi
  local h2c tls
  free_port; h2c=$port; free_port; tls=$port
  sed -e "s#@DIR@#$work#g" -e "s#@H2C_PORT@#$h2c#g" -e "s#@TLS_PORT@#$tls#g" \
    "$here/nginx.conf.in" >"$work/nginx.conf"
  launch_as nginx "$nginx" -p "$work" -e "$work/nginx-error.log" -c "$work/nginx.conf" \
    -g "daemon off; master_process on; worker_processes $SERVER_THREADS; pid $work/nginx.pid;"
  register nginx h2c "$h2c" "$launched_pid" nginx
  register nginx tls "$tls" "$launched_pid" nginx
}

start_h2o() {
  if ! command -v h2o >/dev/null; then
    state_of[h2o:h2c]="not installed"; state_of[h2o:tls]="not installed"; return
  fi
  local h2c tls
  free_port; h2c=$port; free_port; tls=$port
  sed -e "s#@DIR@#$work#g" -e "s#@H2C_PORT@#$h2c#g" -e "s#@TLS_PORT@#$tls#g" \
    -e "s#@THREADS@#$SERVER_THREADS#g" "$here/h2o.conf.in" >"$work/h2o.conf"
  [ "$(id -u)" -eq 0 ] && echo "user: nobody" >>"$work/h2o.conf"
  launch_as h2o h2o -m worker -c "$work/h2o.conf"
  register h2o h2c "$h2c" "$launched_pid" h2o
  register h2o tls "$tls" "$launched_pid" h2o
}

build_hyper() {  # sets $HYPER_H2, building peer-hyper-h2 from a writable copy of the peers
  [ -n "$HYPER_H2" ] && return 0
  [ -d "$PEERS_DIR/servers/hyper" ] || { echo "h2/run.sh: $PEERS_DIR/servers/hyper not found" >&2; return 1; }
  local copy=${CARGO_TARGET_DIR:-$root/target}/h2bench-peers
  mkdir -p "$copy"
  cp -r "$PEERS_DIR/servers/." "$copy/"
  echo "h2/run.sh: building peer-hyper-h2 in $copy" >&2
  (cd "$copy" && CARGO_TARGET_DIR="$copy/target" cargo build --release -q -p peer-hyper --bin peer-hyper-h2) >&2 ||
    return 1
  HYPER_H2=$copy/target/release/peer-hyper-h2
}

start_hyper() {
  # peer-hyper-h2 serves h2c and /plaintext only (no TLS, no /1mib).
  state_of[hyper:tls]="n/a (h2c only)"
  if ! build_hyper; then state_of[hyper:h2c]="not built"; return; fi
  free_port
  launch_as hyper "$HYPER_H2" --port "$port" --threads "$SERVER_THREADS"
  register hyper h2c "$port" "$launched_pid" hyper
}

# ---- does a server speak HTTP/2 there? --------------------------------------------------
url_of() {  # server transport path
  local p=${port_of[$1:$2]}
  if [ "$2" = tls ]; then echo "https://127.0.0.1:$p$3"; else echo "http://127.0.0.1:$p$3"; fi
}
probe() {  # server transport path bytes -> "" when it answers 200 over HTTP/2 with that many bytes
  local how=(--http2-prior-knowledge) got
  [ "$2" = tls ] && how=(--http2 --insecure)
  got=$(curl -sS --max-time 5 "${how[@]}" -o /dev/null -w '%{http_version} %{http_code} %{size_download}' \
    "$(url_of "$1" "$2" "$3")" 2>/dev/null || true)
  case "$got" in
    "2 200 $4") echo "";;
    "2 "*) echo "no $3";;
    *) echo "no h2";;
  esac
}

# ---- CPU accounting -------------------------------------------------------------------
tree_pids() {  # a PID and all its descendants
  local c
  echo "$1"
  for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do tree_pids "$c"; done
}
tree_ticks() {  # utime+stime (clock ticks) of a process tree; a leader's stat covers its threads
  local p
  for p in $(tree_pids "$1"); do cat "/proc/$p/stat" 2>/dev/null || true; done |
    awk '{ s = $0; sub(/^.*\) /, "", s); split(s, f, " "); t += f[12] + f[13] } END { print t + 0 }'
}
box_busy_ticks() {  # every CPU's busy time: user nice system irq softirq steal
  awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9; exit }' /proc/stat
}
children_seconds() {  # from `times` output: CPU seconds of reaped children (user + system)
  tail -1 "$1" | awk '{ n = split($0, t, " "); s = 0
    for (i = 1; i <= n; i++) { split(t[i], a, /[ms]/); s += a[1] * 60 + a[2] } print s }'
}

# ---- one cell -------------------------------------------------------------------------------
workload_shape() {  # name -> "path bytes m c"
  local kind=${1%%-*} rest=${1#*-}
  local m=${rest%%-*} c=${rest#*-}
  m=${m#m}; c=${c#c}
  case "$kind" in
    small) echo "/plaintext 13 $m $c";;
    1mib) echo "/1mib 1048576 $m $c";;
    *) echo "h2/run.sh: unknown workload $1" >&2; exit 2;;
  esac
}

attempt() {  # pid url -> $result: "rps us failed errored timeout non2xx other_s proto cipher ok srv_s load_s",
  # or a reason without figures ("h2load failed", "no h2 (...)")
  local pid=$1 url=$2 s0 s1 b0 b1 load_s row
  s0=$(tree_ticks "$pid"); b0=$(box_busy_ticks); times >"$work/times0"
  "${h2load[@]}" -D "$DURATION" "$url" >"$work/h2load.out" 2>&1 || true
  times >"$work/times1"; s1=$(tree_ticks "$pid"); b1=$(box_busy_ticks)
  load_s=$(awk -v a="$(children_seconds "$work/times0")" -v b="$(children_seconds "$work/times1")" 'BEGIN { print b - a }')
  # rps, succeeded, failed, errored, timeout, non-2xx, protocol, cipher
  row=$(awk '
    /^finished in/ { rps = $4 }
    /^requests:/ { for (i = 2; i < NF; i += 2) { k = $(i + 1); gsub(/,/, "", k); n[k] = $i } }
    /^status codes:/ { bad = $7 + $9 + $11 }
    /^Application protocol:/ { proto = $3 }
    /^Cipher:/ { cipher = $2 }
    END { gsub(/,/, "", rps); bad += 0
          printf "%s %d %d %d %d %d %s %s\n", (rps == "" ? "-" : rps), n["succeeded"], n["failed"],
            n["errored"], n["timeout"], bad, (proto == "" ? "-" : proto), (cipher == "" ? "-" : cipher) }' "$work/h2load.out")
  local rps ok failed errored timeouts non2xx proto cipher
  read -r rps ok failed errored timeouts non2xx proto cipher <<<"$row"
  if [ "$rps" = - ] || [ "$ok" -eq 0 ]; then
    result="h2load failed"
    echo "h2/run.sh: h2load got no answers from $url:" >&2; tail -5 "$work/h2load.out" >&2
    return
  fi
  case "$proto" in h2|h2c) ;; *) result="no h2 ($proto)"; return;; esac
  # Everything else the box did meanwhile: all CPUs' busy time minus the server's and h2load's.
  local us other_s srv_s
  read -r us other_s srv_s <<<"$(awk -v s0="$s0" -v s1="$s1" -v b0="$b0" -v b1="$b1" -v tck="$CLK_TCK" \
    -v ok="$ok" -v load="$load_s" 'BEGIN { srv = (s1 - s0) / tck; other = (b1 - b0) / tck - srv - load
      if (other < 0) other = 0; printf "%.3f %.2f %.2f\n", srv * 1e6 / ok, other, srv }')"
  result="$rps $us $failed $errored $timeouts $non2xx $other_s $proto $cipher $ok $srv_s $load_s"
}

declare -A cell
measure() {  # server transport workload -> cell[transport|workload|server]
  local server=$1 transport=$2 wl=$3 key="$2|$3|$1" path bytes m c url why
  read -r path bytes m c <<<"$(workload_shape "$wl")"
  [ "$server:$path" = shardd:/1mib ] && path=/files/1mib
  why=${state_of[$server:$transport]-"not run"}
  if [ -z "$why" ]; then why=$(probe "$server" "$transport" "$path" "$bytes"); fi
  if [ -n "$why" ]; then cell[$key]="$why"; echo "h2/run.sh: $key: $why" >&2; return; fi
  url=$(url_of "$server" "$transport" "$path")
  h2load=(taskset -c "$LOAD_CPUS" timeout $((DURATION + WARMUP + 30)) h2load -t "$LOAD_THREADS" -c "$c" -m "$m")
  "${h2load[@]}" -D "$WARMUP" "$url" >/dev/null 2>&1 || true
  # The box is shared: when other processes burnt more than MAX_OTHER seconds during the
  # cell, measure it again (up to RETRIES times) and keep the least disturbed attempt.
  local best="" try f
  for try in $(seq 0 "$RETRIES"); do
    attempt "${pid_of[$server:$transport]}" "$url"
    read -ra f <<<"$result"
    if [[ ! "${f[1]-}" =~ ^[0-9.]+$ ]]; then best=$result; break; fi
    if [ -z "$best" ] || awk -v a="${f[6]}" -v b="$(awk '{ print $7 }' <<<"$best")" 'BEGIN { exit !(a < b) }'; then
      best=$result
    fi
    awk -v a="${f[6]}" -v m="$MAX_OTHER" 'BEGIN { exit !(a <= m) }' && break
    echo "h2/run.sh: $key: other processes used ${f[6]}s of CPU during attempt $((try + 1)) (MAX_OTHER=${MAX_OTHER}s)" >&2
  done
  cell[$key]=$best
  read -ra f <<<"$best"
  if [[ ! "${f[1]-}" =~ ^[0-9.]+$ ]]; then echo "h2/run.sh: $key: $best" >&2; return; fi
  echo "h2/run.sh: $key: ${f[0]} req/s, ${f[1]} µs CPU/req (server ${f[10]}s, h2load ${f[11]}s, others ${f[6]}s)," \
    "succeeded=${f[9]} failed=${f[2]} errored=${f[3]} timeout=${f[4]} non-2xx=${f[5]} ${f[7]} ${f[8]}" >&2
  if [ -n "$OUT" ]; then
    [ -s "$OUT" ] || printf 'transport\tworkload\tserver\trps\tus_cpu_per_req\tsucceeded\tfailed\terrored\ttimeout\tnon_2xx\tserver_cpu_s\th2load_cpu_s\tother_cpu_s\tprotocol\tcipher\n' >"$OUT"
    printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$transport" "$wl" "$server" "${f[0]}" "${f[1]}" \
      "${f[9]}" "${f[2]}" "${f[3]}" "${f[4]}" "${f[5]}" "${f[10]}" "${f[11]}" "${f[6]}" "${f[7]}" "${f[8]}" >>"$OUT"
  fi
}

# ---- the run -----------------------------------------------------------------------------------
for server in $SERVERS; do
  case "$server" in
    shardd) start_shardd;; nginx) start_nginx;; h2o) start_h2o;; hyper) start_hyper;;
    *) echo "h2/run.sh: unknown server $server (shardd nginx h2o hyper)" >&2; exit 2;;
  esac
done

# Servers take turns within each cell (reversed every second workload), so drift on a
# shared box hits them all alike; the idle ones sit on the same core doing nothing.
turn=0
for transport in $TRANSPORTS; do
  for wl in $WORKLOADS; do
    order=$SERVERS
    [ $((turn % 2)) -eq 1 ] && order=$(printf '%s\n' $SERVERS | tac | xargs)
    turn=$((turn + 1))
    for server in $order; do measure "$server" "$transport" "$wl"; sleep 0.5; done
  done
done

# ---- Markdown ------------------------------------------------------------------------------------
describe() {  # workload -> "/plaintext -c 64 -m 100"
  local path bytes m c
  read -r path bytes m c <<<"$(workload_shape "$1")"
  echo "\`$path\` -c $c -m $m"
}
fmt_cell() {  # raw cell -> "123456 req/s · 5.61 µs · 0/0"
  local f
  read -ra f <<<"$1"
  if [[ ! "${f[0]-}" =~ ^[0-9.]+$ ]]; then echo "$1"; return; fi
  local bad=""
  [ "$((f[4] + f[5]))" -gt 0 ] && bad=" (timeout ${f[4]}, non-2xx ${f[5]})"
  printf '%.0f req/s · %.2f µs · %s/%s%s\n' "${f[0]}" "${f[1]}" "${f[2]}" "${f[3]}" "$bad"
}

echo "## HTTP/2: h2load side by side ($(date -u +%Y-%m-%d))"
echo
echo "Each cell: requests/s · server CPU µs per request (utime+stime of its process tree) · h2load failed/errored."
echo "Servers on CPU(s) $SERVER_CPUS with $SERVER_THREADS worker(s)/shard(s) each; h2load -t $LOAD_THREADS on CPU(s) $LOAD_CPUS;"
versions="$(h2load --version | head -1)"
[[ " $SERVERS " == *" nginx "* ]] && versions+=", $( (nginx -v || /usr/sbin/nginx -v) 2>&1 | sed 's/.*: //')"
[[ " $SERVERS " == *" h2o "* ]] && versions+=", h2o $(h2o --version 2>/dev/null | awk 'NR == 1 { print $3 }')"
[[ " $SERVERS " == *" hyper "* ]] && versions+=", peer-hyper-h2 (hyper-util's auto builder, hyper's default HTTP/2 settings)"
[[ " $SERVERS " == *" shardd "* ]] && versions+=", $("$SHARDD" --version 2>/dev/null || echo "shardd (version unknown)")"
echo "${DURATION} s per cell after a ${WARMUP} s warm-up; $versions."
for transport in $TRANSPORTS; do
  echo
  if [ "$transport" = tls ]; then echo "### TLS (ALPN h2)"; else echo "### h2c (prior knowledge)"; fi
  echo
  printf '| workload |'; for s in $SERVERS; do printf ' %s |' "$s"; done; echo
  printf '|---|'; for _ in $SERVERS; do printf -- '---|'; done; echo
  for wl in $WORKLOADS; do
    printf '| %s |' "$(describe "$wl")"
    for s in $SERVERS; do printf ' %s |' "$(fmt_cell "${cell[$transport|$wl|$s]-}")"; done
    echo
  done
done

# shardd's CPU per request over each peer's, where both were measured.
if [[ " $SERVERS " == *" shardd "* ]]; then
  echo
  echo "### shardd's server CPU per request ÷ each peer's (below 1: shardd spends less)"
  echo
  printf '| transport | workload |'; for s in $SERVERS; do [ "$s" = shardd ] || printf ' ÷ %s |' "$s"; done; echo
  printf '|---|---|'; for s in $SERVERS; do [ "$s" = shardd ] || printf -- '---|'; done; echo
  for transport in $TRANSPORTS; do
    for wl in $WORKLOADS; do
      printf '| %s | %s |' "$transport" "$(describe "$wl")"
      read -ra mine <<<"${cell[$transport|$wl|shardd]-x}"
      for s in $SERVERS; do
        [ "$s" = shardd ] && continue
        read -ra theirs <<<"${cell[$transport|$wl|$s]-x}"
        if [[ "${mine[1]-}" =~ ^[0-9.]+$ && "${theirs[1]-}" =~ ^[0-9.]+$ ]]; then
          printf ' %s |' "$(awk -v a="${mine[1]}" -v b="${theirs[1]}" 'BEGIN { printf "%.2f", (b > 0 ? a / b : 0) }')"
        else
          printf ' – |'
        fi
      done
      echo
    done
  done
fi

echo
echo "### Other processes' CPU during each cell, s (the box is shared: the higher, the noisier the cell; $((DURATION * $(nproc))) s is the whole box)"
echo
printf '| transport | workload |'; for s in $SERVERS; do printf ' %s |' "$s"; done; echo
printf '|---|---|'; for _ in $SERVERS; do printf -- '---|'; done; echo
for transport in $TRANSPORTS; do
  for wl in $WORKLOADS; do
    printf '| %s | %s |' "$transport" "$(describe "$wl")"
    for s in $SERVERS; do
      read -ra f <<<"${cell[$transport|$wl|$s]-x}"
      if [[ "${f[0]-}" =~ ^[0-9.]+$ ]]; then printf ' %s |' "${f[6]}"; else printf ' – |'; fi
    done
    echo
  done
done
echo
echo "TLS cipher suites negotiated by h2load: $(for s in $SERVERS; do read -ra f <<<"${cell[tls|${WORKLOADS%% *}|$s]-x}"; [ -n "${f[8]-}" ] && printf '%s %s; ' "$s" "${f[8]}"; done)"
