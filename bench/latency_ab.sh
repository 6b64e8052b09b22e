#!/usr/bin/env bash
# bench/latency_ab.sh - bench/run.sh's `latency-stored` row for two binaries,
# alternated (A B A B ...), without an ingest and a catch-up for each run.
#
#   bench/latency_ab.sh A_BIN B_BIN [ROUNDS]
#
# Fills one store once (A_BIN, PING_EVENTS pings of bench/ping through
# `load ingest --ping`, 8 clients, then waits until nothing is due), then
# for each round and binary: a copy of that store, `regimen serve` on it,
# a warm-up of WARM_SECONDS at the rate (the WAL as long as it runs), then
# `load latency` (4 clients, 1 event a POST, LAT_RATE/s, SECONDS_EACH s),
# one line each with the load average at its start. Needs build/bench/load
# (make build/bench/load). Env: PING_EVENTS (100000), LAT_RATE (1000),
# SECONDS_EACH (8), WARM_SECONDS (6), WORK (a new directory under /tmp).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
A=$(realpath "$1") B=$(realpath "$2") ROUNDS=${3:-3}
LOAD=$ROOT/build/bench/load
PING_EVENTS=${PING_EVENTS:-100000} LAT_RATE=${LAT_RATE:-1000}
SECONDS_EACH=${SECONDS_EACH:-8} WARM_SECONDS=${WARM_SECONDS:-6}
WORK=${WORK:-$(mktemp -d /tmp/latency-ab-XXXXXX)}
TOKEN=bench-token-0123456789abcdef
[ -x "$LOAD" ] || { echo "latency_ab: $LOAD missing (make build/bench/load)" >&2; exit 2; }
mkdir -p "$WORK"
cat >"$WORK/ping.json" <<EOC
{ "listen": "127.0.0.1:0",
  "clinics": { "bench": { "protocols": "$ROOT/bench/ping", "tokens": ["$TOKEN"] } } }
EOC

PID= PORT=
serve() { # BIN DB LOG
    "$1" serve --config "$WORK/ping.json" --db "$2" 2>"$3" &
    PID=$!
    for _ in $(seq 100); do
        PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$3" | head -1)
        [ -n "$PORT" ] && return 0
        sleep 0.1
    done
    echo "latency_ab: $1 serve did not start: $(tail -2 "$3")" >&2
    exit 1
}
stop() { kill -TERM "$PID"; wait "$PID" || true; PID=; }
trap '[ -n "$PID" ] && kill "$PID" 2>/dev/null; true' EXIT

if [ ! -s "$WORK/stored.db" ]; then
    serve "$A" "$WORK/stored.db" "$WORK/fill.log"
    "$LOAD" ingest --ping --port "$PORT" --token "$TOKEN" --clients 8 --batch 100 \
        --events "$PING_EVENTS" --seconds 600
    sleep 1.5 # the last pings' timers fall due a second after them
    t0=$SECONDS
    while [ $((SECONDS - t0)) -lt 900 ]; do
        w=$("$LOAD" metrics --port "$PORT" --token "$TOKEN" |
            awk '$1 == "regimen_wake_next_seconds" { print $2 }')
        awk -v w="$w" -v n="$(date +%s.%N)" 'BEGIN { exit !(w == 0 || w > n) }' && break
        sleep 2
    done
    echo "filled: $PING_EVENTS pings, caught up after $((SECONDS - t0)) s"
    stop
fi

for r in $(seq "$ROUNDS"); do
    for which in A B; do
        bin=$A
        [ "$which" = B ] && bin=$B
        rm -f "$WORK"/run.db*
        cp "$WORK/stored.db" "$WORK/run.db"
        serve "$bin" "$WORK/run.db" "$WORK/run-$which.log"
        "$LOAD" latency --port "$PORT" --token "$TOKEN" --clients 4 --rate "$LAT_RATE" \
            --seconds "$WARM_SECONDS" --timer-ms 1000 >/dev/null
        la=$(cut -d' ' -f1 /proc/loadavg)
        out=$("$LOAD" latency --port "$PORT" --token "$TOKEN" --clients 4 --rate "$LAT_RATE" \
            --seconds "$SECONDS_EACH" --timer-ms 1000 | head -1)
        stop
        echo "round $r $which load=$la $(grep -o 'achieved_per_s=[0-9]*\|echo_p50_ms=[0-9.]*\|echo_p99_ms=[0-9.]*\|echo_max_ms=[0-9.]*\|echo_missing=[0-9]*' <<<"$out" | tr '\n' ' ')"
    done
done
rm -f "$WORK"/run.db*
