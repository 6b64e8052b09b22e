#!/bin/sh
# The contracts integrators and editors read, checked by make test after the
# Criterion tests: the HTTP API against docs/openapi.yaml (check.js, with the
# validators pinned in package-lock.json and installed by npm ci), /metrics
# with promtool, the protocols with luacheck (.luacheckrc: the sandbox's
# globals), regimen(1) with groff, help/--version, `make install` into a
# temporary PREFIX, and examples/regimen.service with systemd-analyze.
# Prints one line per step and "contract checks: N passed, N failed"; exits
# non-zero if any failed.
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${REGIMEN_BIN:-$root/build/regimen}
passed=0; failed=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
ok() { echo "contract: $1: passed"; passed=$((passed + 1)); }
bad() { echo "contract: $1: FAILED"; [ -f "$tmp/out" ] && sed 's/^/    /' "$tmp/out" | tail -40; failed=$((failed + 1)); }
step() { name=$1; shift; if "$@" >"$tmp/out" 2>&1; then ok "$name"; else bad "$name"; fi; }

# npm ci again only when the lock file changed since the last install
deps() {
    cd "$root/tests/contract" || return 1
    sum=$(sha256sum package-lock.json | cut -d' ' -f1)
    [ "$(cat node_modules/.lock-sha256 2>/dev/null)" = "$sum" ] && return 0
    npm ci --no-audit --no-fund --loglevel=error && echo "$sum" >node_modules/.lock-sha256
}
step "npm ci (tests/contract/package-lock.json)" deps
step "docs/openapi.yaml valid, every endpoint's real answers match it, promtool check metrics" \
    node "$root/tests/contract/check.js" "$BIN"

lint() {
    cd "$root" && luacheck --no-color -q protocols examples || return 1
    # the config knows the sandbox: what it lacks is flagged
    printf 'local x = io.open("f")\nlocal y = math.random()\nlocal z = os.time()\nreturn _G, x, y, z\n' >"$tmp/bad.lua"
    n=$(luacheck --no-color --formatter plain "$tmp/bad.lua" | grep -c 'accessing undefined variable\|accessing undefined field')
    [ "$n" = 4 ] || { echo "luacheck should flag io, math.random, os and _G (flagged $n)"; return 1; }
}
step "luacheck protocols examples (sandbox globals)" lint

# the annotations name every history method and module function the C
# registers (bindings/history.c, bindings/regimen.c), and the history fields
annotations() {
    m=$root/protocols/meta/regimen.lua
    head -1 "$m" | grep -qx -- '---@meta regimen' || { echo "$m: no ---@meta regimen"; return 1; }
    for f in $(sed -n '/static const luaL_Reg methods\[\]/,/NULL, NULL/p' "$root/bindings/history.c" |
               grep -o '{"[a-z_]*"' | tr -d '{"'); do
        grep -q "^function History:$f(" "$m" || { echo "$m: history method $f is not annotated"; return 1; }
    done
    for f in $(sed -n '/rg_open_regimen/,/NULL, NULL/p' "$root/bindings/regimen.c" |
               grep -o '{"[a-z_]*"' | tr -d '{"'); do
        grep -q "^function R\.$f(" "$m" || { echo "$m: R.$f is not annotated"; return 1; }
    done
    for f in now patient clinic; do
        grep -q "^---@field $f " "$m" || { echo "$m: h.$f is not annotated"; return 1; }
    done
    grep -q 'protocols/meta/regimen.lua' "$root/docs/protocols.md" || { echo "docs/protocols.md does not name it"; return 1; }
}
step "LuaLS annotations cover the regimen module and the history" annotations

manpage() {
    w=$(groff -man -Tutf8 -ww -z "$root/docs/regimen.1" 2>&1)
    [ -z "$w" ] || { echo "$w"; return 1; }
    groff -man -Tutf8 -P-cbu "$root/docs/regimen.1" | grep -q 'regimen help COMMAND'
}
step "regimen(1) renders without warnings (groff -man -ww)" manpage

helps() {
    "$BIN" --version | grep -Eq '^regimen [0-9]+\.[0-9]+\.[0-9]+$' || return 1
    "$BIN" help sweep | grep -q -- '--jobs N' || return 1
    "$BIN" help serve | grep -q 'usage: regimen serve' || return 1
    "$BIN" help check | grep -q 'usage: regimen check' || return 1
    "$BIN" help nosuch 2>&1; [ $? = 2 ]
}
step "regimen --version, regimen help COMMAND" helps

inst() {
    b=$(dirname "$BIN"); b=${b#"$root"/}
    ${MAKE:-make} -s -C "$root" install B="$b" PREFIX="$tmp/prefix" || return 1
    p=$tmp/prefix
    [ -x "$p/bin/regimen" ] && [ -f "$p/share/man/man1/regimen.1" ] &&
        [ -f "$p/share/regimen/protocols/meta/regimen.lua" ] || { echo "files missing under $p"; return 1; }
    # from a directory without protocols/, with no REGIMEN_PROTOCOLS
    mkdir -p "$tmp/elsewhere" && cd "$tmp/elsewhere" || return 1
    env -u REGIMEN_PROTOCOLS "$p/bin/regimen" check | tee "$tmp/check.out" || return 1
    grep -q "$p/share/regimen/protocols" "$tmp/check.out" ||
        { echo "the installed binary did not load PREFIX/share/regimen/protocols"; return 1; }
    cp -R "$root/examples/clinics/north" north &&
        env -u REGIMEN_PROTOCOLS "$p/bin/regimen" check north || return 1
    # include = { "ketamine", "esketamine" }: both shipped sets from PREFIX
    cp -R "$root/examples/clinics/west" west &&
        env -u REGIMEN_PROTOCOLS "$p/bin/regimen" check west >"$tmp/west.out" || return 1
    grep -q "$p/share/regimen/protocols/esketamine/session.lua" "$tmp/west.out" ||
        { echo "the installed esketamine set was not loaded for west"; return 1; }
    ! command -v man >/dev/null || MANPATH="$p/share/man" man -P cat regimen 2>/dev/null | grep -q 'REGIMEN(1)'
}
step "make install PREFIX=tmp: binary, man page, protocols found by the installed binary" inst

unit() {
    u=$root/examples/regimen.service
    for d in NoNewPrivileges=yes ProtectSystem=strict PrivateTmp=yes ReadWritePaths=/var/lib/regimen; do
        grep -qx "$d" "$u" || { echo "$u lacks $d"; return 1; }
    done
    command -v systemd-analyze >/dev/null || { echo "(systemd-analyze not available: directives only)"; return 0; }
    sed "s#/usr/local/bin/regimen#$BIN#" "$u" >"$tmp/regimen.service"
    out=$(systemd-analyze verify --man=no "$tmp/regimen.service" 2>&1) || { echo "$out"; return 1; }
    [ -z "$out" ] || { echo "$out"; return 1; }
}
step "examples/regimen.service (systemd-analyze verify)" unit

echo "contract checks: $passed passed, $failed failed"
[ "$failed" = 0 ]
