#!/usr/bin/env bash
# bench/scale-out.sh - the figures of issues 12 and 27 (make bench-scale-out): in one
# run, on one machine (loopback, a throw-away PostgreSQL 15 cluster on a unix
# socket, started and removed here):
#   1. HTTP ingest (bench/load.c ingest: --ping, 100 new patients a request,
#      and cohort requests, whole patient histories) with the time until
#      every accepted event was evaluated, the statements and round trips
#      per evaluated patient (the workers' /metrics) and the requests refused
#      by back-pressure, then POST -> SSE transition latency (load latency at
#      a steady rate): 1 worker on SQLite and on PostgreSQL (pings and cohort
#      requests), 1 and 3 workers on PostgreSQL with three clinics (the
#      workers share the leases, one each), 3 workers with one large clinic
#      (one owner; the other two store and push back); the ratios of the
#      issue 27 targets;
#   2. `regimen sweep` of a generated cohort (bench/gen.c) on both stores;
#   3. `regimen simulate` of a 1,000-patient cohort on both stores.
# Writes bench/results/scale-out.md. Short runs (SECONDS_EACH, default 5 s):
# the machine is shared. SWEEP_PATIENTS (default 10000), COHORT_PATIENTS (the
# cohort requests' patients, default 3000).
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
# A sum over the workers' /metrics of one series (no labels).
metric_sum() { # NAME
    local t=0 v
    for p in "${PORTS[@]}"; do
        v=$("$TOOLS/load" metrics --port "$p" --token "$MTOKEN" 2>/dev/null |
            awk -v k="$1" '$1 == k { print $2; exit }')
        t=$(awk -v a="$t" -v b="${v:-0}" 'BEGIN { printf "%.0f", a + b }')
    done
    echo "$t"
}
# Patients due at or before T (ms) that no worker has evaluated yet.
due_at() { # DB T
    case $1 in
    postgres*) psql -tAc "SELECT count(*) FROM patients WHERE next_wake <= $2" "$1" ;;
    *) sqlite3 "file:$1?mode=ro" "PRAGMA busy_timeout = 2000; SELECT count(*) FROM patients WHERE next_wake <= $2" | tail -1 ;;
    esac
}
measure() { # LABEL DB WORKERS CLINICS(1 or 3) KIND(ping or cohort)
    local label=$1 db=$2 n=$3 nc=$4 kind=$5 i total=0 busy=0 p50 p99 loads=() cfg c w nl b
    cfg=$WORK/ping.json
    [ "$nc" = 3 ] && cfg=$WORK/ping3.json
    [ "$kind" = cohort ] && cfg=$WORK/cohort.json
    MTOKEN=${TOKENS[0]}
    [ "$kind" = cohort ] && MTOKEN=$TOKEN
    start_workers "$db" "$n" "$cfg"
    [ "$n" -gt 1 ] && sleep 2.5 # the workers share the leases (one lease tick, then the next)
    local s0 r0 e0
    s0=$(metric_sum regimen_db_statements_total)
    r0=$(metric_sum regimen_db_round_trips_total)
    e0=$(metric_sum regimen_patients_evaluated_total)
    # one load per worker and per clinic: load i posts clinic (i mod clinics)'s
    # events to worker (i mod workers)
    nl=$((n > nc ? n : nc))
    # with as many workers as clinics, each load goes to its clinic's owner
    # (whichever worker took that lease)
    local owner=()
    if [ "$n" -gt 1 ] && [ "$n" = "$nc" ]; then
        for c in $(seq 0 $((nc - 1))); do
            owner[$c]=$((c % n))
            for k in $(seq 0 $((n - 1))); do
                "$TOOLS/load" metrics --port "${PORTS[$k]}" --token "${TOKENS[$c]}" 2>/dev/null |
                    grep -q "^regimen_lease_held{clinic=\"${CLINICS[$c]}\"} 1" && owner[$c]=$k
            done
        done
    fi
    for i in $(seq "$nl"); do
        c=$(((i - 1) % nc))
        w=$(((i - 1) % n))
        [ -n "${owner[$c]:-}" ] && w=${owner[$c]}
        if [ "$kind" = cohort ]; then
            nice "$TOOLS/load" ingest --file "$WORK/cohort.jsonl" --port "${PORTS[$w]}" \
                --token "$TOKEN" --clients 4 --batch 100 --seconds "$SECS" \
                >"$WORK/ingest-$i.out" 2>&1 &
        else
            nice "$TOOLS/load" ingest --ping --port "${PORTS[$w]}" --token "${TOKENS[$c]}" \
                --clinic "${CLINICS[$c]}" --clients 2 --batch 100 --seconds "$SECS" \
                >"$WORK/ingest-$i.out" 2>&1 &
        fi
        loads+=($!)
    done
    wait "${loads[@]}"
    local tend t0 caught=-
    tend=$(date +%s%3N)
    t0=$(date +%s.%N)
    for i in $(seq "$nl"); do
        total=$(awk -v a="$total" -v b="$(kv "$WORK/ingest-$i.out" "ingest " events_per_s)" \
            'BEGIN { printf "%.0f", a + b }')
        b=$(kv "$WORK/ingest-$i.out" "ingest " busy)
        busy=$((busy + ${b:-0}))
    done
    p50=$(kv "$WORK/ingest-1.out" "ingest " ack_p50_ms)
    p99=$(kv "$WORK/ingest-1.out" "ingest " ack_p99_ms)
    # Every accepted event evaluated: no patient left due at the load's end
    # (a worker that does not hold the lease acknowledges once the events are
    # stored; the owner evaluates them after, as wake-ups).
    for _ in $(seq 2400); do # (up to about 4 min: a backlog of one owner)
        [ "$(due_at "$db" "$tend")" = 0 ] && break
        sleep 0.1
    done
    caught=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    local s1 r1 e1 spp=- rpp=-
    s1=$(metric_sum regimen_db_statements_total)
    r1=$(metric_sum regimen_db_round_trips_total)
    e1=$(metric_sum regimen_patients_evaluated_total)
    if [ "$s1" != "$s0" ]; then
        spp=$(awk -v s="$((s1 - s0))" -v e="$((e1 - e0))" 'BEGIN { printf "%.2f", e ? s / e : 0 }')
        rpp=$(awk -v s="$((r1 - r0))" -v e="$((e1 - e0))" 'BEGIN { printf "%.2f", e ? s / e : 0 }')
    fi
    local lat="- / - | -"
    if [ "$kind" = ping ]; then
        sleep 1.2 # the ping protocol's timers, 1 s after the last pings
        nice "$TOOLS/load" latency --port "${PORTS[$((n - 1))]}" --token "${TOKENS[0]}" \
            --clients 2 --rate 200 --seconds "$SECS" --timer-ms 1000 >"$WORK/lat.out" 2>&1
        lat="$(kv "$WORK/lat.out" "latency " echo_p50_ms) / $(kv "$WORK/lat.out" "latency " echo_p99_ms) | $(kv "$WORK/lat.out" "latency " echo_missing)"
    fi
    ROWS+=("| $label | $total | $caught | $spp | $rpp | $busy | $p50 / $p99 | $lat |")
    KEYS+=("$label=$total")
    stop_workers
}
KEYS=()
START=$(date -u -d '-600 days' +%Y-%m-%d)
"$TOOLS/gen" "${COHORT_PATIENTS:-3000}" 1 42 "$START" >"$WORK/cohort.jsonl"
cat >"$WORK/cohort.json" <<EOC
{ "listen": "127.0.0.1:0",
  "clinics": { "c0": { "protocols": "$ROOT/protocols/ketamine", "tokens": ["$TOKEN"] } } }
