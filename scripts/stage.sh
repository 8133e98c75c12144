#!/usr/bin/env bash
# stage.sh NAME COMMAND...: runs COMMAND as one stage of `make test` or
# `make check` and prints how long it took, whether it passed or failed,
# so that a slow CI run shows which stage was slow.
set -uo pipefail
name=$1
shift
start=$(date +%s)
echo "== stage $name: $*"
"$@"
rc=$?
end=$(date +%s)
status=ok
[ "$rc" -eq 0 ] || status="FAILED (exit $rc)"
echo "== stage $name: $status in $((end - start)) s"
exit "$rc"
