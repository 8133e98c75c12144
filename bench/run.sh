#!/usr/bin/env bash
# Load test on loopback, every target in one run with the same wrk settings,
# interleaved over several rounds (the median round is reported):
#
#   direct           the demo products REST upstream itself
#   gatehouse-plain  Gatehouse as a plain proxy (plain.yaml)
#   gatehouse-jwt    plus jwt + scopes + a local rate limit (jwt.yaml)
#   gatehouse-waf    plus the OWASP CRS WAF at paranoia level 1 (waf.yaml)
#   nginx, caddy,    plain reverse proxies, for reference (Debian's)
#   haproxy
#   direct-soap      the demo SOAP upstream, POSTing a signed message
#   gatehouse-wss    XML firewall + X.509 WS-Security check of it (wss.yaml)
#
# REST targets GET /product/p-1001 with a bearer token (checked only by the
# jwt target, forwarded by the others, so that all requests are alike) and
# Host: $HOST; the
# SOAP targets POST one 3.4 KB message signed by xmlsec1 (bench/mintsoap).
# It prints requests/s, p50 and p99 latency, ratios to the direct upstream,
# to nginx and to the plain proxy, the p99 a proxy adds to its direct
# upstream's, the proxy's CPU time per request and its resident memory;
# then, at a fixed rate (LAT_RATE, default 2000/s), the p50 and p99 each
# REST proxy adds to the direct upstream's (bench/latency).
#
#   bench/run.sh                         # 3 rounds of 5 s, 16 connections
#   ROUNDS=5 DURATION=10s CONNS=64 bench/run.sh
#   BEFORE=/tmp/gatehouse.old bench/run.sh
#       ... adds plain-before and wss-before, the plain and wss targets
#       served by an older build, interleaved with the rest: a change's
#       before and after measured in one run.
#
# Needs wrk, caddy, nginx, haproxy and xmlsec1 (Debian); installs them when missing
# and running as root.
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-5s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-16}
THREADS=${THREADS:-2}
URLPATH=${URLPATH:-/product/p-1001}
# The Host the REST requests carry: a name, as clients send it. A numeric
# Host (127.0.0.1:port) is itself flagged by the CRS (920350, a logged
# warning), which would make the WAF target measure a flagged request.
HOST=${HOST:-api.gatehouse.test}
BASE_PORT=${BASE_PORT:-18700}
# The fixed-rate latency pass after the throughput rounds (bench/latency):
# its rate, and how long it sends to each target. LAT_RATE=0 skips it.
LAT_RATE=${LAT_RATE:-2000}
LAT_DURATION=${LAT_DURATION:-10s}
BEFORE=${BEFORE:-}

need() {
	command -v "$1" >/dev/null && return
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && apt-get install -y -qq "${2:-$1}" >/dev/null
	else
		echo "bench: $1 is required (apt-get install ${2:-$1})" >&2
		exit 1
	fi
}
need wrk
need caddy
need nginx
need haproxy
need xmlsec1

go build -o bin/gatehouse ./cmd/gatehouse

REST=127.0.0.1:$((BASE_PORT + 1))
DEMO=127.0.0.1:$((BASE_PORT + 2))
ADMIN=127.0.0.1:$((BASE_PORT + 3))
PLAIN=127.0.0.1:$((BASE_PORT + 4))
CADDY=127.0.0.1:$((BASE_PORT + 5))
JWT=127.0.0.1:$((BASE_PORT + 6))
WAF=127.0.0.1:$((BASE_PORT + 7))
NGINX=127.0.0.1:$((BASE_PORT + 8))
SOAP=127.0.0.1:$((BASE_PORT + 9))
WSS=127.0.0.1:$((BASE_PORT + 10))
HAPROXY=127.0.0.1:$((BASE_PORT + 11))
PLAIN_BEFORE=127.0.0.1:$((BASE_PORT + 12))
WSS_BEFORE=127.0.0.1:$((BASE_PORT + 13))
pids=()
tmp=$(mktemp -d)
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# The demo process hosts the upstreams; its own gateway is not a target.
bin/gatehouse demo --listen "$DEMO" --admin-listen "$ADMIN" --rest-listen "$REST" --soap-listen "$SOAP" >"$tmp/demo.out" 2>"$tmp/demo.err" &
pids+=($!)
serve() { # name config extra-env...
	local name=$1 cfg=$2 gh=bin/gatehouse
	shift 2
	[[ $name == *-before ]] && gh=$BEFORE
	env "$@" "$gh" serve --config "$cfg" >/dev/null 2>"$tmp/$name.err" &
	pids+=($!)
	proc[$name]=$!
}
declare -A proc
jwt_token=$(go run ./bench/mintjwt -jwks "$tmp/jwks.json")
go run ./bench/mintsoap -dir "$tmp"
serve gatehouse-plain bench/plain.yaml BENCH_LISTEN=$PLAIN BENCH_UPSTREAM=http://$REST
serve gatehouse-jwt bench/jwt.yaml BENCH_LISTEN=$JWT BENCH_UPSTREAM=http://$REST BENCH_JWKS=$tmp/jwks.json
serve gatehouse-waf bench/waf.yaml BENCH_LISTEN=$WAF BENCH_UPSTREAM=http://$REST
serve gatehouse-wss bench/wss.yaml BENCH_LISTEN=$WSS BENCH_UPSTREAM=http://$SOAP BENCH_DIR=$tmp
if [ -n "$BEFORE" ]; then
	serve plain-before bench/plain.yaml BENCH_LISTEN=$PLAIN_BEFORE BENCH_UPSTREAM=http://$REST
	serve wss-before bench/wss.yaml BENCH_LISTEN=$WSS_BEFORE BENCH_UPSTREAM=http://$SOAP BENCH_DIR=$tmp
