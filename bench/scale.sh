#!/usr/bin/env bash
# Scale cases (issue 23), on loopback, in one run:
#
#   routes   10 / 1k / 10k routes of three policies each: time until the
#            gateway answers (and the CPU time it used by then: on a
#            shared machine the wall clock says little), resident memory, CPU per proxied
#            request (wrk) on one of them; nginx with as many locations
#            and HAProxy with as many map entries beside it. Then the in-process measure (heap held per route),
#            and, with BASE=<git ref>, the same measure of that ref.
#   keys     10 / 10k / 1M API keys in a keys_file: time until the gateway
#            answers, RSS, CPU per authenticated request, and a reload
#            (SIGHUP) with its peak RSS. Then the in-process measure of the
#            previous whole-document loader and the streaming one, side by
#            side (TestScaleKeys).
#   idle     100 / 1k / 10k idle keep-alive connections (HTTP/1.1 and h2c)
#            to the gateway, and HTTP/1.1 to nginx and HAProxy: RSS per
#            connection.
#
#   bench/scale.sh
#   ROUTES="10 1000" KEYS="10 10000" IDLE="100 1000" bench/scale.sh
#   BASE=ab8b604 bench/scale.sh          # also the routes "before" of a ref
#   SKIP=keys bench/scale.sh             # skip a section (routes, keys, idle)
#
# Needs wrk, nginx and haproxy (Debian); installs them when missing and running as
# root. Not part of `make test`: it takes a few minutes (the 1M-key
# "before" alone about a minute on an idle machine).
set -euo pipefail
cd "$(dirname "$0")/.."

ROUTES=${ROUTES:-"10 1000 10000"}
KEYS=${KEYS:-"10 10000 1000000"}
IDLE=${IDLE:-"100 1000 10000"}
DURATION=${DURATION:-3s}
CONNS=${CONNS:-16}
BASE=${BASE:-}
SKIP=${SKIP:-}
BASE_PORT=${BASE_PORT:-18800}

need() {
	command -v "$1" >/dev/null && return
	if [ "$(id -u)" = 0 ]; then
		apt-get update -qq && apt-get install -y -qq "${2:-$1}" >/dev/null
	else
		echo "scale: $1 is required (apt-get install ${2:-$1})" >&2
		exit 1
	fi
}
need wrk
need nginx
need haproxy
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

go build -o bin/gatehouse ./cmd/gatehouse
go build -o bin/ready ./bench/ready

DEMO=127.0.0.1:$((BASE_PORT + 1))
ADMIN=127.0.0.1:$((BASE_PORT + 2))
REST=127.0.0.1:$((BASE_PORT + 3))
SOAP=127.0.0.1:$((BASE_PORT + 4))
GH=127.0.0.1:$((BASE_PORT + 5))
NGINX=127.0.0.1:$((BASE_PORT + 6))
HAPROXY=127.0.0.1:$((BASE_PORT + 7))
tmp=$(mktemp -d)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	[ -n "${basewt:-}" ] && git worktree remove --force "$basewt" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT

bin/gatehouse demo --listen "$DEMO" --admin-listen "$ADMIN" --rest-listen "$REST" --soap-listen "$SOAP" >/dev/null 2>"$tmp/demo.err" &
pids+=($!)

