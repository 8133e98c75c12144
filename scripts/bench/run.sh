#!/usr/bin/env bash
# Load test on loopback: the demo REST upstream directly, through Gatehouse
# (plain proxy, and the demo config with its policies and access log), and
# through Caddy as a plain reverse proxy, in one run with the same wrk
# settings. Prints requests/s, latency and ratios.
#
#   scripts/bench/run.sh            # 10 s per target, 16 connections
#   DURATION=30s CONNS=64 scripts/bench/run.sh
#
# Needs wrk and caddy (Debian: apt-get install wrk caddy); installs them
# when missing and running as root.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-10s}
CONNS=${CONNS:-16}
THREADS=${THREADS:-2}
URLPATH=${URLPATH:-/product/p-1001}
BASE_PORT=${BASE_PORT:-18700}

need() {
	command -v "$1" >/dev/null && return
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && apt-get install -y -qq "$1" >/dev/null
	else
		echo "bench: $1 is required (apt-get install $1)" >&2
		exit 1
	fi
}
need wrk
need caddy

go build -o bin/gatehouse ./cmd/gatehouse

REST=127.0.0.1:$((BASE_PORT + 1))
DEMO=127.0.0.1:$((BASE_PORT + 2))
ADMIN=127.0.0.1:$((BASE_PORT + 3))
PLAIN=127.0.0.1:$((BASE_PORT + 4))
CADDY=127.0.0.1:$((BASE_PORT + 5))
pids=()
tmp=$(mktemp -d)
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

bin/gatehouse demo --listen "$DEMO" --admin-listen "$ADMIN" --rest-listen "$REST" >"$tmp/demo.out" 2>"$tmp/demo.err" &
pids+=($!)
BENCH_LISTEN=$PLAIN BENCH_UPSTREAM=http://$REST bin/gatehouse serve --config scripts/bench/plain.yaml >/dev/null 2>"$tmp/plain.err" &
pids+=($!)
cat >"$tmp/Caddyfile" <<CADDY
{
	admin off
	auto_https off
}
http://$CADDY {
	reverse_proxy $REST
}
CADDY
XDG_DATA_HOME=$tmp XDG_CONFIG_HOME=$tmp caddy run --config "$tmp/Caddyfile" --adapter caddyfile >/dev/null 2>"$tmp/caddy.err" &
pids+=($!)

wait_up() {
	for _ in $(seq 100); do
		curl -fsS -o /dev/null "http://$1$URLPATH" 2>/dev/null && return
		sleep 0.1
	done
	echo "bench: $1 did not come up" >&2
	cat "$tmp"/*.err >&2
	exit 1
}
for a in "$REST" "$DEMO" "$PLAIN" "$CADDY"; do wait_up "$a"; done

declare -A rps p50 p99
run() {
	local name=$1 addr=$2
	# Warm up connections and caches, then measure.
	wrk -t"$THREADS" -c"$CONNS" -d2s "http://$addr$URLPATH" >/dev/null
	local out
	out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "http://$addr$URLPATH")
	rps[$name]=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
	p50[$name]=$(awk '$1=="50%" {print $2}' <<<"$out")
	p99[$name]=$(awk '$1=="99%" {print $2}' <<<"$out")
	if grep -q 'Non-2xx' <<<"$out"; then
		echo "bench: $name answered non-2xx responses:" >&2
		grep 'Non-2xx' <<<"$out" >&2
	fi
}
run direct "$REST"
run gatehouse-plain "$PLAIN"
run gatehouse-demo "$DEMO"
run caddy "$CADDY"

echo
echo "cores: $(nproc)   wrk: -t$THREADS -c$CONNS -d$DURATION   GET $URLPATH"
printf '%-18s %12s %10s %10s %10s %10s\n' target req/s p50 p99 vs-direct vs-caddy
for n in direct gatehouse-plain gatehouse-demo caddy; do
	printf '%-18s %12s %10s %10s %10s %10s\n' "$n" "${rps[$n]}" "${p50[$n]}" "${p99[$n]}" \
		"$(awk -v a="${rps[$n]}" -v b="${rps[direct]}" 'BEGIN{printf "%.2fx", a/b}')" \
		"$(awk -v a="${rps[$n]}" -v b="${rps[caddy]}" 'BEGIN{printf "%.2fx", a/b}')"
done
