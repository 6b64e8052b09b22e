#!/usr/bin/env bash
# bench/scale-out.sh - the figures of issue 12 (make bench-scale-out): in one
# run, on one machine (loopback, a throw-away PostgreSQL 15 cluster on a unix
# socket, started and removed here):
#   1. HTTP ingest (bench/load.c ingest --ping, 100 events a request) and
#      POST -> SSE transition latency (load latency at a steady rate) with
#      1 worker on SQLite, 1 worker on PostgreSQL, 3 workers on
#      PostgreSQL with one clinic and with three (the workers share the
#      leases, one each) (ingest: one load per worker, at the same time; latency:
#      posted to and streamed from a worker that does not hold the clinic's
#      lease, so every transition crosses the database twice: NOTIFY to the
#      owner, NOTIFY back to the stream's worker);
#   2. `regimen sweep` of a generated cohort (bench/gen.c) on both stores;
#   3. `regimen simulate` of a 1,000-patient cohort on both stores.
# Writes bench/results/scale-out.md. Short runs (SECONDS_EACH, default 5 s):
# the machine is shared. SWEEP_PATIENTS (default 10000).
set -u -o pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
BIN=${BENCH_BIN:-$ROOT/build/regimen} # BENCH_BIN=PATH: another binary (a baseline), same run
TOOLS=$ROOT/build/bench
TOKEN=bench-token-0123456789abcdef
SECS=${SECONDS_EACH:-5}
SWEEP_PATIENTS=${SWEEP_PATIENTS:-10000}
AT=2028-01-01T00:00:00Z
WORK=$(mktemp -d /tmp/regimen-scale-XXXXXX)
PGDIR=$(mktemp -d /tmp/regimen-scale-pg-XXXXXX) # its parents must be open to the postgres user
PIDS=()
cleanup() {
    for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
    tests/pg/cluster.sh stop "$PGDIR" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT
mkdir -p "$TOOLS"
cc -std=c11 -O2 bench/gen.c -o "$TOOLS/gen" || exit 2
[ -x "$TOOLS/load" ] && [ "$TOOLS/load" -nt bench/load.c ] ||
    cc -std=c11 -O2 -D_GNU_SOURCE bench/load.c -o "$TOOLS/load" -lpthread -lm || exit 2
BASE=$(tests/pg/cluster.sh start "$PGDIR") || exit 2
pgurl() { # a new schema (called in $(...): its name cannot come from a counter)
    local n=s$(date +%s%N)
    psql -q "$BASE" -c "CREATE SCHEMA $n" >/dev/null || exit 2
    echo "$BASE&options=-csearch_path%3D$n"
}
kv() { awk -v p="$2" -v k="$3" 'index($0, p) == 1 { for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit } }' "$1"; }
cat >"$WORK/ping.json" <<EOC
{ "listen": "127.0.0.1:0",
  "clinics": { "bench": { "protocols": "$ROOT/bench/ping", "tokens": ["$TOKEN"] } } }
EOC
# three clinics, so that three workers share the evaluation (a lease each)
CLINICS=(bench bench2 bench3)
TOKENS=("$TOKEN" "$TOKEN-2" "$TOKEN-3")
cat >"$WORK/ping3.json" <<EOC
{ "listen": "127.0.0.1:0",
  "clinics": { "bench": { "protocols": "$ROOT/bench/ping", "tokens": ["${TOKENS[0]}"] },
               "bench2": { "protocols": "$ROOT/bench/ping", "tokens": ["${TOKENS[1]}"] },
               "bench3": { "protocols": "$ROOT/bench/ping", "tokens": ["${TOKENS[2]}"] } } }
EOC
PORTS=()
start_workers() { # DB COUNT CONFIG
    PORTS=()
    for i in $(seq "$2"); do
        "$BIN" serve --config "$3" --db "$1" 2>"$WORK/w$i.log" &
        PIDS+=($!)
        for _ in $(seq 200); do
            p=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/w$i.log" | head -1)
            [ -n "$p" ] && break
            sleep 0.05
        done
        PORTS+=("$p")
    done
}
stop_workers() {
    for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    PIDS=()
}
ROWS=()
measure() { # LABEL DB WORKERS [CLINICS: 1, or 3 (load i sends clinic i's events)]
    local label=$1 db=$2 n=$3 nc=${4:-1} i total=0 p50 p99 loads=() cfg=$WORK/ping.json c
    [ "$nc" = 3 ] && cfg=$WORK/ping3.json
    start_workers "$db" "$n" "$cfg"
    [ "$nc" = 3 ] && sleep 2.5 # the workers share the leases (one lease tick, then the next)
    for i in $(seq "$n"); do
        c=0
        [ "$nc" = 3 ] && c=$((i - 1))
        nice "$TOOLS/load" ingest --ping --port "${PORTS[$((i - 1))]}" --token "${TOKENS[$c]}" \
            --clinic "${CLINICS[$c]}" --clients 2 --batch 100 --seconds "$SECS" \
            >"$WORK/ingest-$i.out" 2>&1 &
        loads+=($!)
    done
    wait "${loads[@]}"
    for i in $(seq "$n"); do
        total=$(awk -v a="$total" -v b="$(kv "$WORK/ingest-$i.out" "ingest " events_per_s)" \
            'BEGIN { printf "%.0f", a + b }')
    done
    p50=$(kv "$WORK/ingest-1.out" "ingest " ack_p50_ms)
    p99=$(kv "$WORK/ingest-1.out" "ingest " ack_p99_ms)
    # A worker that does not hold the lease acknowledges once the events are
    # stored; the owner evaluates them after (as wake-ups, earliest first). So
    # the latency below starts once nothing is due any more: measured behind
    # that backlog, it would time the backlog. How long the owner took is a
    # figure of its own (one clinic: one owner evaluates for all three).
    local t0 caught=-
    t0=$(date +%s.%N)
    sleep 1.5 # the ping protocol's timers, 1 s after the last pings
    case $db in
    postgres*)
        for _ in $(seq 1800); do # (up to about 4 min: a backlog of one owner)
            [ "$(psql -tAc "SELECT count(*) FROM patients WHERE next_wake <= $(date +%s%3N)" "$db")" = 0 ] && break
            sleep 0.1
        done
        caught=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }') ;;
    esac
    nice "$TOOLS/load" latency --port "${PORTS[$((n - 1))]}" --token "$TOKEN" --clients 2 \
        --rate 200 --seconds "$SECS" --timer-ms 1000 >"$WORK/lat.out" 2>&1
    ROWS+=("| $label | $total | $p50 / $p99 | $(kv "$WORK/lat.out" "latency " echo_p50_ms) / $(kv "$WORK/lat.out" "latency " echo_p99_ms) | $(kv "$WORK/lat.out" "latency " echo_missing) | $caught |")
    stop_workers
}
measure "1 worker, SQLite" "$WORK/one.db" 1
measure "1 worker, PostgreSQL" "$(pgurl)" 1
measure "3 workers, PostgreSQL" "$(pgurl)" 3
measure "3 workers, 3 clinics, PostgreSQL" "$(pgurl)" 3 3

