#!/usr/bin/env bash
# Load test on loopback: the demo REST upstream directly, through Gatehouse
# (plain proxy; plain proxy plus jwt, scopes and a local rate limit on one
# repeated token), and through Caddy as a plain reverse proxy, in one run
# with the same wrk settings. Prints requests/s, latency and ratios. (The
# demo gateway itself is not a target: its per-client rate limit of 20/s is
# there to be seen, not measured.)
#
#   scripts/bench/run.sh            # 10 s per target, 16 connections
#   DURATION=30s CONNS=64 scripts/bench/run.sh
#
# Needs wrk and caddy (Debian: apt-get install wrk caddy); installs them
# when missing and running as root.
set -euo pipefail
cd "$(dirname "$0")/../.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
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
JWT=127.0.0.1:$((BASE_PORT + 6))
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
demo_pid=$!
BENCH_LISTEN=$PLAIN BENCH_UPSTREAM=http://$REST bin/gatehouse serve --config scripts/bench/plain.yaml >/dev/null 2>"$tmp/plain.err" &
pids+=($!)
plain_pid=$!
jwt_token=$(go run ./scripts/bench/mintjwt -jwks "$tmp/jwks.json")
BENCH_LISTEN=$JWT BENCH_UPSTREAM=http://$REST BENCH_JWKS=$tmp/jwks.json bin/gatehouse serve --config scripts/bench/jwt.yaml >/dev/null 2>"$tmp/jwt.err" &
pids+=($!)
jwt_pid=$!
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
caddy_pid=$!

targets=(direct gatehouse-plain gatehouse-jwt caddy)
declare -A addr=([direct]=$REST [gatehouse-plain]=$PLAIN [gatehouse-jwt]=$JWT [caddy]=$CADDY)
# Every target gets the same request with the bench token. Only the jwt
# target checks it; the others forward it, so the jwt target's difference
# to the plain one is the cost of checking, not of carrying, a token.
declare -A auth=([direct]="Authorization: Bearer $jwt_token" [gatehouse-plain]="Authorization: Bearer $jwt_token"
	[gatehouse-jwt]="Authorization: Bearer $jwt_token" [caddy]="Authorization: Bearer $jwt_token")
# hdr prints the curl/wrk header arguments of target $1, one per line.
hdr() { [ -n "${auth[$1]:-}" ] && printf '%s\n%s\n' -H "${auth[$1]}"; return 0; }

wait_up() {
	local args
	mapfile -t args < <(hdr "$1")
	for _ in $(seq 100); do
		curl -fsS -o /dev/null "${args[@]}" "http://${addr[$1]}$URLPATH" 2>/dev/null && return
		sleep 0.1
	done
	echo "bench: $1 did not come up" >&2
	cat "$tmp"/*.err >&2
	exit 1
}
for n in "${targets[@]}"; do wait_up "$n"; done

# CPU time (user+system, in clock ticks) a process has used so far.
ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
HZ=$(getconf CLK_TCK)

# Each round runs every target once, interleaved, so that drift in the
# machine's load hits all targets alike; the median round is reported.
declare -A rps p50 p99 cpu
# The proxy process whose CPU per request is measured; the demo process
# holds both the upstream and its gateway, so it has no proxy-only figure.
declare -A proc=([gatehouse-plain]=$plain_pid [gatehouse-jwt]=$jwt_pid [caddy]=$caddy_pid)
for n in "${targets[@]}"; do
	mapfile -t args < <(hdr "$n")
	wrk -t"$THREADS" -c"$CONNS" -d2s "${args[@]}" "http://${addr[$n]}$URLPATH" >/dev/null
done
for round in $(seq "$ROUNDS"); do
	for n in "${targets[@]}"; do
		mapfile -t args < <(hdr "$n")
		before=0
		[ -n "${proc[$n]:-}" ] && before=$(ticks "${proc[$n]}")
		out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${args[@]}" "http://${addr[$n]}$URLPATH")
		r=$(awk '/^Requests\/sec/ {print $2}' <<<"$out")
		total=$(awk '/requests in/ {print $1}' <<<"$out")
		rps[$n]+="$r "
		p50[$n]+="$(awk '$1=="50%" {print $2}' <<<"$out") "
		p99[$n]+="$(awk '$1=="99%" {print $2}' <<<"$out") "
		if [ -n "${proc[$n]:-}" ]; then
			cpu[$n]+="$(awk -v t="$(( $(ticks "${proc[$n]}") - before ))" -v hz="$HZ" -v n="$total" 'BEGIN{printf "%.1f", t/hz*1e6/n}') "
		fi
		if grep -q 'Non-2xx' <<<"$out"; then
			echo "bench: $n answered non-2xx responses:" >&2
			grep 'Non-2xx' <<<"$out" >&2
		fi
	done
done

# median picks the middle of a list of numbers (with units kept, by value).
median() { tr ' ' '\n' | grep -v '^$' | awk '{v=$1; u=$1; sub(/[0-9.]+/, "", u); x=v+0; if (u=="ms") x*=1000; if (u=="s") x*=1e6; print x, v}' | sort -n | awk '{a[NR]=$2} END{print a[int((NR+1)/2)]}'; }

echo
echo "cores: $(nproc)   wrk: -t$THREADS -c$CONNS -d$DURATION x $ROUNDS rounds (median)   GET $URLPATH"
printf '%-16s %10s %10s %10s %10s %10s %10s %14s\n' target req/s p50 p99 vs-direct vs-plain vs-caddy proxy-cpu/req
declare -A med
for n in "${targets[@]}"; do med[$n]=$(median <<<"${rps[$n]}"); done
for n in "${targets[@]}"; do
	c="-"
	[ -n "${cpu[$n]:-}" ] && c="$(median <<<"${cpu[$n]}")us"
	printf '%-16s %10s %10s %10s %10s %10s %10s %14s\n' "$n" "${med[$n]}" "$(median <<<"${p50[$n]}")" "$(median <<<"${p99[$n]}")" \
		"$(awk -v a="${med[$n]}" -v b="${med[direct]}" 'BEGIN{printf "%.2fx", a/b}')" \
		"$(awk -v a="${med[$n]}" -v b="${med[gatehouse-plain]}" 'BEGIN{printf "%.2fx", a/b}')" \
		"$(awk -v a="${med[$n]}" -v b="${med[caddy]}" 'BEGIN{printf "%.2fx", a/b}')" "$c"
done
echo "all rounds (req/s):"
for n in "${targets[@]}"; do echo "  $n: ${rps[$n]}"; done
