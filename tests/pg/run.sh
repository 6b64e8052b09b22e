#!/bin/sh
# tests/pg/run.sh TEST_BINARY... - the PostgreSQL suite (make test-postgres):
# starts one throw-away cluster (tests/pg/cluster.sh) for all of it, runs the
# given Criterion binaries with RG_TEST_PG_URL pointing at it (each test uses
# a schema of its own), and stops the cluster on the way out, also when a
# test fails or the run is interrupted.
set -u
here=$(dirname "$0")
dir=$(mktemp -d /tmp/regimen-pg-XXXXXX)
trap '"$here/cluster.sh" stop "$dir"' EXIT
trap 'exit 130' INT TERM
url=$("$here/cluster.sh" start "$dir") || { echo "test-postgres: the cluster did not start" >&2; exit 1; }
echo "test-postgres: a throw-away cluster at $url"
RG_TEST_PG_URL=$url "$here/../run-all.sh" "$@"
