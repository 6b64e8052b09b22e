#!/bin/sh
# Runs every Criterion test binary given as arguments, then prints one closing
# line with the totals ("N passed, N failed"). Exits non-zero if any failed.
passed=0; failed=0; status=0
log=$(mktemp)
for t in "$@"; do
    echo "== $t"
    if ! "$t" --jobs 2 >"$log" 2>&1; then status=1; fi
    cat "$log"
    # sanitizer reports fail the run even when every assertion passed
    if grep -q "ERROR: LeakSanitizer\|ERROR: AddressSanitizer\|runtime error:" "$log"; then
        echo "$t: sanitizer report (see above)"; status=1; failed=$((failed + 1))
    fi
    line=$(grep 'Synthesis:' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "$t: no test summary (crashed?)"; status=1; failed=$((failed + 1)); continue
    fi
    p=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    f=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
    passed=$((passed + p)); failed=$((failed + f))
done
rm -f "$log"
[ "$failed" -gt 0 ] && status=1
echo "tests: $passed passed, $failed failed"
exit $status
