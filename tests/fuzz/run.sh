#!/bin/bash
# tests/fuzz/run.sh - builds and runs the libFuzzer harnesses (tests/fuzz/fuzz_*.c).
#   run.sh fuzz [SECONDS]  build, then run every harness for SECONDS (default
#                          $FUZZ_SECONDS or 60), $FUZZ_JOBS (2) at a time; the
#                          corpus grows in build-fuzz/corpus/<harness>/
#   run.sh smoke           build, replay tests/fuzz/regressions/*/, then run each
#                          harness $FUZZ_SMOKE_SECONDS (10) from the seed corpus
#   run.sh replay          replay the regression inputs only
#   run.sh build           build only
# Exits non-zero if a build fails or any harness crashed; crash inputs are
# written to build-fuzz/artifacts/<harness>/, logs to build-fuzz/logs/.
# Installs clang-14 and libclang-rt-14-dev with apt-get when missing.
set -uo pipefail
cd "$(dirname "$0")/../.."
FZ=${FZ:-build-fuzz}
JOBS=${FUZZ_JOBS:-2}
HARNESSES=(event rfc3339 http protocol)

# Options per harness: input size, dictionary, and what else it needs.
opts() {
    local common="-timeout=10 -print_final_stats=1 -dict=tests/fuzz/dict/$1.dict"
    case $1 in
    event) echo "$common -max_len=4096" ;;
    rfc3339) echo "$common -max_len=64" ;;
    http) echo "$common -max_len=8192" ;;
    protocol) echo "$common -max_len=16384" ;;
    esac
}

find_cc() {
    for cc in ${FUZZ_CC:-} clang clang-14; do
        command -v "$cc" >/dev/null 2>&1 || continue
        ls "$("$cc" -print-resource-dir)"/lib/linux/libclang_rt.fuzzer-*.a >/dev/null 2>&1 &&
            { echo "$cc"; return 0; }
    done
    return 1
}

build() {
    local cc
    if ! cc=$(find_cc); then
        echo "fuzz: installing clang-14 and libclang-rt-14-dev" >&2
        local sudo=""
        [ "$(id -u)" = 0 ] || sudo=sudo
        export DEBIAN_FRONTEND=noninteractive
        $sudo apt-get update -qq && $sudo apt-get install -y -qq --no-install-recommends \
            clang-14 libclang-rt-14-dev >/dev/null || return 1
        cc=$(find_cc) || { echo "fuzz: no clang with libFuzzer found" >&2; return 1; }
    fi
    mkdir -p "$FZ" && echo '*' >"$FZ/.gitignore"
    make --no-print-directory -s -f tests/fuzz/fuzz.mk -j"$JOBS" FZ="$FZ" FUZZ_CC="$cc"
}

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1}
# fuzz_protocol writes its files under TMPDIR; a crash leaves them behind
export TMPDIR=$PWD/$FZ/tmp
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

# run_one HARNESS SECONDS CORPUS: fuzzes from CORPUS plus the seeds and
# writes one summary line to $FZ/logs/HARNESS.sum; status in .rc.
run_one() {
    local h=$1 secs=$2 corpus=$3 log=$FZ/logs/$1.log rc
    mkdir -p "$corpus" "$FZ/artifacts/$h"
    # shellcheck disable=SC2046
    timeout -k 10 $((secs + 120)) "$FZ/fuzz_$h" $(opts "$h") -max_total_time="$secs" \
        -artifact_prefix="$FZ/artifacts/$h/" "$corpus" "tests/fuzz/corpus/$h" >"$log" 2>&1
    rc=$?
    local runs secs_done units
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    secs_done=$(sed -n 's/^Done [0-9]* runs in \([0-9]*\) second.*/\1/p' "$log" | tail -1)
    units=$(find "$corpus" -type f | wc -l)
    if [ "$rc" = 0 ]; then
        printf 'fuzz: %-8s %10s executions in %s s, corpus %s inputs: ok\n' "$h" \
            "${runs:-?}" "${secs_done:-$secs}" "$units" >"$FZ/logs/$h.sum"
    else
        {
            printf 'fuzz: %-8s %10s executions: FAILED (exit %s), log %s\n' "$h" "${runs:-?}" \
                "$rc" "$log"
            grep -E '^(==[0-9]+==ERROR|SUMMARY|fuzz_|.*check failed|artifact_prefix)' "$log" |
                head -5 | sed 's/^/    /'
        } >"$FZ/logs/$h.sum"
    fi
    echo "$rc" >"$FZ/logs/$h.rc"
}

# run_all SECONDS CORPUS_ROOT: every harness, JOBS at a time.
run_all() {
    local secs=$1 root=$2 fail=0 h
    mkdir -p "$FZ/logs"
    for h in "${HARNESSES[@]}"; do
        rm -f "$FZ/logs/$h.sum" "$FZ/logs/$h.rc"
        while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do wait -n; done
        run_one "$h" "$secs" "$root/$h" &
    done
    wait
    for h in "${HARNESSES[@]}"; do
        cat "$FZ/logs/$h.sum"
        [ "$(cat "$FZ/logs/$h.rc")" = 0 ] || fail=1
    done
    return $fail
}

# Every file under tests/fuzz/regressions/<harness>/ (but *.md) must run
# without a crash; each runs on its own, so that every failing one is named.
replay() {
    local fail=0 h f n bad log
    for h in "${HARNESSES[@]}"; do
        n=0 bad=0
        log=$FZ/logs/$h.replay.log
        : >"$log"
        while IFS= read -r f; do
            n=$((n + 1))
            # shellcheck disable=SC2046
            if ! timeout -k 5 60 "$FZ/fuzz_$h" $(opts "$h") "$f" >>"$log" 2>&1; then
                bad=$((bad + 1))
                echo "fuzz: $h: CRASH replaying $f"
            fi
        done < <(find "tests/fuzz/regressions/$h" -type f ! -name '*.md' 2>/dev/null | sort)
        [ "$n" -gt 0 ] || continue
        if [ "$bad" = 0 ]; then
            printf 'fuzz: %-8s %3d regression inputs: ok\n' "$h" "$n"
        else
            printf 'fuzz: %-8s %3d regression inputs: %d FAILED, log %s\n' "$h" "$n" "$bad" "$log"
            fail=1
        fi
    done
    return $fail
}

mode=${1:-smoke}
rm -rf "$TMPDIR" && mkdir -p "$TMPDIR"
case $mode in
build) build ;;
replay)
    build || exit 1
    mkdir -p "$FZ/logs"
    replay
    ;;
fuzz)
    build || exit 1
    run_all "${2:-${FUZZ_SECONDS:-60}}" "$FZ/corpus"
    ;;
smoke)
    start=$SECONDS
    build || exit 1
    mkdir -p "$FZ/logs"
    replay
    r1=$?
    rm -rf "$FZ/smoke"
    run_all "${FUZZ_SMOKE_SECONDS:-10}" "$FZ/smoke"
    r2=$?
    status=passed
    [ $r1 = 0 ] && [ $r2 = 0 ] || status=FAILED
    echo "fuzz-smoke: $status in $((SECONDS - start)) s"
    [ "$status" = passed ]
    ;;
*)
    echo "usage: $0 fuzz [SECONDS] | smoke | replay | build" >&2
    exit 2
    ;;
esac