EOC
measure "1 worker, SQLite, pings" "$WORK/one.db" 1 1 ping
measure "1 worker, PostgreSQL, pings" "$(pgurl)" 1 1 ping
measure "1 worker, SQLite, cohort requests" "$WORK/cohort.db" 1 1 cohort
measure "1 worker, PostgreSQL, cohort requests" "$(pgurl)" 1 1 cohort
measure "1 worker, PostgreSQL, 3 clinics" "$(pgurl)" 1 3 ping
measure "3 workers, PostgreSQL, 3 clinics" "$(pgurl)" 3 3 ping
measure "3 workers, PostgreSQL, 1 large clinic" "$(pgurl)" 3 1 ping
ratio() { # LABEL-A LABEL-B: A / B events/s
    local a b
    for k in "${KEYS[@]}"; do
        [ "${k%%=*}" = "$1" ] && a=${k#*=}
        [ "${k%%=*}" = "$2" ] && b=${k#*=}
    done
    awk -v a="${a:-0}" -v b="${b:-0}" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'
}
RATIOS=("PostgreSQL / SQLite, one worker, pings: $(ratio "1 worker, PostgreSQL, pings" "1 worker, SQLite, pings")x"
    "PostgreSQL / SQLite, one worker, cohort requests: $(ratio "1 worker, PostgreSQL, cohort requests" "1 worker, SQLite, cohort requests")x"
    "3 workers / 1 worker, PostgreSQL, 3 clinics: $(ratio "3 workers, PostgreSQL, 3 clinics" "1 worker, PostgreSQL, 3 clinics")x"
    "3 workers / 1 worker, PostgreSQL, 1 clinic: $(ratio "3 workers, PostgreSQL, 1 large clinic" "1 worker, PostgreSQL, pings")x")

"$TOOLS/gen" "$SWEEP_PATIENTS" 10 42 >"$WORK/sweep.jsonl"
"$TOOLS/gen" 1000 4 42 >"$WORK/sim.jsonl"
SWEEPS=()
declare -A SWEEP_S SIM_S
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
    SWEEP_S[$store]=$(awk -v a="$t1" -v b="$t2" 'BEGIN { printf "%.3f", b - a }')
    SIM_S[$store]=$(awk -v a="$t2" -v b="$t3" 'BEGIN { printf "%.3f", b - a }')
done
RATIOS+=("sweep, PostgreSQL / SQLite speed: $(awk -v a="${SWEEP_S[sqlite]}" -v b="${SWEEP_S[pg]}" 'BEGIN { printf "%.2f", a / b }')x"
    "simulate --db, PostgreSQL / SQLite speed: $(awk -v a="${SIM_S[sqlite]}" -v b="${SIM_S[pg]}" 'BEGIN { printf "%.2f", a / b }')x")
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
    echo "| service | HTTP ingest, events/s | all evaluated, s after the load | statements / evaluated patient | round trips / evaluated patient | 503 busy | ack p50 / p99, ms | POST -> transition p50 / p99, ms | missing |"
    echo "|---|---|---|---|---|---|---|---|---|"
    printf '%s\n' "${ROWS[@]}"
    echo
    echo "All evaluated: how long after the load stopped no patient was left due at the load's"
    echo "end (every event the workers accepted evaluated; the ping protocol's 1 s timers that fell"
    echo "due during the load included). Statements and round trips: the workers' /metrics"
    echo "(regimen_db_statements_total, regimen_db_round_trips_total) over the load and that wait,"
    echo "divided by the patients they evaluated (regimen_patients_evaluated_total); SQLite has none."
    echo "503 busy: requests refused by back-pressure (limits.backlog_patients), waited out and sent"
    echo "again by the load client. Pings: one new patient per event, 100 a request, 2 clients a load;"
    echo "cohort requests: whole patient histories (bench/gen.c, ${COHORT_PATIENTS:-3000} patients, the"
    echo "ketamine protocols), 4 clients. Loads: one per worker and per clinic (with 3 clinics and 1"
    echo "worker, three loads to it; with 3 workers and 1 clinic, one load to each worker, two of them"
    echo "not the clinic's owner; with 3 and 3, each load to its clinic's owner). POST -> transition: the ping protocol's echo, posted to and"
    echo "streamed from the last worker, once everything was evaluated."
    echo
    echo "| store | ingest ${SWEEP_PATIENTS} patients, s | sweep, s | simulate 1,000 patients, s |"
    echo "|---|---|---|---|"
    printf '%s\n' "${SWEEPS[@]}"
    echo
    echo "Ratios (this run; speed: how many times as fast, events/s or 1/time):"
    echo
    printf -- '- %s\n' "${RATIOS[@]}"
    echo
    echo "simulate's transitions on the two stores: $same."
} >bench/results/scale-out.md
cat bench/results/scale-out.md
