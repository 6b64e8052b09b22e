#!/bin/sh
# Runs every Criterion test binary given as arguments, then prints one closing
# line with the totals ("N passed, N failed"). Exits non-zero if any failed.
#
# Sanitizer reports fail the run even when every assertion passed, with one
# exception: Criterion's runner (the parent process, which runs none of our
# code) leaks one small object when tests run in parallel. A leak report whose
# every frame is in libcriterion or the sanitizer runtime is that, and only
# that is let through; no suppression file hides leaks that pass through our
# code (a suppression would match Criterion's frames under every test).
passed=0; failed=0; status=0
log=$(mktemp)

# Prints the number of leak reports in $1 with a frame outside Criterion.
our_leaks() {
    awk '/ERROR: LeakSanitizer/ { inleak = 1 }
         inleak && /^(Direct|Indirect) leak/ { if (ours) n++; ours = 0; block = 1 }
         inleak && block && /^ *#[0-9]+ / && !/libcriterion\.so|asan_malloc_linux|libsanitizer/ { ours = 1 }
         /^SUMMARY: AddressSanitizer/ { if (ours) n++; ours = 0; inleak = 0; block = 0 }
         END { print n + 0 }' "$1"
}

for t in "$@"; do
    echo "== $t"
    "$t" --jobs 2 >"$log" 2>&1
    rc=$?
    cat "$log"
    bad=0
    if grep -q "ERROR: AddressSanitizer\|runtime error:" "$log"; then bad=1; fi
    if grep -q "ERROR: LeakSanitizer" "$log"; then
        if [ "$(our_leaks "$log")" -gt 0 ]; then bad=1
        else echo "$t: (leak report inside Criterion's runner only: not ours)"; fi
    fi
    if [ "$bad" = 1 ]; then
        echo "$t: sanitizer report (see above)"; status=1; failed=$((failed + 1))
    fi
    line=$(grep 'Synthesis:' "$log" | tail -1)
    if [ -z "$line" ]; then
        echo "$t: no test summary (crashed?)"; status=1; failed=$((failed + 1)); continue
    fi
    p=$(echo "$line" | sed -n 's/.*Passing: \([0-9]*\).*/\1/p')
    f=$(echo "$line" | sed -n 's/.*Failing: \([0-9]*\).*/\1/p')
    c=$(echo "$line" | sed -n 's/.*Crashing: \([0-9]*\).*/\1/p')
    passed=$((passed + p)); failed=$((failed + f))
    # a non-zero exit is a failure unless it is that runner leak alone
    if [ "$rc" != 0 ] && { [ "$f" != 0 ] || [ "${c:-0}" != 0 ] || [ "$bad" = 1 ] ||
        ! grep -q "ERROR: LeakSanitizer" "$log"; }; then
        status=1
    fi
done
rm -f "$log"
[ "$failed" -gt 0 ] && status=1
echo "tests: $passed passed, $failed failed"
exit $status
