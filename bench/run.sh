#!/usr/bin/env bash
# bench/run.sh - regimen's benchmark (make bench, make bench-smoke).
#
#   bench/run.sh [--size default|large] [--smoke]
#
# Measures, in one run, on cohorts made by bench/gen.c (seeded, reused from
# bench/data/ when the same generator, size and seed made them):
#   1. bulk ingest (`regimen ingest`), events/s and the database's size (and
#      the same of BASELINE_BIN, when given); regimen's, the naive program's
#      and the baseline's ingests alternate INGEST_RUNS times (default 3, 1
#      with --smoke: A B C A B C ...), each into a new file, and each keeps
#      its fastest run: a 0.2 s run on a shared machine is mostly noise;
#   2. the re-evaluation sweep of every patient with the shipped protocol set
#      (`regimen sweep --at`), patients/s, events/s and peak RSS, at every
#      size (scaling), on one core (--jobs 1) and on all (the default) when
#      the binary has --jobs, against three baselines on the same data:
#        the naive program (bench/naive.c, issue 11: cJSON, SQLite in one
#        transaction, one ordered scan, a Lua table per event, the two rules
#        of bench/two-rules in plain Lua), for ingest and sweep both;
#        the bound (bench/bound.c: read the events in the engine's order and
#        hand each to a trivial Lua function), and
#        the peer (bench/peer/peer.js: json-rules-engine with the two rules of
#        bench/two-rules, which regimen runs for the comparison), timed end to
#        end from the JSON Lines file and its evaluation alone; regimen's
#        two-rule sweep likewise from disk and from memory (`sweep
#        --from-memory`: every history read into the history cache first,
#        untimed; up to PEER_MAX patients);
#      the naive program's alert counts must equal regimen's (agree = yes);
#   3. `regimen simulate` and `regimen diff` (a one-parameter change of the
#      shipped ketamine set) of the 10k cohort (SIM_SIZE), end to end, SIM_RUNS
#      times (default 2), interleaved with the same runs of the baseline binary
#      BASELINE_BIN when given (today's binary, with its own protocols/ beside
#      its bin/, e.g. a copy of main's build), and the ratios of the two;
#   4. `regimen serve` on 127.0.0.1: HTTP ingest with concurrent clients
#      (bench/load.c), POST -> SSE transition latency at a steady 1,000
#      events/s and the lateness of time-driven transitions (bench/ping).
# Prints the table and writes bench/results/latest.md and latest.svg.
#
# Sizes: 10k and 100k patients; --size large (make bench SIZE=large) adds 1M
# and judges the scaling from the second-largest size to the largest (peak RSS,
# time per event). BENCH_SIZES="2000 20000" replaces the sizes (to try a path,
# e.g. --size large, on a small machine; its report goes to bench/data/sizes/);
# the ratio targets use the largest size up to 100k. The POST -> transition latency is measured again after
# PING_EVENTS (default 100000; env) live pings were stored: 1.5 s after their
# ingest (their timers, one second after each ping, still falling due: a
# backlog the service catches up with meanwhile), and once none is due (the
# issue's target: that many patients stored, not that many due at once).
# --smoke: 300 patients, no peer (the naive program and its agreement check
# do run), a short service phase, results under
# bench/data/smoke/; checks that every stage runs. Exits non-zero when a stage
# fails (in both modes). SEED (default 42) and CLINICS (default 10) come from
# the environment. No python: bash, awk and the tools built here.
# STAGES=serve runs only stage 4 (the service) and writes its report to
# bench/data/run/serve.md instead of latest.md; BENCH_BIN=PATH measures another
# regimen binary than build/regimen.
set -u -o pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"

MODE=full
SIZE=${SIZE:-default}
while [ $# -gt 0 ]; do
    case "$1" in
    --smoke) MODE=smoke ;;
    --size) SIZE=${2:?--size needs default or large}; shift ;;
    --size=*) SIZE=${1#--size=} ;;
    *) echo "usage: bench/run.sh [--size default|large] [--smoke]" >&2; exit 2 ;;
    esac
    shift
done
[ -n "$SIZE" ] || SIZE=default

SEED=${SEED:-42}
CLINICS=${CLINICS:-10}
AT=2028-01-01T00:00:00Z  # after every generated event (they span 2026-01 .. 2027-09)
MID=2026-10-01T00:00:00Z # the agreement check: a moment when both rules fire for some
BIN=${BENCH_BIN:-$ROOT/build/regimen}
STAGES=${STAGES:-all}
case "$STAGES" in all | serve) ;; *) echo "bench: STAGES must be all or serve, not '$STAGES'" >&2; exit 2 ;; esac
TOOLS=$ROOT/build/bench
DATA=$ROOT/bench/data
TOKEN=bench-token-0123456789abcdef

if [ "$MODE" = smoke ]; then
    SIZES=(300)
    OUT=$DATA/smoke
    SIM_SIZE=300
    SIM_RUNS=${SIM_RUNS:-1}
    SERVE_PATIENTS=60
    HTTP_SECONDS=1 LAT_SECONDS=1 LAT_RATE=200 HTTP_CLIENTS=2 LAT_CLIENTS=2
    PING_EVENTS=2000 PING_SECONDS=5
    STAGE_TIMEOUT=25
    INGEST_RUNS=${INGEST_RUNS:-1}
else
    case "$SIZE" in
    default) SIZES=(10000 100000) ;;
    large) SIZES=(10000 100000 1000000) ;;
    *) echo "bench: SIZE must be default or large, not '$SIZE'" >&2; exit 2 ;;
    esac
    OUT=$ROOT/bench/results
    SIM_SIZE=${SIM_SIZE:-10000}
    SIM_RUNS=${SIM_RUNS:-2}
    SERVE_PATIENTS=5000
    HTTP_SECONDS=10 LAT_SECONDS=10 LAT_RATE=1000 HTTP_CLIENTS=8 LAT_CLIENTS=4
    PING_EVENTS=${PING_EVENTS:-100000} PING_SECONDS=180
    STAGE_TIMEOUT=1800
    INGEST_RUNS=${INGEST_RUNS:-3}
fi
if [ -n "${BENCH_SIZES:-}" ]; then
    read -r -a SIZES <<<"$BENCH_SIZES"
    [ "$MODE" = full ] && OUT=$DATA/sizes # a trial, not the committed results
fi
PEER_MAX=100000 # the peer holds the cohort in memory: it runs up to this size
WORK=$DATA/run
mkdir -p "$DATA" "$OUT"
rm -rf "$WORK"
mkdir -p "$WORK"
LOG=$WORK/log
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$LOG"

note() { printf '%s\n' "$*" >&2; }

