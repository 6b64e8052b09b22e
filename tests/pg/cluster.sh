#!/bin/sh
# tests/pg/cluster.sh - a throw-away PostgreSQL 15 cluster for the tests.
#
#   tests/pg/cluster.sh start DIR   initdb in DIR (its parent directories
#                                   open to the postgres user; DIR created,
#                                   owned by the
#                                   postgres user when run as root: initdb
#                                   refuses root), start the server on a unix
#                                   socket in DIR only (no TCP), create the
#                                   database "regimen", print its URL
#   tests/pg/cluster.sh stop DIR    stop the server and remove DIR
#
# Callers stop it from a trap (and the C tests from their fini), so a failed
# run leaves no server behind. fsync is off: a test cluster needs no
# durability, and the machine is shared.
set -eu
cmd=${1:?usage: cluster.sh start|stop DIR}
dir=${2:?usage: cluster.sh start|stop DIR}
bin=${PG_BIN:-/usr/lib/postgresql/15/bin}
as_pg() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}
case $cmd in
start)
    [ -x "$bin/initdb" ] || { echo "cluster.sh: no PostgreSQL in $bin" >&2; exit 3; }
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    as_pg "$bin/initdb" -D "$dir/data" -E UTF8 --locale=C -A trust -U regimen >"$dir/initdb.log" 2>&1 ||
        { cat "$dir/initdb.log" >&2; exit 1; }
    as_pg "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -s \
        -o "-k $dir -c listen_addresses='' -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
        start >&2 || { cat "$dir/server.log" >&2; exit 1; }
    as_pg "$bin/createdb" -h "$dir" -U regimen regimen
    echo "postgresql:///regimen?host=$dir&user=regimen"
    ;;
stop)
    if [ -f "$dir/data/postmaster.pid" ]; then
        as_pg "$bin/pg_ctl" -D "$dir/data" -m immediate -w -s stop >&2 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: cluster.sh start|stop DIR" >&2
    exit 2
    ;;
esac
