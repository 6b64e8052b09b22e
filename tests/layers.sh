#!/bin/sh
# tests/layers.sh - the layers of runtime/ as the build enforces them.
#
# Lowest first: core, store, bindings, engine, present, service, cli
# (docs/design.md "Layers"). A file includes another project header with its
# folder ("store/store.h"), and only from its own layer or one below it; only
# store/'s .c files (the backends) may include a database client's header,
# never a header, and the store's interface (store.h, backend.h) names no
# client's type. Prints every include that breaks a rule, with its file and
# line, and fails if there is one.
cd "$(dirname "$0")/.." || exit 2
rank() {
    case $1 in
    core) echo 0 ;; store) echo 1 ;; bindings) echo 2 ;; engine) echo 3 ;;
    present) echo 4 ;; service) echo 5 ;; cli) echo 6 ;; *) echo 99 ;;
    esac
}
bad=0
for f in runtime/*/*.[ch] bindings/*.[ch]; do
    dir=${f%/*}; layer=${dir##*/}; mine=$(rank "$layer")
    grep -n '^[[:space:]]*#[[:space:]]*include' "$f" | while IFS= read -r line; do
        n=${line%%:*}; inc=${line#*:}
        case $inc in
        *'"'*)
            h=${inc#*\"}; h=${h%%\"*}
            folder=${h%%/*}
            if [ "$folder" = "$h" ] || { [ ! -f "runtime/$h" ] && [ ! -f "$h" ]; }; then
                echo "$f:$n: \"$h\": write a project header with its folder (\"store/store.h\")"
                continue
            fi
            theirs=$(rank "$folder")
            if [ "$theirs" -gt "$mine" ]; then
                echo "$f:$n: \"$h\": $layer/ may not include $folder/ (a higher layer)"
            fi ;;
        *'<sqlite3.h>'* | *'<libpq-fe.h>'*)
            if [ "$layer" != store ]; then
                echo "$f:$n: ${inc#*#include }: only store/ may use a database client"
            elif [ "${f##*.}" = h ]; then
                echo "$f:$n: ${inc#*#include }: a header may not use a database client" \
                    "(only the backends' .c files do)"
            fi ;;
        esac
    done
done >"${TMPDIR:-/tmp}/rg-layers.$$"
grep -nE '(sqlite3|sqlite3_stmt|PGconn|PGresult|pg_result) *\*|<(sqlite3|libpq-fe)\.h>' \
    runtime/store/store.h runtime/store/backend.h |
    sed 's/$/: the store'"'"'s interface names no database client'"'"'s type/' >>"${TMPDIR:-/tmp}/rg-layers.$$"
if [ -s "${TMPDIR:-/tmp}/rg-layers.$$" ]; then
    cat "${TMPDIR:-/tmp}/rg-layers.$$"
    echo "layers: FAILED"
    bad=1
else
    echo "layers: passed, every include keeps to its layer"
fi
rm -f "${TMPDIR:-/tmp}/rg-layers.$$"
exit $bad
