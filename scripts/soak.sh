#!/usr/bin/env bash
# Soak test (minutes; not part of `make test`): starts `gatehouse demo`,
# holds a mixed REST (the demo's printed tokens) and SOAP (alice's
# UsernameToken digest) load on it for DURATION with its rate limits, WAF
# and WS-Security active, then checks goroutines, RSS, that nothing but
# the expected denials came back, and that gatehouse_requests_total counts
# exactly the requests sent. See docs/testing.md.
#
#   scripts/soak.sh                         # 3 minutes
#   DURATION=1m RATE=300 CONCURRENCY=16 scripts/soak.sh
#
# Exits 0 when every check passes.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-3m}
RATE=${RATE:-200}
CONCURRENCY=${CONCURRENCY:-8}
LISTEN=${LISTEN:-127.0.0.1:18080}
ADMIN=${ADMIN:-127.0.0.1:19901}
GO=${GO:-go}

work=$(mktemp -d)
demo_pid=
cleanup() {
	if [ -n "$demo_pid" ] && kill -0 "$demo_pid" 2>/dev/null; then
		kill "$demo_pid" 2>/dev/null || true
		wait "$demo_pid" 2>/dev/null || true
	fi
	rm -rf "$work"
}
trap cleanup EXIT

"$GO" build -o "$work/gatehouse" ./cmd/gatehouse
"$GO" build -o "$work/soak" ./scripts/soak

# The access log (stderr) is large at this rate and not needed.
"$work/gatehouse" demo --listen "$LISTEN" --admin-listen "$ADMIN" >"$work/banner" 2>/dev/null &
demo_pid=$!

for _ in $(seq 1 150); do
	grep -q '^ *export SALES=' "$work/banner" 2>/dev/null && break
	kill -0 "$demo_pid" 2>/dev/null || { echo "soak.sh: the demo exited:"; cat "$work/banner"; exit 1; }
	sleep 0.2
done
token() { sed -n "s/^ *export $1=//p" "$work/banner"; }
READER=$(token READER)
SALES=$(token SALES)
if [ -z "$READER" ] || [ -z "$SALES" ]; then
	echo "soak.sh: no READER and SALES tokens in the demo's banner:"
	cat "$work/banner"
	exit 1
fi
for _ in $(seq 1 50); do
	curl -fsS "http://$ADMIN/readyz" >/dev/null 2>&1 && break
	sleep 0.2
done

status=0
"$work/soak" -base "http://$LISTEN" -admin "http://$ADMIN" -duration "$DURATION" \
	-rate "$RATE" -concurrency "$CONCURRENCY" -reader "$READER" -sales "$SALES" || status=$?

# The demo must also stop cleanly after the load.
kill -TERM "$demo_pid"
if ! wait "$demo_pid"; then
	echo "FAIL the demo did not exit 0 after SIGTERM"
	status=1
fi
demo_pid=
exit $status