# ---- what the run needs ------------------------------------------------------------

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
APT_UPDATED=
apt_install() {
    note "bench: installing $*"
    if [ -z "$APT_UPDATED" ]; then
        as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null || return 1
        APT_UPDATED=1
    fi
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

if [ ! -x "$BIN" ]; then
    note "bench: $BIN is missing: run make first"
    exit 2
fi
if [ "$MODE" = full ]; then
    [ -x /usr/bin/time ] || apt_install time || { note "bench: cannot install time"; exit 2; }
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        apt_install nodejs npm || { note "bench: cannot install nodejs and npm"; exit 2; }
    fi
    if [ ! -d bench/peer/node_modules/json-rules-engine ]; then
        (cd bench/peer && npm ci --no-audit --no-fund --loglevel=error) >&2 ||
            { note "bench: npm ci in bench/peer failed"; exit 2; }
    fi
fi
HAVE_TIME=0
[ -x /usr/bin/time ] && HAVE_TIME=1

# The bench tools, rebuilt when their source is newer.
build_tool() { # NAME FLAGS...
    local name=$1; shift
    if [ ! -x "$TOOLS/$name" ] || [ "bench/$name.c" -nt "$TOOLS/$name" ]; then
        mkdir -p "$TOOLS"
        cc -std=c11 -O2 -g -Wall -Wextra "bench/$name.c" -o "$TOOLS/$name" "$@" || return 1
    fi
}
build_tool gen || exit 2
build_tool bound $(pkg-config --cflags --libs lua5.4 sqlite3) || exit 2
build_tool load -pthread -lm || exit 2
build_tool naive $(pkg-config --cflags --libs lua5.4 sqlite3 libcjson) || exit 2

# ---- measuring ---------------------------------------------------------------------------

declare -A R     # results: R[key]=value
FAILED=()        # stages that failed

now_ns() { date +%s%N; }
secs_since() { awk -v a="$1" -v b="$(now_ns)" 'BEGIN { printf "%.3f", (b - a) / 1e9 }'; }

# run NAME CMD...: runs CMD with a time limit (and /usr/bin/time -v when there),
# stdout to $WORK/NAME.out (or $STDOUT), stderr to $WORK/NAME.err. Sets
# R[NAME.wall] (s), R[NAME.rss] (MiB), R[NAME.rc]; records a failure.
run() {
    local name=$1; shift
    local out=${STDOUT:-$WORK/$name.out} t0 rc
    note "bench: $name: $*"
    t0=$(now_ns)
    if [ "$HAVE_TIME" = 1 ]; then
        timeout "$STAGE_TIMEOUT" /usr/bin/time -v -o "$WORK/$name.time" "$@" >"$out" 2>"$WORK/$name.err"
    else
        timeout "$STAGE_TIMEOUT" "$@" >"$out" 2>"$WORK/$name.err"
    fi
    rc=$?
    R[$name.wall]=$(secs_since "$t0")
    R[$name.rc]=$rc
    R[$name.rss]=n/a
    if [ -f "$WORK/$name.time" ]; then
        R[$name.rss]=$(awk -F': ' '/Maximum resident set size/ { printf "%.0f", $2 / 1024 }' "$WORK/$name.time")
    fi
    { echo "== $name (rc $rc, ${R[$name.wall]} s): $*"; tail -5 "$WORK/$name.err"; } >>"$LOG"
    if [ "$rc" != 0 ]; then
        fail "$name" "exit status $rc: $(tail -2 "$WORK/$name.err" | tr '\n' ' ')"
        return 1
    fi
    return 0
}
fail() { FAILED+=("$1: $2"); note "bench: FAILED $1: $2"; }

# best NAME: the run just made as NAME-try becomes NAME (its figures and output)
# when it is the first or faster than NAME's so far (best of INGEST_RUNS).
best() {
    local k
    if ! have "$1.wall" || awk -v a="${R[$1-try.wall]}" -v b="${R[$1.wall]}" 'BEGIN { exit !(a < b) }'; then
        for k in wall rc rss; do R[$1.$k]=${R[$1-try.$k]}; done
        cp "$WORK/$1-try.out" "$WORK/$1.out"
    fi
}

# kv FILE PREFIX KEY: the value of KEY=... on the line of FILE starting with PREFIX.
kv() { awk -v p="$2" -v k="$3" 'index($0, p) == 1 { for (i = 1; i <= NF; i++) if (index($i, k "=") == 1) { print substr($i, length(k) + 2); exit } }' "$1"; }
calc() { awk "BEGIN { x = $1; printf \"${2:-%.0f}\", x }"; }
g() { local v=${R[$1]:-}; [ -n "$v" ] && echo "$v" || echo "n/a"; }
have() { [ -n "${R[$1]:-}" ] && [ "${R[$1]}" != n/a ]; }
# 1234567 -> 1,234,567 (numbers from awk, no locale needed)
num() { awk -v x="$1" 'BEGIN { if (x !~ /^-?[0-9.]+$/) { print x; exit } s = sprintf("%.0f", x); n = length(s); o = ""; for (i = 1; i <= n; i++) { o = o substr(s, i, 1); if ((n - i) % 3 == 0 && i < n && substr(s, i, 1) != "-") o = o "," } print o }'; }
short() { awk -v n="$1" 'BEGIN { if (n >= 1e6 && n % 1e6 == 0) printf "%dM", n / 1e6; else if (n >= 1000 && n % 1000 == 0) printf "%dk", n / 1000; else print n }'; }

GENSUM=$(cksum bench/gen.c | awk '{ print $1 }')
cohort() { # N CLINICS -> path of the cohort file, generated when missing
    local f="$DATA/cohort-$1-c$2-s$SEED-g$GENSUM.jsonl"
    if [ ! -s "$f" ]; then
        note "bench: generating $1 patients into $f"
        "$TOOLS/gen" "$1" "$2" "$SEED" >"$f.tmp" && mv "$f.tmp" "$f" || { rm -f "$f.tmp"; return 1; }
    fi
    echo "$f"
}
copy_db() { cp "$1" "$2" && { [ ! -f "$1-wal" ] || cp "$1-wal" "$2-wal"; }; }
# db_bytes DB: the database's size on disk, its write-ahead log included
db_bytes() { local f n=0; for f in "$1" "$1-wal" "$1-journal"; do [ -f "$f" ] && n=$((n + $(stat -c %s "$f"))); done; echo "$n"; }

SWEPT_RE='swept ([0-9]+) patients \(([0-9]+) events\) in ([0-9.]+) s: ([0-9]+) patients/s, ([0-9]+) events/s'
# sweep_stage NAME DB [--protocols DIR] : runs regimen sweep, parses its line
sweep_stage() {
    local name=$1 db=$2; shift 2
    run "$name" "$BIN" sweep --db "$db" --at "${SWEEP_AT:-$AT}" "$@"
    local line
    line=$(grep -E "$SWEPT_RE" "$WORK/$name.err" | tail -1)
    if [[ "$line" =~ $SWEPT_RE ]]; then
        R[$name.patients]=${BASH_REMATCH[1]} R[$name.events]=${BASH_REMATCH[2]}
        R[$name.secs]=${BASH_REMATCH[3]} R[$name.pps]=${BASH_REMATCH[4]} R[$name.eps]=${BASH_REMATCH[5]}
        R[$name.line]=$line
        [[ "$line" =~ \ ([0-9]+)\ alerts\ opened ]] && R[$name.opened]=${BASH_REMATCH[1]}
        [[ "$line" =~ \ ([0-9]+)\ jobs?$ ]] && R[$name.jobs]=${BASH_REMATCH[1]}
    else
        [ "${R[$name.rc]}" = 0 ] && fail "$name" "no 'swept N patients ...' line on stderr"
        return 1
    fi
}

# (grep reads the whole help: with -q it would stop at the first match, and
# the help, longer than a pipe write, would die of SIGPIPE under pipefail)
if ! "$BIN" --help 2>/dev/null | grep '^  sweep' >/dev/null; then
    fail sweep "build/regimen has no sweep command yet (regimen --help)"
fi
# `regimen sweep --jobs N` (worker threads; default: the cores available):
# with it the shipped-set sweep runs twice, on one core and with the default
ONE=()
if "$BIN" --help 2>/dev/null | grep '^  sweep .*--jobs' >/dev/null; then ONE=(--jobs 1); fi
# `regimen sweep --from-memory` (histories read into memory first, untimed)
MEMSWEEP=0
if "$BIN" --help 2>/dev/null | grep -- '--from-memory' >/dev/null; then MEMSWEEP=1; fi

# naive_sweep NAME DB AT: the naive program's sweep, its line parsed into R[NAME.*]
naive_sweep() {
    local name=$1 k
    run "$name" "$TOOLS/naive" sweep "$2" "$3" || return 1
    for k in patients events seconds events_per_s patients_per_s infusion_due bp_high; do
        R[$name.$k]=$(kv "$WORK/$name.out" "naive sweep " $k)
    done
}

# ---- 1, 2, 5: ingest, sweeps, bound, peer at every size -----------------------------------------

for N in "${SIZES[@]}"; do
    [ "$STAGES" = serve ] && break
    S=$(short "$N")
    F=$(cohort "$N" "$CLINICS") || { fail "gen-$S" "the generator failed"; continue; }
    R[events.$N]=$(wc -l <"$F")
    DB=$WORK/c$S.db
    NDB=$WORK/naive-$S.db
    BDB=$WORK/base-c$S.db
    BASE_OK=0
    [ -n "${BASELINE_BIN:-}" ] && [ -x "$BASELINE_BIN" ] && BASE_OK=1
    # regimen's ingest, the naive program's and the baseline binary's (when
    # given), alternated, each its best run
    for ((i = 1; i <= INGEST_RUNS; i++)); do
        rm -f "$DB" "$DB-wal" "$DB-shm"
        run "ingest-$S-try" "$BIN" ingest --db "$DB" "$F" && best "ingest-$S" || break
        rm -f "$NDB" "$NDB-journal"
        run "naive-ingest-$S-try" "$TOOLS/naive" ingest "$NDB" "$F" && best "naive-ingest-$S" || break
        if [ "$BASE_OK" = 1 ]; then
            rm -f "$BDB" "$BDB-wal" "$BDB-shm"
            run "base-ingest-$S-try" "$BASELINE_BIN" ingest --db "$BDB" "$F" &&
                best "base-ingest-$S" || BASE_OK=0
        fi
    done
    if [ "${R[ingest-$S.rc]:-1}" = 0 ]; then
        R[ingest-$S.stored]=$(sed -n 's/^stored \([0-9]*\),.*/\1/p' "$WORK/ingest-$S.out")
        R[ingest-$S.eps]=$(calc "${R[ingest-$S.stored]} / ${R[ingest-$S.wall]}")
        R[ingest-$S.bytes]=$(db_bytes "$DB")
    fi
    if [ "${R[base-ingest-$S.rc]:-1}" = 0 ] && [ -f "$BDB" ]; then
        R[base-ingest-$S.stored]=$(sed -n 's/^stored \([0-9]*\),.*/\1/p' "$WORK/base-ingest-$S.out")
        R[base-ingest-$S.eps]=$(calc "${R[base-ingest-$S.stored]} / ${R[base-ingest-$S.wall]}")
        R[base-ingest-$S.bytes]=$(db_bytes "$BDB")
    fi
    rm -f "$BDB" "$BDB-wal" "$BDB-shm"
    copy_db "$DB" "$WORK/full.db" && sweep_stage "sweep-$S" "$WORK/full.db"
    rm -f "$WORK"/full.db*
    if [ "${#ONE[@]}" -gt 0 ]; then
        copy_db "$DB" "$WORK/full.db" && sweep_stage "sweep1-$S" "$WORK/full.db" "${ONE[@]}"
        rm -f "$WORK"/full.db*
    fi
    # the two-rule sweep on one core: its baselines (naive, peer) use one
    copy_db "$DB" "$WORK/two.db" && sweep_stage "two-$S" "$WORK/two.db" --protocols bench/two-rules "${ONE[@]}"
    rm -f "$WORK"/two.db*
    # the same sweep with every history read into memory first (the history
    # cache, untimed): like with like against the peer's evaluation alone,
    # which has its histories in memory; where the peer runs (PEER_MAX)
    # (the faster of two runs, as for the naive program's sweep: it is short)
    if [ "$MEMSWEEP" = 1 ] && [ "$N" -le "$PEER_MAX" ]; then
        for k in 1 2; do
            copy_db "$DB" "$WORK/two.db" && sweep_stage "two-mem$k-$S" "$WORK/two.db" --protocols bench/two-rules --from-memory
            rm -f "$WORK"/two.db*
            if [[ "$(grep '^from memory: ' "$WORK/two-mem$k-$S.err" | tail -1)" =~ ^from\ memory:\ ([0-9]+)\ of\ ([0-9]+)\ .*\ in\ ([0-9.]+)\ s ]]; then
                R[two-mem$k-$S.hits]=${BASH_REMATCH[1]} R[two-mem$k-$S.warm]=${BASH_REMATCH[3]}
            fi
        done
        b=1
        have "two-mem2-$S.pps" && { ! have "two-mem1-$S.pps" || awk -v a="${R[two-mem2-$S.pps]}" -v b="${R[two-mem1-$S.pps]}" 'BEGIN { exit !(a > b) }'; } && b=2
        for k in patients events secs pps eps rss hits warm; do R[two-mem-$S.$k]=${R[two-mem$b-$S.$k]:-}; done
    fi
    # the bound runs twice (both modes each time) and keeps the faster of each
    # mode: it is short, and a single run is easily disturbed by writeback of
    # the sweeps' databases or by other work on the machine
    if run "bound-$S" "$TOOLS/bound" "$DB" both && run "bound-$S-again" "$TOOLS/bound" "$DB" both; then
        for m in patient scan; do
            o=$(awk -v m="bound $m " 'index($0, m) == 1 { print FILENAME }' "$WORK/bound-$S.out" "$WORK/bound-$S-again.out" |
                while read -r f; do echo "$(kv "$f" "bound $m " events_per_s) $f"; done | sort -n | tail -1 | cut -d' ' -f2)
            R[bound-$S.$m.eps]=$(kv "$o" "bound $m " events_per_s)
            R[bound-$S.$m.secs]=$(kv "$o" "bound $m " seconds)
            R[bound-$S.$m.pps]=$(kv "$o" "bound $m " patients_per_s)
        done
        best=scan
        awk -v a="${R[bound-$S.patient.eps]}" -v b="${R[bound-$S.scan.eps]}" 'BEGIN { exit !(a > b) }' && best=patient
        R[bound-$S.mode]=$best
        R[bound-$S.eps]=${R[bound-$S.$best.eps]}
        R[bound-$S.secs]=${R[bound-$S.$best.secs]}
        R[bound-$S.pps]=${R[bound-$S.$best.pps]}
        R[bound-$S.events]=$(kv "$WORK/bound-$S.out" "bound $best " events)
    fi
    if [ "$MODE" = full ] && [ "$N" -le "$PEER_MAX" ]; then
        if run "peer-$S" node --max-old-space-size=8192 bench/peer/peer.js "$F" "$AT"; then
            for k in patients events seconds patients_per_s events_per_s eval_seconds eval_patients_per_s; do
                R[peer-$S.$k]=$(kv "$WORK/peer-$S.out" "peer " $k)
            done
        fi
    fi
    # the agreement check, once: both rules at a moment when they fire for some patients
    if [ "$N" = "${SIZES[0]}" ]; then
        copy_db "$DB" "$WORK/mid.db" && SWEEP_AT=$MID sweep_stage "two-mid-$S" "$WORK/mid.db" --protocols bench/two-rules
        run "alerts-mid-$S" "$TOOLS/bound" "$WORK/mid.db" alerts
        rm -f "$WORK"/mid.db*
        a=$(kv "$WORK/alerts-mid-$S.out" alerts acute.infusion-due) b=$(kv "$WORK/alerts-mid-$S.out" alerts safety.bp-high)
        R[mid.S]=$S R[mid.due]=${a:-0} R[mid.high]=${b:-0}
        if [ "$MODE" = full ] && run "peer-mid-$S" node --max-old-space-size=8192 bench/peer/peer.js "$F" "$MID"; then
            c=$(kv "$WORK/peer-mid-$S.out" "peer " infusion_due) d=$(kv "$WORK/peer-mid-$S.out" "peer " bp_high)
            R[agree]="at $MID on the $S cohort: regimen opened ${a:-0} acute.infusion-due and ${b:-0} safety.bp-high alerts; the peer fired ${c:-0} and ${d:-0}"
            if [ "${a:-0}" = "${c:-0}" ] && [ "${b:-0}" = "${d:-0}" ]; then R[agree.ok]=yes; else R[agree.ok]=NO; fail agreement "${R[agree]}"; fi
        fi
    fi
    rm -f "$DB" "$DB-wal" "$DB-shm"
    # the naive program on the same cohort: its own ingest into its own
    # table (above, alternated with regimen's), its sweep at AT (the faster
    # of two runs, as for the bound), and its alert counts against regimen's,
    # at AT on every cohort and per rule at MID on the first
    if [ "${R[naive-ingest-$S.rc]:-1}" = 0 ] && [ -f "$NDB" ]; then
        R[naive-ingest-$S.events]=$(kv "$WORK/naive-ingest-$S.out" "naive ingest " events)
        R[naive-ingest-$S.eps]=$(calc "${R[naive-ingest-$S.events]} / ${R[naive-ingest-$S.wall]}")
        R[naive-ingest-$S.bytes]=$(db_bytes "$NDB")
        if naive_sweep "naive-$S" "$NDB" "$AT" && naive_sweep "naive-$S-again" "$NDB" "$AT"; then
            if awk -v a="${R[naive-$S-again.events_per_s]}" -v b="${R[naive-$S.events_per_s]}" 'BEGIN { exit !(a > b) }'; then
                for k in seconds events_per_s patients_per_s; do R[naive-$S.$k]=${R[naive-$S-again.$k]}; done
            fi
            R[naive-$S.rss]=$(awk -v a="${R[naive-$S.rss]}" -v b="${R[naive-$S-again.rss]}" 'BEGIN { print (b > a ? b : a) }')
            if have "two-$S.opened"; then
                n=$(( ${R[naive-$S.infusion_due]:-0} + ${R[naive-$S.bp_high]:-0} ))
                R[agree.at.$S]="regimen's two-rule sweep opened ${R[two-$S.opened]} alerts, the naive program fired $n"
                if [ "$n" = "${R[two-$S.opened]}" ] && [ "${R[naive-$S.patients]}" = "${R[two-$S.patients]}" ]; then
                    R[agree.at.$S.ok]=yes
                else
                    R[agree.at.$S.ok]=NO
                    fail "agreement-naive-$S" "at $AT on the $S cohort: ${R[agree.at.$S]} (patients ${R[naive-$S.patients]} against ${R[two-$S.patients]})"
                fi
            fi
        fi
        if [ "$N" = "${SIZES[0]}" ] && have mid.S && naive_sweep "naive-mid-$S" "$NDB" "$MID"; then
            c=${R[naive-mid-$S.infusion_due]:-0} d=${R[naive-mid-$S.bp_high]:-0}
            R[agree.naive]="at $MID on the $S cohort: regimen opened ${R[mid.due]} acute.infusion-due and ${R[mid.high]} safety.bp-high alerts; the naive program fired $c and $d"
            if [ "${R[mid.due]}" = "$c" ] && [ "${R[mid.high]}" = "$d" ]; then R[agree.naive.ok]=yes; else R[agree.naive.ok]=NO; fail agreement-naive "${R[agree.naive]}"; fi
        fi
    fi
    rm -f "$NDB" "$NDB-journal"
done

# ---- 3: simulate and diff, against the baseline binary ---------------------------------------

# sim_runs WHO BIN: SIM_RUNS runs of `simulate` and of `diff` (a change of one
# parameter of the binary's own shipped ketamine set: infusion_due_after 2 ->
# 3 days) on the SIM_SIZE cohort; keeps the fastest run of each in
# R[simulate-WHO.*] / R[diff-WHO.*] and the range of the wall times.
sim_run() { # WHO BIN ROUND
    local who=$1 b=$2 r=$3 old new
    old=$(cd "$(dirname "$b")/../protocols/ketamine" 2>/dev/null && pwd) || { fail "diff-$who" "no protocols/ketamine beside $b"; return 1; }
    new=$WORK/diff-new-$who
    if [ ! -d "$new" ]; then
        cp -r "$old" "$new" && sed -i 's/infusion_due_after *= days(2)/infusion_due_after = days(3)/' "$new/acute.lua"
    fi
    STDOUT=/dev/null run "simulate-$who-$r" "$b" simulate --events "$SIMF" --until "$AT"
    # diff exits 1 when the two sides differ, which they do here
    run "diff-$who-$r" bash -c '"$@"; [ $? -le 1 ]' diff-run "$b" diff --events "$SIMF" --until "$AT" "$old" "$new"
}
# sim_best WHO KIND: the fastest of the rounds into R[KIND-WHO.wall|eps|range|rss]
sim_best() {
    local who=$1 kind=$2 r w best= lo= hi= rss=
    for r in $(seq "$SIM_RUNS"); do
        [ "${R[$kind-$who-$r.rc]:-1}" = 0 ] || continue
        w=${R[$kind-$who-$r.wall]}
        if [ -z "$best" ] || awk -v a="$w" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$w rss=${R[$kind-$who-$r.rss]}; fi
        if [ -z "$lo" ] || awk -v a="$w" -v b="$lo" 'BEGIN { exit !(a < b) }'; then lo=$w; fi
        if [ -z "$hi" ] || awk -v a="$w" -v b="$hi" 'BEGIN { exit !(a > b) }'; then hi=$w; fi
    done
    [ -n "$best" ] || return 0
    R[$kind-$who.wall]=$best R[$kind-$who.rss]=$rss
    R[$kind-$who.eps]=$(calc "${R[events.$SIM_SIZE]} / $best")
    R[$kind-$who.range]="$lo-$hi s"
}
BASE=${BASELINE_BIN:-}
if [ -n "$BASE" ] && [ ! -x "$BASE" ]; then fail baseline "BASELINE_BIN=$BASE is not an executable"; BASE=; fi
if [ "$STAGES" != serve ]; then
    if SIMF=$(cohort "$SIM_SIZE" "$CLINICS"); then
        R[events.$SIM_SIZE]=${R[events.$SIM_SIZE]:-$(wc -l <"$SIMF")}
        for r in $(seq "$SIM_RUNS"); do # interleaved: the machine's load moves
            sim_run new "$BIN" "$r"
            [ -z "$BASE" ] || sim_run base "$BASE" "$r"
        done
        for k in simulate diff; do sim_best new $k; [ -z "$BASE" ] || sim_best base $k; done
        R[simulate.wall]=${R[simulate-new.wall]:-n/a} R[simulate.rss]=${R[simulate-new.rss]:-n/a}
        R[simulate.line]=$(grep -h '^simulated' "$WORK"/simulate-new-*.err | tail -1)
        if [[ "${R[simulate.line]}" =~ \ ([0-9]+)\ rule\ checks\ \(([0-9.]+)\ per\ patient ]]; then
            R[sim.checks]=${BASH_REMATCH[1]} R[sim.checks_pp]=${BASH_REMATCH[2]}
        fi
    else
        fail simulate "the generator failed"
    fi
fi

# ---- 4: the service ---------------------------------------------------------------------------

# How long a durable 4 KiB write takes on this disk right now: the service's
# acknowledgements wait for one fdatasync each, so its numbers move with this.
fsync_probe() {
    local s
    s=$(dd if=/dev/zero of="$WORK/fsync-probe" bs=4k count=200 oflag=dsync 2>&1 | sed -n 's/.* copied, \([0-9.]*\) s.*/\1/p')
    rm -f "$WORK/fsync-probe"
    [ -n "$s" ] && calc "$s / 200 * 1e6" || echo n/a
}
R[fsync.us]=$(fsync_probe)

SERVE_PID=
PORT=
start_serve() { # NAME CONFIG DB
    local name=$1 cfg=$2 db=$3 i
    rm -f "$db" "$db-wal" "$db-shm"
    "${SERVE_BIN:-$BIN}" serve --config "$cfg" --db "$db" 2>"$WORK/$name.log" &
    SERVE_PID=$!
    for i in $(seq 100); do
        PORT=$(sed -n 's/.*listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' "$WORK/$name.log" | head -1)
        [ -n "$PORT" ] && return 0
        kill -0 "$SERVE_PID" 2>/dev/null || break
        sleep 0.1
    done
    fail "$name" "regimen serve did not start: $(tail -2 "$WORK/$name.log" | tr '\n' ' ')"
    kill "$SERVE_PID" 2>/dev/null
    wait "$SERVE_PID" 2>/dev/null
    SERVE_PID=
    return 1
}
stop_serve() { # NAME
    [ -n "$SERVE_PID" ] || return 0
    kill -TERM "$SERVE_PID" 2>/dev/null
    local rc=0
    wait "$SERVE_PID" || rc=$?
    SERVE_PID=
    [ "$rc" = 0 ] || fail "$1" "regimen serve exited with status $rc"
}
trap '[ -n "$SERVE_PID" ] && kill "$SERVE_PID" 2>/dev/null' EXIT

# Stage 4 runs for this binary and then, with BASELINE_BIN, for the baseline
# (its own protocols beside its bin/): P is the prefix of the figures
# ("" or "base-"), PROTOS the ketamine set it runs.
# (a) HTTP ingest of a cohort with the shipped protocols: whole patient histories
# per request, moved into the past so that every event is evaluated at once.
START=$(date -u -d '-600 days' +%Y-%m-%d)
SERVEF=$WORK/serve-cohort.jsonl
"$TOOLS/gen" "$SERVE_PATIENTS" 1 "$SEED" "$START" >"$SERVEF" || fail gen-serve "the generator failed"
serve_catalog() { # P PROTOS
    local P=$1 k
    cat >"$WORK/${P}catalog.json" <<EOC
{ "listen": "127.0.0.1:0",
  "clinics": { "c0": { "protocols": "$2", "tokens": ["$TOKEN"] } } }
EOC
    if start_serve "${P}serve-catalog" "$WORK/${P}catalog.json" "$WORK/serve-catalog.db"; then
        if run "${P}http-catalog" "$TOOLS/load" ingest --port "$PORT" --token "$TOKEN" --file "$SERVEF" \
            --clients "$HTTP_CLIENTS" --batch 100 --seconds "$HTTP_SECONDS"; then
            for k in events seconds events_per_s ack_p50_ms ack_p99_ms requests; do
                R[${P}http-catalog.$k]=$(kv "$WORK/${P}http-catalog.out" "ingest " $k)
            done
        fi
        # where the service's evaluation time went, per protocol
        if [ -z "$P" ] && run metrics-catalog "$TOOLS/load" metrics --port "$PORT" --token "$TOKEN"; then
            R[catalog.protocols]=$(awk '/^regimen_evaluation_seconds_total\{/ && match($0, /protocol="[^"]*"/) {
                    p = substr($0, RSTART + 10, RLENGTH - 11); s[p] += $NF; t += $NF }
                END { n = 0; for (p in s) o[++n] = p
                      for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (s[o[j]] > s[o[i]]) { x = o[i]; o[i] = o[j]; o[j] = x }
                      for (i = 1; i <= n; i++) printf("%s%s %.2f s (%.0f%%)", (i > 1 ? ", " : ""), o[i], s[o[i]], (t > 0 ? 100 * s[o[i]] / t : 0))
                      if (n) printf "; %.1f s in all", t }' "$WORK/metrics-catalog.out")
            R[catalog.steps]=$(awk '/^regimen_patient_steps_total / { print $2 }' "$WORK/metrics-catalog.out")
        fi
        stop_serve "${P}serve-catalog"
    fi
    rm -f "$WORK"/serve-catalog.db*
}

# (b) the ping protocol: latency at a steady rate on an empty store, live
# ingest (which leaves that many patients in the store), latency again.
cat >"$WORK/ping.json" <<EOC
{ "listen": "127.0.0.1:0",
  "clinics": { "bench": { "protocols": "$ROOT/bench/ping", "tokens": ["$TOKEN"] } } }
EOC
latency_stage() { # NAME
    local name=$1 k
    if run "$name" "$TOOLS/load" latency --port "$PORT" --token "$TOKEN" --clients "$LAT_CLIENTS" \
        --rate "$LAT_RATE" --seconds "$LAT_SECONDS" --timer-ms 1000; then
        for k in achieved_per_s sent echo_p50_ms echo_p99_ms echo_max_ms echo_missing ack_p50_ms \
            ack_p99_ms timer_p50_ms timer_p99_ms timer_max_ms timer_missing behind_max_ms; do
            R[$name.$k]=$(kv "$WORK/$name.out" "latency " $k)
        done
        for k in count le_0.001 le_0.005 le_0.01 le_0.05; do
            R[$name.wake.$k]=$(kv "$WORK/$name.out" "wake_lateness " $k)
        done
    fi
}
# Waits until the service has nothing due (regimen_wake_next_seconds 0, or
# ahead of the clock: while a pass runs it is the moment it woke for):
# R[NAME.seconds] says how long that took; 1 when it never came (600 s), or
# at once when the binary has no such metric (an older baseline: the row is
# then left out, R[NAME.unknown] set).
caught_up() { # NAME
    local t0=$SECONDS w m
    while [ $((SECONDS - t0)) -lt 600 ]; do
        m=$("$TOOLS/load" metrics --port "$PORT" --token "$TOKEN" 2>/dev/null)
        if [ -n "$m" ] && ! grep -q '^regimen_wake_next_seconds ' <<<"$m"; then
            R[$1.unknown]=1
            return 1
        fi
        w=$(awk '$1 == "regimen_wake_next_seconds" { print $2 }' <<<"$m")
        if [ -n "$w" ] && awk -v w="$w" -v n="$(date +%s.%N)" 'BEGIN { exit !(w == 0 || w > n) }'; then
            R[$1.seconds]=$((SECONDS - t0))
            return 0
        fi
        sleep 1
    done
    fail "$1" "the service still had patients due after 600 s"
    return 1
}
serve_ping() { # P
    local P=$1 k
    if start_serve "${P}serve-ping" "$WORK/ping.json" "$WORK/serve-ping.db"; then
        latency_stage "${P}latency-empty"
        if run "${P}http-ping" "$TOOLS/load" ingest --ping --port "$PORT" --token "$TOKEN" \
            --clients "$HTTP_CLIENTS" --batch 100 --events "$PING_EVENTS" --seconds "$PING_SECONDS"; then
            for k in events seconds events_per_s ack_p50_ms ack_p99_ms requests; do
                R[${P}http-ping.$k]=$(kv "$WORK/${P}http-ping.out" "ingest " $k)
            done
        fi
        sleep 1.5 # the pings' timers fall due one second later
        R[${P}store.patients]=$(( ${R[${P}latency-empty.sent]:-0} + ${R[${P}http-ping.events]:-0} ))
        latency_stage "${P}latency-full"
        # the same once the pings' timers have all been evaluated: 100,000
        # patients stored, none of them due (the row above measures the
        # service while it still catches up with the timers the ingest left)
        if caught_up "${P}catchup"; then
            latency_stage "${P}latency-stored"
        fi
        stop_serve "${P}serve-ping"
    fi
    rm -f "$WORK"/serve-ping.db*
}
serve_catalog "" "$ROOT/protocols/ketamine"
serve_ping ""
if [ -n "$BASE" ]; then # the same rows for the baseline binary, right after
    SERVE_BIN=$BASE serve_catalog base- "$(cd "$(dirname "$BASE")/.." && pwd)/protocols/ketamine"
    SERVE_BIN=$BASE serve_ping base-
fi

# ---- the report ----------------------------------------------------------------------------------

ratio() { if have "$1" && have "$2"; then calc "${R[$1]} / ${R[$2]}" "%.2f"; else echo n/a; fi; }
nm() { if [ "$MODE" = smoke ]; then echo "not judged (smoke)"; else echo "**not met**"; fi; } # a figure not measured
yn() {
    if [ "$MODE" = smoke ]; then echo "not judged (smoke)"
    elif awk "BEGIN { exit !($1) }" 2>/dev/null; then echo "**met**"
    else echo "**not met**"; fi
}

LAST=$(short "${SIZES[-1]}")
PEER_S=$LAST
for N in "${SIZES[@]}"; do [ "$N" -le "$PEER_MAX" ] && PEER_S=$(short "$N"); done
REF=$PEER_S # the cohort the ratio targets are judged on
JOBS_NOTE="--jobs not available"
[ "${#ONE[@]}" -gt 0 ] && JOBS_NOTE="default jobs: $(g "sweep-$LAST.jobs")"
CPU=$(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)
MEM=$(awk '/MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)
NODEV=$(command -v node >/dev/null && node --version || echo none)
JREV=$(sed -n 's/.*"version": "\(.*\)".*/\1/p' bench/peer/node_modules/json-rules-engine/package.json 2>/dev/null | head -1)
WHEN=$(date -u +%Y-%m-%dT%H:%M:%SZ)
CMD="make bench$([ "$SIZE" = large ] && echo ' SIZE=large')"
[ "$MODE" = smoke ] && CMD="make bench-smoke"

MD=$OUT/latest.md
SVG=$OUT/latest.svg
if [ "$MODE" = smoke ]; then MD=$OUT/smoke.md SVG=$OUT/smoke.svg; fi
if [ "$STAGES" = serve ]; then MD=$WORK/serve.md SVG=$WORK/serve.svg; fi

{
echo "# regimen benchmark"
echo
echo "\`$CMD\` on $WHEN: $(nproc) cores ($CPU), $MEM, $(uname -sr); SQLite $(pkg-config --modversion sqlite3), Lua $(pkg-config --modversion lua5.4), node $NODEV, json-rules-engine ${JREV:-n/a}."
echo "Cohorts from \`bench/gen.c\` (seed $SEED, $CLINICS clinics, about 30 events per patient); sweeps at \`--at $AT\`, after every event. Other work shares this machine (load average $LOAD0 at the start, $(cut -d' ' -f1-3 /proc/loadavg) at the end; a durable 4 KiB write took $(g fsync.us) µs before the service phase): the service figures in particular move with that load."
echo
echo "## Results"
echo
echo "| stage | cohort | events | seconds | throughput | peak RSS (MiB) |"
echo "|---|---|---:|---:|---|---:|"
for N in "${SIZES[@]}"; do
    S=$(short "$N")
    echo "| 1. bulk ingest (\`regimen ingest\`) | $S | $(num "$(g ingest-$S.stored)") | $(g ingest-$S.wall) | $(num "$(g ingest-$S.eps)") events/s | $(g ingest-$S.rss) |"
    echo "| 1. naive program: ingest (\`bench/naive.c\`, one transaction) | $S | $(num "$(g naive-ingest-$S.events)") | $(g naive-ingest-$S.wall) | $(num "$(g naive-ingest-$S.eps)") events/s | $(g naive-ingest-$S.rss) |"
    if have "sweep1-$S.eps"; then
        echo "| 2. sweep, shipped protocol set (\`regimen sweep --jobs 1\`) | $S | $(num "$(g sweep1-$S.events)") | $(g sweep1-$S.secs) | $(num "$(g sweep1-$S.pps)") patients/s, $(num "$(g sweep1-$S.eps)") events/s | $(g sweep1-$S.rss) |"
    fi
    echo "| 2. sweep, shipped protocol set (\`regimen sweep\`, $JOBS_NOTE) | $S | $(num "$(g sweep-$S.events)") | $(g sweep-$S.secs) | $(num "$(g sweep-$S.pps)") patients/s, $(num "$(g sweep-$S.eps)") events/s | $(g sweep-$S.rss) |"
    echo "| 2. sweep, two rules (\`--protocols bench/two-rules${ONE[*]:+ ${ONE[*]}}\`) | $S | $(num "$(g two-$S.events)") | $(g two-$S.secs) | $(num "$(g two-$S.pps)") patients/s, $(num "$(g two-$S.eps)") events/s | $(g two-$S.rss) |"
    if have "two-mem-$S.pps"; then
        echo "| 2. sweep, two rules, histories from memory (\`--from-memory\`, the faster of two runs: $(g two-mem-$S.hits) histories read into the history cache first, in $(g two-mem-$S.warm) s, not timed; the store still asked for newer events and each patient's state, transitions written) | $S | $(num "$(g two-mem-$S.events)") | $(g two-mem-$S.secs) | $(num "$(g two-mem-$S.pps)") patients/s, $(num "$(g two-mem-$S.eps)") events/s | $(g two-mem-$S.rss) |"
    fi
    echo "| naive program: two-rule sweep (one ordered scan, a Lua table per event) | $S | $(num "$(g naive-$S.events)") | $(g naive-$S.seconds) | $(num "$(g naive-$S.patients_per_s)") patients/s, $(num "$(g naive-$S.events_per_s)") events/s | $(g naive-$S.rss) |"
    echo "| bound, per patient (engine's query) | $S | $(num "$(g bound-$S.events)") | $(g bound-$S.patient.secs) | $(num "$(g bound-$S.patient.pps)") patients/s, $(num "$(g bound-$S.patient.eps)") events/s | $(g bound-$S.rss) |"
    echo "| bound, one ordered scan | $S | $(num "$(g bound-$S.events)") | $(g bound-$S.scan.secs) | $(num "$(g bound-$S.scan.pps)") patients/s, $(num "$(g bound-$S.scan.eps)") events/s | (same process) |"
    if have "peer-$S.patients"; then
        echo "| peer: json-rules-engine, two rules, end to end from the JSON Lines file (parse, group, sort, evaluate) | $S | $(num "$(g peer-$S.events)") | $(g peer-$S.seconds) | $(num "$(g peer-$S.patients_per_s)") patients/s, $(num "$(g peer-$S.events_per_s)") events/s | $(g peer-$S.rss) |"
        echo "| peer: the same run, its evaluation alone (histories already in memory) | $S | $(num "$(g peer-$S.events)") | $(g peer-$S.eval_seconds) | $(num "$(g peer-$S.eval_patients_per_s)") patients/s | (same process) |"
    fi
done
for who in new base; do
    have "simulate-$who.wall" || continue
    b=$BIN; [ $who = base ] && b=$BASE
    lbl="this binary"; [ $who = base ] && lbl="baseline binary \`$BASE\`"
    echo "| 3. \`regimen simulate\`, end to end, $lbl (fastest of $SIM_RUNS; range $(g simulate-$who.range)) | $(short "$SIM_SIZE") | $(num "$(g events.$SIM_SIZE)") | $(g simulate-$who.wall) | $(num "$(g simulate-$who.eps)") events/s | $(g simulate-$who.rss) |"
    echo "| 3. \`regimen diff\` (two simulations: its shipped ketamine set against a change of one parameter), $lbl (fastest of $SIM_RUNS; range $(g diff-$who.range)) | $(short "$SIM_SIZE") | $(num "$(g events.$SIM_SIZE)") | $(g diff-$who.wall) | $(num "$(g diff-$who.eps)") events/s | $(g diff-$who.rss) |"
done
have simulate.line && echo "| 3. simulate's report (this binary) | $(short "$SIM_SIZE") | | | ${R[simulate.line]} | |"
echo "| 4. HTTP ingest, cohort histories, shipped set, $HTTP_CLIENTS clients x ~100 events | $(short "$SERVE_PATIENTS") (1 clinic) | $(num "$(g http-catalog.events)") | $(g http-catalog.seconds) | $(num "$(g http-catalog.events_per_s)") events/s (ack p50 $(g http-catalog.ack_p50_ms) ms, p99 $(g http-catalog.ack_p99_ms) ms) | |"
echo "| 4. HTTP ingest, live pings (bench/ping), $HTTP_CLIENTS clients x 100 events | one new patient each | $(num "$(g http-ping.events)") | $(g http-ping.seconds) | $(num "$(g http-ping.events_per_s)") events/s (ack p50 $(g http-ping.ack_p50_ms) ms, p99 $(g http-ping.ack_p99_ms) ms) | |"
for L in latency-empty latency-full latency-stored; do
    case $L in
    latency-empty) where="empty store" ;;
    latency-full) where="store of $(num "$(g store.patients)") patients, 1.5 s after their ingest (its timers still falling due)" ;;
    *) where="store of $(num "$(g store.patients)") patients, none due (after the catch-up, $(g catchup.seconds) s)" ;;
    esac
    echo "| 4. POST -> transition on the SSE stream, $LAT_CLIENTS clients, 1 event per POST, $where | $LAT_RATE/s asked, $(g $L.achieved_per_s)/s done | $(num "$(g $L.sent)") | | p50 $(g $L.echo_p50_ms) ms, p99 $(g $L.echo_p99_ms) ms, max $(g $L.echo_max_ms) ms (ack p50 $(g $L.ack_p50_ms), p99 $(g $L.ack_p99_ms) ms; missing $(g $L.echo_missing)) | |"
    echo "| 4. time-driven transition after its due time (stream), $where | same run | $(num "$(g $L.sent)") | | p50 $(g $L.timer_p50_ms) ms, p99 $(g $L.timer_p99_ms) ms, max $(g $L.timer_max_ms) ms (missing $(g $L.timer_missing)) | |"
    echo "| 4. \`regimen_wake_lateness_seconds\` (GET /metrics), $where | same run | $(g $L.wake.count) wake-ups | | <= 1 ms: $(g $L.wake.le_0.001), <= 5 ms: $(g $L.wake.le_0.005), <= 10 ms: $(g $L.wake.le_0.01), <= 50 ms: $(g $L.wake.le_0.05) | |"
done
if have base-http-catalog.events_per_s || have base-latency-full.echo_p99_ms; then
    echo "| 4. the same, baseline binary \`$BASE\`: HTTP ingest, cohort histories | $(short "$SERVE_PATIENTS") (1 clinic) | $(num "$(g base-http-catalog.events)") | $(g base-http-catalog.seconds) | $(num "$(g base-http-catalog.events_per_s)") events/s (ack p50 $(g base-http-catalog.ack_p50_ms) ms, p99 $(g base-http-catalog.ack_p99_ms) ms) | |"
    echo "| 4. the same, baseline binary: HTTP ingest, live pings | one new patient each | $(num "$(g base-http-ping.events)") | $(g base-http-ping.seconds) | $(num "$(g base-http-ping.events_per_s)") events/s | |"
    echo "| 4. the same, baseline binary: POST -> transition, store of $(num "$(g base-store.patients)") patients, 1.5 s after their ingest | $LAT_RATE/s asked, $(g base-latency-full.achieved_per_s)/s done | $(num "$(g base-latency-full.sent)") | | p50 $(g base-latency-full.echo_p50_ms) ms, p99 $(g base-latency-full.echo_p99_ms) ms, max $(g base-latency-full.echo_max_ms) ms | |"
    if [ -n "${R[base-catchup.unknown]:-}" ]; then
        echo "| 4. the same, baseline binary: POST -> transition, none due | not run: the binary has no \`regimen_wake_next_seconds\` to tell when its catch-up ended | | | | |"
    else
        echo "| 4. the same, baseline binary: POST -> transition, store of $(num "$(g base-store.patients)") patients, none due (after the catch-up, $(g base-catchup.seconds) s) | $LAT_RATE/s asked, $(g base-latency-stored.achieved_per_s)/s done | $(num "$(g base-latency-stored.sent)") | | p50 $(g base-latency-stored.echo_p50_ms) ms, p99 $(g base-latency-stored.echo_p99_ms) ms, max $(g base-latency-stored.echo_max_ms) ms | |"
    fi
fi
echo
echo "## Against the baselines (same run, same data)"
echo
echo "Ratios of regimen's figure to the baseline's; above 1 regimen is faster. The naive program and the peer run on one core, so the two-rule sweep they are held against does too${ONE[*]:+ (\`${ONE[*]}\`)}."
echo
echo "| cohort | ingest / naive ingest (events/s) | shipped-set sweep, one core / naive two-rule sweep | shipped-set sweep, $JOBS_NOTE / naive | two-rule sweep / naive two-rule sweep | two-rule sweep / peer (patients/s, both end to end) | two-rule sweep from memory / peer's evaluation alone (patients/s, both from memory) | shipped-set sweep / bound (events/s) | bound used | sweep µs per event |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|"
for N in "${SIZES[@]}"; do
    S=$(short "$N")
    us=n/a one=n/a
    have "sweep-$S.eps" && us=$(calc "1e6 / ${R[sweep-$S.eps]}" "%.2f")
    if have "sweep1-$S.eps"; then one=$(ratio sweep1-$S.eps naive-$S.events_per_s); fi
    echo "| $S | $(ratio ingest-$S.eps naive-ingest-$S.eps) | $one | $(ratio sweep-$S.eps naive-$S.events_per_s) | $(ratio two-$S.eps naive-$S.events_per_s) | $(ratio two-$S.pps peer-$S.patients_per_s) | $(ratio two-mem-$S.pps peer-$S.eval_patients_per_s) | $(ratio sweep-$S.eps bound-$S.eps) | $(g bound-$S.mode) | $us |"
done
echo
echo "Bulk ingest and the database it leaves (the naive program: its own table and index, one transaction; the baseline: BASELINE_BIN; the three alternated, each the fastest of $INGEST_RUNS runs)."
echo
echo "| cohort | regimen events/s | naive events/s | regimen / naive | regimen database (bytes) | naive database (bytes) | regimen / naive size | baseline events/s | regimen / baseline | baseline database (bytes) |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
for N in "${SIZES[@]}"; do
    S=$(short "$N")
    echo "| $S | $(num "$(g ingest-$S.eps)") | $(num "$(g naive-ingest-$S.eps)") | $(ratio ingest-$S.eps naive-ingest-$S.eps) | $(num "$(g ingest-$S.bytes)") | $(num "$(g naive-ingest-$S.bytes)") | $(ratio ingest-$S.bytes naive-ingest-$S.bytes) | $(num "$(g base-ingest-$S.eps)") | $(ratio ingest-$S.eps base-ingest-$S.eps) | $(num "$(g base-ingest-$S.bytes)") |"
done
if [ "${#SIZES[@]}" -ge 2 ] && have "sweep-$(short "${SIZES[0]}").secs" && have "sweep-$LAST.secs"; then
    S0=$(short "${SIZES[0]}")
    echo
    echo "Scaling: from $S0 to $LAST patients the events grow $(calc "${R[sweep-$LAST.events]} / ${R[sweep-$S0.events]}" "%.1f")x and the sweep time $(calc "${R[sweep-$LAST.secs]} / ${R[sweep-$S0.secs]}" "%.1f")x (1.0 per event would be exactly linear: $(calc "(${R[sweep-$LAST.secs]} / ${R[sweep-$S0.secs]}) / (${R[sweep-$LAST.events]} / ${R[sweep-$S0.events]})" "%.2f"))."
fi
if have agree.naive || have agree; then
    echo
    echo "Same answers:"
    have agree.naive && echo "- the naive program, ${R[agree.naive]}: agree = ${R[agree.naive.ok]}."
    for N in "${SIZES[@]}"; do
        S=$(short "$N")
        have "agree.at.$S" && echo "- the naive program, at $AT on the $S cohort: ${R[agree.at.$S]}: agree = ${R[agree.at.$S.ok]}."
    done
    have agree && echo "- the peer, ${R[agree]}: agree = ${R[agree.ok]}."
fi
if have catalog.protocols; then
    echo
    echo "Service evaluation time by protocol during the HTTP cohort ingest (regimen_evaluation_seconds_total; $(num "$(g catalog.steps)") patient steps): ${R[catalog.protocols]}."
fi
echo
echo "## Targets"
echo
[ "$MODE" = smoke ] && { echo "(A smoke run: the sizes are far too small to judge the targets; this only shows that every stage runs.)"; echo; }
echo "Issue 11's targets, judged on the $REF cohort (the largest up to 100k) unless the row says otherwise; every ratio is from this run."
echo
echo "| target | measured | |"
echo "|---|---|---|"
# need KEY...: every figure a row judges was measured
need() { local k; for k in "$@"; do have "$k" || return 1; done; }
if need "ingest-$REF.eps" "naive-ingest-$REF.eps"; then
    echo "| bulk ingest >= 1.5x the naive program's ingest and >= 250,000 events/s | $(num "${R[ingest-$REF.eps]}") events/s = $(ratio ingest-$REF.eps naive-ingest-$REF.eps)x the naive $(num "${R[naive-ingest-$REF.eps]}") | $(yn "${R[ingest-$REF.eps]} >= 1.5 * ${R[naive-ingest-$REF.eps]} && ${R[ingest-$REF.eps]} >= 250000") |"
else
    echo "| bulk ingest >= 1.5x the naive program's ingest and >= 250,000 events/s | not measured | $(nm) |"
fi
if need "ingest-$REF.bytes" "naive-ingest-$REF.bytes"; then
    echo "| database after bulk ingest <= 2x the naive program's (issue 27) | $(num "${R[ingest-$REF.bytes]}") bytes = $(ratio ingest-$REF.bytes naive-ingest-$REF.bytes)x the naive $(num "${R[naive-ingest-$REF.bytes]}") | $(yn "${R[ingest-$REF.bytes]} <= 2 * ${R[naive-ingest-$REF.bytes]}") |"
else
    echo "| database after bulk ingest <= 2x the naive program's (issue 27) | not measured | $(nm) |"
fi
SW1=sweep-$REF
[ "${#ONE[@]}" -gt 0 ] && SW1=sweep1-$REF
if need "$SW1.eps" "naive-$REF.events_per_s"; then
    echo "| shipped-set sweep on one core >= 1.0x the naive program's two-rule sweep (events/s) | $(num "${R[$SW1.eps]}") events/s = $(ratio $SW1.eps naive-$REF.events_per_s)x the naive $(num "${R[naive-$REF.events_per_s]}")$([ "${#ONE[@]}" -gt 0 ] || echo " (--jobs not available: the single run)") | $(yn "${R[$SW1.eps]} >= ${R[naive-$REF.events_per_s]}") |"
else
    echo "| shipped-set sweep on one core >= 1.0x the naive program's two-rule sweep | not measured | $(nm) |"
fi
if [ "${#ONE[@]}" -gt 0 ] && need "sweep-$REF.eps" "sweep1-$REF.eps" "naive-$REF.events_per_s"; then
    echo "| ... and more with every core (the default, $(g sweep-$REF.jobs) jobs) | $(num "${R[sweep-$REF.eps]}") events/s = $(ratio sweep-$REF.eps naive-$REF.events_per_s)x the naive, $(ratio sweep-$REF.eps sweep1-$REF.eps)x one core | $(yn "${R[sweep-$REF.eps]} > ${R[sweep1-$REF.eps]}") |"
else
    echo "| ... and more with every core | --jobs not available | $(nm) |"
fi
if need "two-$REF.eps" "naive-$REF.events_per_s"; then
    echo "| two-rule sweep >= 2.0x the naive program (events/s) | $(num "${R[two-$REF.eps]}") events/s = $(ratio two-$REF.eps naive-$REF.events_per_s)x | $(yn "${R[two-$REF.eps]} >= 2 * ${R[naive-$REF.events_per_s]}") |"
else
    echo "| two-rule sweep >= 2.0x the naive program | not measured | $(nm) |"
fi
if need "two-$REF.pps" "peer-$REF.patients_per_s"; then
    echo "| two-rule sweep (from the store on disk) >= 2x json-rules-engine's patients/s, both end to end (the peer from the JSON Lines file) | $(num "${R[two-$REF.pps]}") patients/s = $(ratio two-$REF.pps peer-$REF.patients_per_s)x the peer's $(num "${R[peer-$REF.patients_per_s]}") (from memory against the peer's evaluation alone, both with the histories in memory: $(num "$(g two-mem-$REF.pps)") patients/s = $(ratio two-mem-$REF.pps peer-$REF.eval_patients_per_s)x its $(num "$(g peer-$REF.eval_patients_per_s)"); from disk against it: $(ratio two-$REF.pps peer-$REF.eval_patients_per_s)x) | $(yn "${R[two-$REF.pps]} >= 2 * ${R[peer-$REF.patients_per_s]}") |"
else
    echo "| two-rule sweep >= 2x json-rules-engine's patients/s | not measured$([ "$MODE" = smoke ] && echo " (no peer in a smoke run)") | $(nm) |"
fi
# issue 26: simulate and diff against the baseline binary, rule checks per patient
for k in simulate diff; do
    if need "$k-new.eps" "$k-base.eps"; then
        echo "| \`$k\` events/s >= 5x the baseline binary's (same cohort, same run) | $(num "${R[$k-new.eps]}") events/s against $(num "${R[$k-base.eps]}"): $(ratio $k-new.eps $k-base.eps)x | $(yn "${R[$k-new.eps]} >= 5 * ${R[$k-base.eps]}") |"
    else
        echo "| \`$k\` events/s >= 5x the baseline binary's | not measured (BASELINE_BIN=PATH names the binary to compare with) | $(nm) |"
    fi
done
if have sim.checks_pp; then
    echo "| rule checks per patient in simulate <= 1/4 of 718 (179.5) | ${R[sim.checks_pp]} ($(calc "${R[sim.checks_pp]} / 718" "%.2f") of 718) | $(yn "${R[sim.checks_pp]} <= 179.5") |"
else
    echo "| rule checks per patient in simulate <= 179.5 | not measured | $(nm) |"
fi
if have http-catalog.events_per_s; then
    echo "| HTTP ingest, $HTTP_CLIENTS clients, durable acknowledgement, >= 20,000 events/s | $(num "${R[http-catalog.events_per_s]}") events/s, shipped set (live pings: $(num "$(g http-ping.events_per_s)")) | $(yn "$HTTP_CLIENTS >= 8 && ${R[http-catalog.events_per_s]} >= 20000") |"
else
    echo "| HTTP ingest, 8 clients, durable acknowledgement, >= 20,000 events/s | not measured | $(nm) |"
fi
if need latency-stored.echo_p99_ms latency-stored.achieved_per_s; then
    echo "| POST -> transition on the stream p99 < 5 ms at 1,000 events/s with 100,000 stored patients | $(num "$(g store.patients)") patients, none due: p99 $(g latency-stored.echo_p99_ms) ms at $(g latency-stored.achieved_per_s)/s (1.5 s after their ingest, its timers still due: p99 $(g latency-full.echo_p99_ms) ms at $(g latency-full.achieved_per_s)/s; empty store: p99 $(g latency-empty.echo_p99_ms) ms at $(g latency-empty.achieved_per_s)/s) | $(yn "${R[latency-stored.echo_p99_ms]} < 5 && ${R[latency-stored.achieved_per_s]} >= 0.98 * 1000 && ${R[store.patients]:-0} >= 100000") |"
else
    echo "| POST -> transition on the stream p99 < 5 ms at 1,000 events/s with 100,000 stored patients | not measured | $(nm) |"
fi
if [ "$SIZE" = large ] && [ "${#SIZES[@]}" -ge 2 ]; then
    SL=$(short "${SIZES[-2]}")
    if need "sweep-$SL.rss" "sweep-$LAST.rss" "sweep-$SL.eps" "sweep-$LAST.eps"; then
        echo "| sweep peak RSS flat from $SL to $LAST patients (judged: <= 400 MiB at $LAST) | $(g sweep-$SL.rss) MiB at $SL, $(g sweep-$LAST.rss) MiB at $LAST ($(ratio sweep-$LAST.rss sweep-$SL.rss)x) | $(yn "${R[sweep-$LAST.rss]} <= 400") |"
        echo "| sweep time per event at $LAST within 1.2x of $SL | $(calc "1e6 / ${R[sweep-$SL.eps]}" "%.2f") µs at $SL, $(calc "1e6 / ${R[sweep-$LAST.eps]}" "%.2f") µs at $LAST: $(ratio sweep-$SL.eps sweep-$LAST.eps)x | $(yn "${R[sweep-$SL.eps]} <= 1.2 * ${R[sweep-$LAST.eps]}") |"
    else
        echo "| sweep peak RSS <= 400 MiB at $LAST and time per event within 1.2x of $SL | not measured | $(nm) |"
    fi
else
    echo "| sweep peak RSS flat from 100k to 1M (<= 400 MiB at 1M), time per event at 1M within 1.2x of 100k | not run: \`make bench SIZE=large\` measures it (peak RSS here: $(for N in "${SIZES[@]}"; do S=$(short "$N"); printf '%s %s MiB; ' "$S" "$(g sweep-$S.rss)"; done | sed 's/; $//')) | not judged |"
fi
echo
echo "Earlier targets, kept for comparison:"
echo
echo "| target | measured ($LAST cohort where it applies) | |"
echo "|---|---|---|"
if have "sweep-$LAST.eps" && have "bound-$LAST.eps"; then
    echo "| full-catalog sweep >= 40% of the bound's events/s | $(calc "100 * ${R[sweep-$LAST.eps]} / ${R[bound-$LAST.eps]}" "%.1f")% | $(yn "${R[sweep-$LAST.eps]} >= 0.4 * ${R[bound-$LAST.eps]}") |"
    echo "| full-catalog sweep > 1,000,000 events/s | $(num "${R[sweep-$LAST.eps]}") events/s | $(yn "${R[sweep-$LAST.eps]} > 1000000") |"
else
    echo "| full-catalog sweep >= 40% of the bound and > 1,000,000 events/s | not measured | $(nm) |"
fi
if have latency-empty.echo_p99_ms; then
    echo "| POST -> transition p99 < 5 ms at 1,000 events/s, empty store | p99 $(g latency-empty.echo_p99_ms) ms at $(g latency-empty.achieved_per_s)/s | $(yn "${R[latency-empty.echo_p99_ms]} < 5 && ${R[latency-empty.achieved_per_s]} >= 0.98 * $LAT_RATE") |"
fi
if have latency-empty.timer_p99_ms && have latency-full.timer_p99_ms; then
    share() { calc "100 * ${R[$1.wake.le_0.01]:-0} / (${R[$1.wake.count]:-0} > 0 ? ${R[$1.wake.count]} : 1)" "%.1f"; }
    s1=$(share latency-empty) s2=$(share latency-full)
    echo "| time-driven transition within 10 ms of due at p99 | empty store: stream p99 $(g latency-empty.timer_p99_ms) ms, /metrics $s1% of wake-ups <= 10 ms; $(num "$(g store.patients)") patients: stream p99 $(g latency-full.timer_p99_ms) ms, /metrics $s2% | $(yn "${R[latency-empty.timer_p99_ms]} <= 10 && $s1 >= 99 && ${R[latency-full.timer_p99_ms]} <= 10 && $s2 >= 99") |"
fi
if [ -f bench/profile.md ] && [ "$MODE" = full ]; then
    echo
    cat bench/profile.md
fi
if [ "${#FAILED[@]}" -gt 0 ]; then
    echo
    echo "## Stages that failed"
    echo
    for f in "${FAILED[@]}"; do echo "- $f"; done
fi
echo
echo "How: \`bench/run.sh\` (see its header). The naive program of issue 11 is \`bench/naive.c\` (its sweep: the faster of two runs). The bound is \`bench/bound.c\` in both of its modes; the ratios use the faster one per size (column 'bound used'). The peer is \`bench/peer/peer.js\`; the service phase uses \`bench/load.c\` and \`bench/ping/ping.lua\`. Raw outputs of the run are in \`bench/data/run/\` (not committed)."
} >"$MD"

# ---- the chart: sweep time against cohort size, log-log, with the bound ----------------------------

svg() {
    local pts_full="" pts_two="" pts_bound="" N S
    for N in "${SIZES[@]}"; do
        S=$(short "$N")
        have "sweep-$S.secs" && pts_full="$pts_full $N:${R[sweep-$S.secs]}"
        have "two-$S.secs" && pts_two="$pts_two $N:${R[two-$S.secs]}"
        have "bound-$S.secs" && pts_bound="$pts_bound $N:${R[bound-$S.secs]}"
    done
    awk -v full="$pts_full" -v two="$pts_two" -v bound="$pts_bound" -v when="$WHEN" -v cmd="$CMD" '
    function lg(x) { return log(x) / log(10) }
    function X(n) { return 90 + (lg(n) - x0) / (x1 - x0) * 560 }
    function Y(s) { return 330 - (lg(s) - y0) / (y1 - y0) * 270 }
    function series(spec, color, dash, label, ly,   n, i, a, p, d, pts) {
        n = split(spec, a, " ")
        if (n == 0) return
        d = ""
        for (i = 1; i <= n; i++) {
            split(a[i], p, ":")
            d = d (i == 1 ? "M" : " L") sprintf("%.1f,%.1f", X(p[1]), Y(p[2]))
            pts = pts sprintf("<circle cx=\"%.1f\" cy=\"%.1f\" r=\"4\" fill=\"%s\"/>\n", X(p[1]), Y(p[2]), color)
            pts = pts sprintf("<text x=\"%.1f\" y=\"%.1f\" font-size=\"11\" fill=\"%s\">%s s</text>\n", X(p[1]) + 7, Y(p[2]) - 6, color, p[2])
        }
        printf "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"2\"%s/>\n%s", d, color, dash, pts
        printf "<line x1=\"680\" y1=\"%d\" x2=\"710\" y2=\"%d\" stroke=\"%s\" stroke-width=\"2\"%s/>", ly, ly, color, dash
        printf "<text x=\"716\" y=\"%d\" font-size=\"12\">%s</text>\n", ly + 4, label
    }
    BEGIN {
        all = full " " two " " bound
        m = split(all, a, " "); nmin = 1e18; nmax = 0; smin = 1e18; smax = 0
        for (i = 1; i <= m; i++) { split(a[i], p, ":"); if (p[1] < nmin) nmin = p[1]; if (p[1] > nmax) nmax = p[1]; if (p[2] < smin) smin = p[2]; if (p[2] > smax) smax = p[2] }
        if (nmax == 0) { nmin = 1000; nmax = 100000; smin = 0.01; smax = 10 }
        if (smin <= 0) smin = 0.001
        x0 = int(lg(nmin)) - (lg(nmin) == int(lg(nmin)) ? 0.3 : 0); x1 = lg(nmax) + 0.3
        if (x1 - x0 < 1) x1 = x0 + 1
        y0 = int(lg(smin) + 10) - 10; y1 = int(lg(smax) + 10) - 10 + 1
        printf "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"900\" height=\"400\" viewBox=\"0 0 900 400\" font-family=\"sans-serif\">\n"
        printf "<rect width=\"900\" height=\"400\" fill=\"white\"/>\n"
        printf "<defs><clipPath id=\"plot\"><rect x=\"90\" y=\"60\" width=\"560\" height=\"270\"/></clipPath></defs>\n"
        printf "<text x=\"90\" y=\"28\" font-size=\"15\" font-weight=\"bold\">regimen sweep: time against cohort size (log-log)</text>\n"
        printf "<text x=\"90\" y=\"46\" font-size=\"11\" fill=\"#555\">%s, %s; lower is faster; parallel to the dotted line is linear growth</text>\n", cmd, when
        for (e = y0; e <= y1; e++) {
            printf "<line x1=\"90\" y1=\"%.1f\" x2=\"650\" y2=\"%.1f\" stroke=\"#ddd\"/>", Y(10 ^ e), Y(10 ^ e)
            printf "<text x=\"84\" y=\"%.1f\" font-size=\"11\" text-anchor=\"end\">%s s</text>\n", Y(10 ^ e) + 4, (e >= 0 ? sprintf("%d", 10 ^ e) : sprintf("%g", 10 ^ e))
        }
        for (e = int(x0 + 0.999); e <= x1; e++) {
            printf "<line x1=\"%.1f\" y1=\"60\" x2=\"%.1f\" y2=\"330\" stroke=\"#ddd\"/>", X(10 ^ e), X(10 ^ e)
            printf "<text x=\"%.1f\" y=\"348\" font-size=\"11\" text-anchor=\"middle\">%s</text>\n", X(10 ^ e), (e >= 6 ? sprintf("%dM", 10 ^ (e - 6)) : e >= 3 ? sprintf("%dk", 10 ^ (e - 3)) : sprintf("%d", 10 ^ e))
        }
        printf "<text x=\"370\" y=\"372\" font-size=\"12\" text-anchor=\"middle\">patients (about 30 events each)</text>\n"
        printf "<line x1=\"90\" y1=\"330\" x2=\"650\" y2=\"330\" stroke=\"black\"/><line x1=\"90\" y1=\"60\" x2=\"90\" y2=\"330\" stroke=\"black\"/>\n"
        if (split(full, f, " ") >= 1) {   # the linear guide through the first full-sweep point
            split(f[1], p, ":"); k = p[2] / p[1]
            printf "<path d=\"M%.1f,%.1f L%.1f,%.1f\" stroke=\"#999\" stroke-dasharray=\"2,4\" clip-path=\"url(#plot)\"/>\n", X(10 ^ x0), Y(k * 10 ^ x0), X(10 ^ x1), Y(k * 10 ^ x1)
            printf "<line x1=\"680\" y1=\"165\" x2=\"710\" y2=\"165\" stroke=\"#999\" stroke-dasharray=\"2,4\"/><text x=\"716\" y=\"169\" font-size=\"12\">linear from the first point</text>\n"
        }
        series(full, "#c0392b", "", "sweep, shipped set", 90)
        series(two, "#2471a3", "", "sweep, two rules", 115)
        series(bound, "#27ae60", " stroke-dasharray=\"6,4\"", "bound (read + hand to Lua)", 140)
        printf "</svg>\n"
    }'
}
svg >"$SVG"

cat "$MD"
echo
note "bench: wrote $MD and $SVG"
if [ "${#FAILED[@]}" -gt 0 ]; then
    note "bench: ${#FAILED[@]} stage(s) failed:"
    for f in "${FAILED[@]}"; do note "  $f"; done
    exit 1
fi
exit 0