fi

cat >"$tmp/Caddyfile" <<CADDY
{
	admin off
	auto_https off
}
http://:${CADDY##*:} {
	bind 127.0.0.1
	reverse_proxy $REST
}
CADDY
XDG_DATA_HOME=$tmp XDG_CONFIG_HOME=$tmp caddy run --config "$tmp/Caddyfile" --adapter caddyfile >/dev/null 2>"$tmp/caddy.err" &
pids+=($!)
proc[caddy]=$!

# nginx as a plain reverse proxy with upstream keep-alive, no access log,
# one worker per core (its default, auto), in the foreground.
mkdir -p "$tmp/nginx" && chmod 777 "$tmp/nginx"
cat >"$tmp/nginx.conf" <<NGINX
worker_processes auto;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 4096; }
http {
	access_log off;
	client_body_temp_path $tmp/nginx/body;
	proxy_temp_path $tmp/nginx/proxy;
	fastcgi_temp_path $tmp/nginx/fastcgi;
	uwsgi_temp_path $tmp/nginx/uwsgi;
	scgi_temp_path $tmp/nginx/scgi;
	upstream demo { server $REST; keepalive 64; }
	server {
		listen $NGINX;
		location / {
			proxy_pass http://demo;
			proxy_http_version 1.1;
			proxy_set_header Connection "";
		}
	}
}
NGINX
nginx -c "$tmp/nginx.conf" 2>"$tmp/nginx-start.err" &
pids+=($!)
proc[nginx]=$!

# HAProxy as a plain reverse proxy: its defaults (one thread per core,
# keep-alive on both sides, idle upstream connections reused safely), in
# the foreground, no log.
cat >"$tmp/haproxy.cfg" <<HAPROXY
global
	maxconn 4096
defaults
	mode http
	timeout connect 5s
	timeout client 300s
	timeout server 300s
frontend bench
	bind $HAPROXY
	default_backend demo
backend demo
	server demo $REST
HAPROXY
haproxy -db -f "$tmp/haproxy.cfg" >/dev/null 2>"$tmp/haproxy.err" &
pids+=($!)
proc[haproxy]=$!

targets=(direct gatehouse-plain gatehouse-jwt gatehouse-waf nginx caddy haproxy direct-soap gatehouse-wss)
if [ -n "$BEFORE" ]; then
	targets=(direct gatehouse-plain plain-before gatehouse-jwt gatehouse-waf nginx caddy haproxy direct-soap gatehouse-wss wss-before)
fi
declare -A addr=([direct]=$REST [gatehouse-plain]=$PLAIN [gatehouse-jwt]=$JWT [gatehouse-waf]=$WAF
	[nginx]=$NGINX [caddy]=$CADDY [haproxy]=$HAPROXY [direct-soap]=$SOAP [gatehouse-wss]=$WSS
	[plain-before]=$PLAIN_BEFORE [wss-before]=$WSS_BEFORE)
declare -A base=([gatehouse-wss]=direct-soap [direct-soap]=direct-soap [wss-before]=direct-soap)
soap() { [ "${base[$1]:-}" = direct-soap ]; }
url() { if soap "$1"; then echo "http://${addr[$1]}/soap/products"; else echo "http://${addr[$1]}$URLPATH"; fi; }
# args prints wrk's (and curl's) request arguments of target $1, one per line.
args() {
	if soap "$1"; then printf '%s\n' -s bench/soap.lua; else printf '%s\n' -H "Authorization: Bearer $jwt_token" -H "Host: $HOST"; fi
}