"$TOOLS/gen" "$SWEEP_PATIENTS" 10 42 >"$WORK/sweep.jsonl"
"$TOOLS/gen" 1000 4 42 >"$WORK/sim.jsonl"
SWEEPS=()
for store in sqlite pg; do
    if [ $store = sqlite ]; then db=$WORK/sweep.db; sdb=$WORK/sim.db; else db=$(pgurl); sdb=$(pgurl); fi
    t0=$(date +%s.%N)
    "$BIN" ingest --db "$db" "$WORK/sweep.jsonl" >/dev/null 2>&1
    t1=$(date +%s.%N)
    line=$(nice "$BIN" sweep --db "$db" --at "$AT" 2>&1 | grep '^swept')
    t2=$(date +%s.%N)
    nice "$BIN" simulate --events "$WORK/sim.jsonl" --until "$AT" --db "$sdb" --format jsonl \
        >"$WORK/sim-$store.out" 2>/dev/null
    t3=$(date +%s.%N)
    SWEEPS+=("| $store | $(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }') | $(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.1f", b - a }') ($line) | $(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.1f", b - a }') |")
done
same=$(cmp -s "$WORK/sim-sqlite.out" "$WORK/sim-pg.out" && echo "identical" || echo "DIFFERENT")
mkdir -p bench/results
{
    echo "# Scale-out figures (bench/scale-out.sh, $(date -u +%Y-%m-%dT%H:%M:%SZ))"
    echo
    echo "$(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), shared;"
    echo "PostgreSQL $(psql -tAc 'SHOW server_version' "$BASE") on a unix socket, fsync off (a throw-away"
    echo "test cluster: commits cost less than on a durable server); SQLite with synchronous=FULL."
    echo "${SECS} s per figure, bench/ping protocol (a transition 1 s after each ping)."
    echo
    echo "| service | HTTP ingest, events/s | ack p50 / p99, ms | POST -> transition p50 / p99, ms | missing | nothing due, s after ingest |"
    echo "|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "POST -> transition: the time from a POST to the SSE transition it causes (the ping"
    echo "protocol's immediate echo); with 3 workers, posted to and streamed from a worker that does"
    echo "not hold the lease, and only once nothing is due: the last column is how long after the"
    echo "ingest load stopped the owners had evaluated every event the three accepted (PostgreSQL only)."
    echo "With one clinic one owner evaluates for all three workers; with three clinics the workers"
    echo "share the leases (one each) and each load sends one clinic's events."
    echo
    echo "| store | ingest ${SWEEP_PATIENTS} patients, s | sweep, s | simulate 1,000 patients, s |"
    echo "|---|---|---|---|"
    printf '%s\n' "${SWEEPS[@]}"
    echo
    echo "simulate's transitions on the two stores: $same."
} >bench/results/scale-out.md
cat bench/results/scale-out.md