HZ=$(getconf CLK_TCK)
pidtree() { echo "$1"; pgrep -P "$1" || true; }
ticks() { local t=0; for p in $(pidtree "$1"); do t=$((t + $(awk '{print $14 + $15}' "/proc/$p/stat"))); done; echo $t; }
rss() { local k=0; for p in $(pidtree "$1"); do k=$((k + $(awk '/^VmRSS/ {print $2}' "/proc/$p/status"))); done; awk -v k=$k 'BEGIN{printf "%.0f", k/1024}'; }
hwm() { awk '/^VmHWM/ {printf "%.0f", $2/1024}' "/proc/$1/status"; }
now() { date +%s.%N; }
# wait_up URL [curl args]: waits (up to 5 min) until URL answers 200.
wait_up() {
	local url=$1
	shift
	for _ in $(seq 3000); do
		curl -fsS -o /dev/null "$@" "$url" 2>/dev/null && return
		sleep 0.1
	done
	echo "scale: $url did not come up" >&2
	cat "$tmp"/*.err >&2 || true
	exit 1
}
wait_up "http://$REST/product/p-1001"
# cpureq PID URL [wrk args]: wrk for DURATION, prints "rps cpu-µs/req".
cpureq() {
	local pid=$1 url=$2
	shift 2
	wrk -t2 -c"$CONNS" -d1s "$@" "$url" >/dev/null
	local before out total
	before=$(ticks "$pid")
	out=$(wrk -t2 -c"$CONNS" -d"$DURATION" "$@" "$url")
	total=$(awk '/requests in/ {print $1}' <<<"$out")
	if grep -q 'Non-2xx' <<<"$out"; then echo "scale: non-2xx answers from $url" >&2; fi
	awk -v t="$(($(ticks "$pid") - before))" -v hz="$HZ" -v n="$total" -v r="$(awk '/^Requests\/sec/ {print $2}' <<<"$out")" \
		'BEGIN{printf "%8.0f %8.1f", r, t/hz*1e6/n}'
}
# gh CONFIG: starts the gateway, sets ghpid and ready (seconds to first 200).
# The first 200 is awaited by bench/ready (every 2 ms, one process): a
# loop of curl polls every 100 ms and spends CPU the server needs.
gh() {
	local t0 secs
	t0=$(date +%s%N)
	bin/gatehouse serve --config "$1" >/dev/null 2>"$tmp/gh.err" &
	ghpid=$!
	pids+=($ghpid)
	secs=$(bin/ready -since "$t0" -pid $ghpid "${@:2}" "http://$GH/product/p-1001") || { cat "$tmp/gh.err" >&2; exit 1; }
	ready=$(awk -v s="$secs" -v t="$(ticks $ghpid)" -v hz="$HZ" 'BEGIN{printf "%.2f %6.2f", s, t/hz}')
}
stop() { kill "$1" 2>/dev/null || true; wait "$1" 2>/dev/null || true; }
# nginx_conf INCLUDE: an nginx config proxying to the demo, with INCLUDE's
# locations (or one catch-all).
nginx_conf() {
	mkdir -p "$tmp/nginx" && chmod 777 "$tmp/nginx"
	cat >"$tmp/nginx.conf" <<NGINX
worker_processes auto;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/nginx.err;
events { worker_connections 20000; }
http {
	access_log off;
	client_body_temp_path $tmp/nginx/body;
	proxy_temp_path $tmp/nginx/proxy;
	fastcgi_temp_path $tmp/nginx/fastcgi;
	uwsgi_temp_path $tmp/nginx/uwsgi;
	scgi_temp_path $tmp/nginx/scgi;
	keepalive_requests 1000000;
	keepalive_timeout 300s;
	upstream demo { server $REST; keepalive 64; }
	server {
		listen $NGINX;
		$1
	}
}
NGINX
}
start_nginx() {
	local t0
	local secs
	t0=$(date +%s%N)
	nginx -c "$tmp/nginx.conf" 2>"$tmp/nginx-start.err" &
	ngpid=$!
	pids+=($ngpid)
	secs=$(bin/ready -since "$t0" -pid $ngpid "http://$NGINX/product/p-1001") || { cat "$tmp"/nginx*.err >&2; exit 1; }
	ready=$(awk -v s="$secs" -v t="$(ticks $ngpid)" -v hz="$HZ" 'BEGIN{printf "%.2f %6.2f", s, t/hz}')
}
# haproxy_conf [MAP]: an HAProxy config proxying to the demo; with MAP, a
# route table as bench/genscale writes it: the path's longest prefix in
# MAP (a prefix tree) names the route, whose X-Route it sets, as nginx's
# locations and the gateway's routes do; no entry, 404. Each route's
# policies are the same for all, as in the other two: clients from
# 127.0.0.0/8 and 10.0.0.0/8, a body of at most 1 MiB.
haproxy_conf() {
	local routing="default_backend demo"
	if [ -n "${1:-}" ]; then
		routing="http-request deny deny_status 403 unless { src 127.0.0.0/8 10.0.0.0/8 }
	http-request return status 404 unless { path,map_beg($1) -m found }
	http-request deny deny_status 413 if { req.hdr_val(content-length) gt 1048576 }
	http-request set-header X-Route %[path,map_beg($1)]
	default_backend demo"
	fi
	cat >"$tmp/haproxy.cfg" <<HAPROXY
defaults
	mode http
	timeout connect 5s
	timeout client 300s
	timeout server 300s
frontend bench
	bind $HAPROXY
	$routing
backend demo
	server demo $REST
HAPROXY
}
start_haproxy() {
	local t0 secs
	t0=$(date +%s%N)
	haproxy -db -f "$tmp/haproxy.cfg" >/dev/null 2>"$tmp/haproxy.err" &
	hapid=$!
	pids+=($hapid)
	secs=$(bin/ready -since "$t0" -pid $hapid "http://$HAPROXY/product/p-1001") || { cat "$tmp/haproxy.err" >&2; exit 1; }
	ready=$(awk -v s="$secs" -v t="$(ticks $hapid)" -v hz="$HZ" 'BEGIN{printf "%.2f %6.2f", s, t/hz}')
}
skip() { [[ " $SKIP " == *" $1 "* ]]; }

echo "# bench/scale.sh, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"

if ! skip routes; then
	echo
	echo "## routes (three policies each; wrk on one route, $CONNS connections, $DURATION)"
	printf '%-8s %-10s %8s %6s %8s %8s %10s\n' routes target ready-s cpu-s rss-MiB req/s cpu-µs/req
	for n in $ROUTES; do
		go run ./bench/genscale -routes "$n" -listen "$GH" -upstream "http://$REST" -dir "$tmp"
		gh "$tmp/routes.yaml"
		r=$ready
		printf '%-8s %-10s %15s %8s %s\n' "$n" gatehouse "$r" "$(rss $ghpid)" "$(cpureq $ghpid "http://$GH/product/p-1001")"
		stop $ghpid
		nginx_conf "include $tmp/nginx-routes.conf;"
		start_nginx
		printf '%-8s %-10s %15s %8s %s\n' "$n" nginx "$ready" "$(rss $ngpid)" "$(cpureq $ngpid "http://$NGINX/product/p-1001")"
		stop $ngpid
		haproxy_conf "$tmp/haproxy-routes.map"
		start_haproxy
		printf '%-8s %-10s %15s %8s %s\n' "$n" haproxy "$ready" "$(rss $hapid)" "$(cpureq $hapid "http://$HAPROXY/product/p-1001")"
		stop $hapid
	done
	echo
	echo "## routes, in process (heap the gateway holds at rest; TestScaleRoutes)"
	for n in $ROUTES; do
		GATEHOUSE_SCALE_ROUTES=$n go test -count=1 -run '^TestScaleRoutes$' -v ./internal/gateway/ | sed -n 's/.*RESULT /after:  /p'
	done
	if [ -n "$BASE" ]; then
		basewt=$tmp/base
		git worktree add --detach -q "$basewt" "$BASE"
		cp internal/gateway/scale_test.go "$basewt/internal/gateway/"
		for n in $ROUTES; do
			(cd "$basewt" && GATEHOUSE_SCALE_ROUTES=$n go test -count=1 -run '^TestScaleRoutes$' -v ./internal/gateway/ | sed -n "s/.*RESULT /before ($BASE): /p")
		done
	fi
fi

if ! skip keys; then
	echo
	echo "## API keys in a keys_file (wrk with one key, $CONNS connections, $DURATION; reload by SIGHUP)"
	printf '%-8s %8s %6s %8s %8s %10s %9s %8s %12s\n' keys ready-s cpu-s rss-MiB req/s cpu-µs/req reload-s cpu-s reload-peak
	for n in $KEYS; do
		go run ./bench/genscale -keys "$n" -listen "$GH" -upstream "http://$REST" -dir "$tmp"
		gh "$tmp/keys-gateway.yaml" -H "X-API-Key: gh_scale-0"
		r=$ready
		m=$(rss $ghpid)
		c=$(cpureq $ghpid "http://$GH/product/p-1001" -H "X-API-Key: gh_scale-0")
		before=$(grep -c 'config reloaded' "$tmp/gh.err" || true)
		t0=$(now)
		k0=$(ticks $ghpid)
		kill -HUP $ghpid
		for _ in $(seq 6000); do
			[ "$(grep -c 'config reloaded' "$tmp/gh.err" || true)" -gt "$before" ] && break
			sleep 0.05
		done
		rl=$(awk -v a="$t0" -v b="$(now)" -v t="$(($(ticks $ghpid) - k0))" -v hz="$HZ" 'BEGIN{printf "%9.2f %8.2f", b-a, t/hz}')
		printf '%-8s %15s %8s %s %s %12s\n' "$n" "$r" "$m" "$c" "$rl" "$(hwm $ghpid)"
		stop $ghpid
	done
	echo
	echo "## API keys, in process: the previous whole-document loader (before) and the streaming one (after)"
	for n in $KEYS; do
		GATEHOUSE_SCALE_KEYS=$n go test -count=1 -timeout 30m -run '^TestScaleKeys$' -v ./internal/authn/apikey/ | sed -n 's/.*scale_test.go:[0-9]*: //p'
	done
fi

if ! skip idle; then
	echo
	echo "## idle keep-alive connections (RSS per connection after one request on each)"
	cat >"$tmp/idle.yaml" <<YAML
store: {type: memory}
# One client address opens them all: the per-address bound (1024 by
# default) would refuse the rest, and 10k is the listener's default bound.
listeners: [{name: bench, address: "$GH", h2c: true, max_connections: -1, max_connections_per_ip: -1}]
admin: {address: "off"}
access_log: {disabled: true}
routes:
  - name: products
    match: {path_prefix: /product}
    upstream: {url: "http://$REST"}
YAML
	nginx_conf "location / { proxy_pass http://demo; proxy_http_version 1.1; proxy_set_header Connection \"\"; }"
	haproxy_conf
	go build -o "$tmp/idleconns" ./bench/idleconns
	for n in $IDLE; do
		gh "$tmp/idle.yaml"
		echo "gatehouse: $("$tmp/idleconns" -addr "$GH" -path /product/p-1001 -n "$n" -pid $ghpid)"
		stop $ghpid
		gh "$tmp/idle.yaml"
		echo "gatehouse: $("$tmp/idleconns" -addr "$GH" -path /product/p-1001 -n "$n" -pid $ghpid -h2c)"
		stop $ghpid
		start_nginx
		echo "nginx:     $("$tmp/idleconns" -addr "$NGINX" -path /product/p-1001 -n "$n" -pid $ngpid)"
		stop $ngpid
		# HAProxy takes its connection limit from the file descriptor
		# limit (two a connection, client and server side).
		if [ "$n" -gt $((($(ulimit -n) - 200) / 2)) ]; then
			echo "haproxy:   $n connections need $((2 * n)) file descriptors; the limit here is $(ulimit -n)"
		else
			start_haproxy
			echo "haproxy:   $("$tmp/idleconns" -addr "$HAPROXY" -path /product/p-1001 -n "$n" -pid $hapid)"
			stop $hapid
		fi
	done
fi