wait_up() {
	local a
	for _ in $(seq 150); do
		if soap "$1"; then
			curl -fsS -o /dev/null -H 'Content-Type: text/xml; charset=utf-8' \
				-H 'SOAPAction: "urn:gatehouse:demo:products/GetProduct"' --data-binary @"$tmp/signed.xml" "$(url "$1")" 2>/dev/null && return
		else
			curl -fsS -o /dev/null -H "Authorization: Bearer $jwt_token" -H "Host: $HOST" "$(url "$1")" 2>/dev/null && return
		fi
		sleep 0.1
	done
	echo "bench: $1 did not come up" >&2
	cat "$tmp"/*.err >&2
	exit 1
}
for n in "${targets[@]}"; do wait_up "$n"; done

# pidtree lists a process and its children (nginx's workers).
pidtree() { echo "$1"; pgrep -P "$1" || true; }
# CPU time (user+system, in clock ticks) a process tree has used so far.
ticks() { local t=0; for p in $(pidtree "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
# Resident memory of a process tree, in MiB.
rss() { local k=0; for p in $(pidtree "$1"); do k=$((k + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done; awk -v k=$k 'BEGIN{printf "%.0f", k/1024}'; }
HZ=$(getconf CLK_TCK)
export BODY_FILE=$tmp/signed.xml

declare -A rps p50 p99 cpu
for n in "${targets[@]}"; do
	mapfile -t a < <(args "$n")
	wrk -t"$THREADS" -c"$CONNS" -d2s "${a[@]}" "$(url "$n")" >/dev/null
done
for round in $(seq "$ROUNDS"); do
	for n in "${targets[@]}"; do
		mapfile -t a < <(args "$n")
		before=0
		[ -n "${proc[$n]:-}" ] && before=$(ticks "${proc[$n]}")
		out=$(wrk -t"$THREADS" -c"$CONNS" -d"$DURATION" --latency "${a[@]}" "$(url "$n")")
		total=$(awk '/requests in/ {print $1}' <<<"$out")
		rps[$n]+="$(awk '/^Requests\/sec/ {print $2}' <<<"$out") "
		p50[$n]+="$(awk '$1=="50%" {print $2}' <<<"$out") "
		p99[$n]+="$(awk '$1=="99%" {print $2}' <<<"$out") "
		if [ -n "${proc[$n]:-}" ]; then
			cpu[$n]+="$(awk -v t="$(($(ticks "${proc[$n]}") - before))" -v hz="$HZ" -v n="$total" 'BEGIN{printf "%.1f", t/hz*1e6/n}') "
		fi
		if grep -q 'Non-2xx' <<<"$out"; then
			echo "bench: $n answered non-2xx responses:" >&2
			grep 'Non-2xx' <<<"$out" >&2
		fi
	done
done

# us converts a wrk latency (120.5us, 1.2ms, 1.01s) to microseconds.
us() { awk '{v=$1; x=v+0; if (v ~ /ms$/) x*=1000; else if (v ~ /[0-9]s$/) x*=1e6; print x}'; }
# median picks the middle of a list of numbers (with units kept, by value).
median() { tr ' ' '\n' | grep -v '^$' | while read -r v; do echo "$(us <<<"$v") $v"; done | sort -n | awk '{a[NR]=$2} END{print a[int((NR+1)/2)]}'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{if (b > 0) printf "%.2fx", a/b; else print "-"}'; }

echo
echo "cores: $(nproc)   wrk: -t$THREADS -c$CONNS -d$DURATION x $ROUNDS rounds (median)   REST: GET $URLPATH   SOAP: POST a signed 3.4 KB GetProduct"
printf '%-16s %10s %9s %9s %9s %9s %9s %10s %13s %8s\n' target req/s p50 p99 vs-direct vs-nginx vs-plain added-p99 proxy-cpu/req rss-MiB
declare -A med
for n in "${targets[@]}"; do med[$n]=$(median <<<"${rps[$n]}"); done
for n in "${targets[@]}"; do
	d=${base[$n]:-direct}
	c="-" r="-" vn="-" vp="-" added="-"
	[ -n "${cpu[$n]:-}" ] && c="$(median <<<"${cpu[$n]}")us"
	[ -n "${proc[$n]:-}" ] && r=$(rss "${proc[$n]}")
	if ! soap "$n"; then
		vn=$(ratio "${med[$n]}" "${med[nginx]}")
		vp=$(ratio "${med[$n]}" "${med[gatehouse-plain]}")
	fi
	if [ "$n" != "$d" ]; then
		added="$(awk -v a="$(median <<<"${p99[$n]}" | us)" -v b="$(median <<<"${p99[$d]}" | us)" 'BEGIN{printf "%.0fus", a-b}')"
	fi
	printf '%-16s %10s %9s %9s %9s %9s %9s %10s %13s %8s\n' "$n" "${med[$n]}" "$(median <<<"${p50[$n]}")" "$(median <<<"${p99[$n]}")" \
		"$(ratio "${med[$n]}" "${med[$d]}")" "$vn" "$vp" "$added" "$c" "$r"
done
echo "all rounds (req/s):"
for n in "${targets[@]}"; do echo "  $n: ${rps[$n]}"; done

# Latency at a fixed rate, well below every REST target's capacity, so the
# percentiles are each proxy's own delay rather than queueing: what a proxy
# adds to the direct upstream's p50 and p99.
if [ "$LAT_RATE" -gt 0 ]; then
	echo
	go run ./bench/latency -rate "$LAT_RATE" -conns "$CONNS" -duration "$LAT_DURATION" -H "Authorization: Bearer $jwt_token" -H "Host: $HOST" \
		"$(url direct)" "$(url gatehouse-plain)" "$(url gatehouse-jwt)" "$(url nginx)" "$(url caddy)" "$(url haproxy)"
fi
