#!/bin/sh
# The staff worklist in a real browser, run by make test after the contract
# checks: npm ci of puppeteer-core (pinned in package-lock.json; the browser
# is Debian's chromium, installed by .ci/install-deps, never a download),
# then worklist.js against the real binary. Screenshots: $OUT/worklist-*.png.
# Prints worklist.js's checks and "browser checks: N passed, N failed".
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${REGIMEN_BIN:-$root/build/regimen}
OUT=${BROWSER_OUT:-$(dirname "$BIN")}
cd "$root/tests/browser" || exit 1
sum=$(sha256sum package-lock.json | cut -d' ' -f1)
if [ "$(cat node_modules/.lock-sha256 2>/dev/null)" != "$sum" ]; then
    # puppeteer-core downloads no browser; PUPPETEER_SKIP_DOWNLOAD for the full package's habit
    PUPPETEER_SKIP_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error >npm.log 2>&1 ||
        { cat npm.log; echo "browser checks: 0 passed, 1 failed (npm ci)"; exit 1; }
    echo "$sum" >node_modules/.lock-sha256
    rm -f npm.log
fi
exec nice -n 10 node worklist.js "$BIN" "$OUT"
