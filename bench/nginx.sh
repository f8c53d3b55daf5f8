#!/bin/bash
# nginx (one worker), every request ending with the server's close (HTTP/1.0 / Connection: close):
#   bare          lingering_close off
#   native        nginx's own lingering close (lingering_close always)
#   shim warn     lingering_close off, under a graceful policy, log level warn
#   shim info     the same at the default level (info: JSON lines to a file)
# Throughput: wrk -t2 -c32 for 2 s per run, the four side by side in 5 rounds (the order turning),
# the medians of the rounds and of the ratios taken within each round. CPU per
# request: nginx's processes (master and worker, all threads), utime + stime from /proc/PID/stat
# over the run, divided by wrk's request count. System calls per request: strace -f -c around
# nginx serving ab -n 2000 -c 4, less the same start and stop without requests.
# Skipped (and says so) when nginx, wrk or ab is not installed: make bench runs anywhere.
set -u
: "${BUILD:=build}"
PATH=$PATH:/usr/sbin:/sbin
for p in nginx wrk ab; do
	command -v "$p" >/dev/null || { echo "nginx: not measured: $p is not installed"; exit 0; }
done
LIB=$(realpath "$BUILD/libclosepolicy.so")
tmp=$(mktemp -d /tmp/cp-bench-nginx-XXXXXX)
chmod 755 "$tmp"
pid=
cleanup() {
	[ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
mkdir -p "$tmp/www"
head -c 1024 /dev/zero | tr '\0' x >"$tmp/www/index.html"
chmod -R a+rX "$tmp/www"
printf 'version: 1\nlog: {level: warn}\nrules:\n  - {match: {role: server}, action: graceful}\n' >"$tmp/warn.yaml"
printf 'version: 1\nlog: {format: json}\nrules:\n  - {match: {role: server}, action: graceful}\n' >"$tmp/info.yaml"
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')

conf() { # lingering_close value
	cat >"$tmp/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $tmp/nginx.pid;
error_log $tmp/error.log;
$([ "$(id -u)" = 0 ] && echo "user root;")
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $tmp/body;
	proxy_temp_path $tmp/proxy;
	fastcgi_temp_path $tmp/fastcgi;
	uwsgi_temp_path $tmp/uwsgi;
	scgi_temp_path $tmp/scgi;
	lingering_close $1;
	server { listen 127.0.0.1:$port; root $tmp/www; }
}
EOF
}

wait_listen() {
	for _ in $(seq 200); do
		[ -n "$(ss -Hltn "sport = :$port" 2>/dev/null)" ] && return 0
		sleep 0.05
	done
	echo "nginx: not listening" >&2
	return 1
}

# start CONFIG [strace-output]: nginx in the background, $pid set (strace's when traced)
start() {
	local cfg=$1 trace=${2:-} pre="" pol=/dev/null
	case $cfg in
	bare) conf off ;;
	native) conf always ;;
	warn | info)
		conf off
		pre=$LIB
		pol=$tmp/$cfg.yaml
		;;
	esac
	rm -f "$tmp/log"
	if [ -n "$trace" ]; then # strace itself runs bare; -E gives nginx the object
		env -u LD_PRELOAD CLOSEPOLICY_FILE="$pol" CLOSEPOLICY_LOG="$tmp/log" \
			strace -f -qq -c -o "$trace" -E "LD_PRELOAD=$pre" \
			nginx -p "$tmp" -e "$tmp/error.log" -c "$tmp/nginx.conf" &
	else
		env LD_PRELOAD="$pre" CLOSEPOLICY_FILE="$pol" CLOSEPOLICY_LOG="$tmp/log" \
			nginx -p "$tmp" -e "$tmp/error.log" -c "$tmp/nginx.conf" &
	fi
	pid=$!
	wait_listen
}

stop() {
	local master
	master=$(cat "$tmp/nginx.pid" 2>/dev/null)
	[ -n "$master" ] && kill -QUIT "$master"
	wait "$pid" 2>/dev/null
	pid=
}

cpu_ticks() { # master and its children
	local master total=0 p
	master=$(cat "$tmp/nginx.pid")
	for p in $master $(pgrep -P "$master"); do
		total=$((total + $(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$p/stat")))
	done
	echo "$total"
}

median() { sort -n | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
calc() { awk "BEGIN {print $1}"; }

configs=(bare native warn info)
ROUNDS=5
declare -A rps cpu
calls=()
hz=$(getconf CLK_TCK)
# Rounds of the four side by side, the order turning each round; a ratio is taken within its round
# (this machine's speed drifts between rounds) and the median of the rounds' ratios is printed.
for round in $(seq 0 $((ROUNDS - 1))); do
	for k in 0 1 2 3; do
		cfg=${configs[$(((round + k) % 4))]}
		start "$cfg" || exit 1
		c0=$(cpu_ticks)
		out=$(wrk -t2 -c32 -d2s -H 'Connection: close' "http://127.0.0.1:$port/index.html" 2>&1)
		c1=$(cpu_ticks)
		stop
		reqs=$(printf '%s\n' "$out" | awk '/requests in/ {print $1}')
		rps[$cfg,$round]=$(printf '%s\n' "$out" | awk '/Requests\/sec/ {print $2}')
		cpu[$cfg,$round]=$(awk -v t=$((c1 - c0)) -v n="$reqs" -v hz="$hz" 'BEGIN {printf "%.2f", t * 1e6 / hz / n}')
	done
done
# med KIND CFG [BASE]: the median over rounds of KIND (rps or cpu) of CFG, or of its ratio to BASE
med() {
	local -n arr=$1
	local r
	for r in $(seq 0 $((ROUNDS - 1))); do
		if [ -n "${3:-}" ]; then calc "${arr[$2,$r]} / ${arr[$3,$r]}"; else echo "${arr[$2,$r]}"; fi
	done | median
}
printf 'nginx Connection: close (wrk -t2 -c32, medians of %d rounds): bare %.0f req/s, native lingering %.0f (%.3fx bare), graceful warn %.0f (%.3fx bare, %.3fx native), graceful info %.0f (%.3fx bare, %.3fx native)\n' \
	"$ROUNDS" "$(med rps bare)" "$(med rps native)" "$(med rps native bare)" \
	"$(med rps warn)" "$(med rps warn bare)" "$(med rps warn native)" \
	"$(med rps info)" "$(med rps info bare)" "$(med rps info native)"
printf 'nginx CPU per request (master + worker): bare %.1f us, native lingering %.1f us (%.2fx), graceful warn %.1f us (%.2fx bare, %.2fx native), graceful info %.1f us (%.2fx bare, %.2fx native)\n' \
	"$(med cpu bare)" "$(med cpu native)" "$(med cpu native bare)" \
	"$(med cpu warn)" "$(med cpu warn bare)" "$(med cpu warn native)" \
	"$(med cpu info)" "$(med cpu info bare)" "$(med cpu info native)"

if ! command -v strace >/dev/null; then
	echo "nginx: system calls not counted: strace is not installed"
	exit 0
fi
N=2000
total() { awk '/ total$/ {print $4}' "$1"; }
line="nginx system calls per request (ab -n $N -c 4, HTTP/1.0; strace -f -c):"
for cfg in "${configs[@]}"; do
	start "$cfg" "$tmp/idle.out" || exit 1
	stop
	start "$cfg" "$tmp/load.out" || exit 1
	ab -q -n "$N" -c 4 "http://127.0.0.1:$port/index.html" >/dev/null 2>&1 || echo "nginx: ab failed ($cfg)"
	stop
	per=$(awk -v a="$(total "$tmp/load.out")" -v b="$(total "$tmp/idle.out")" -v n=$N 'BEGIN {printf "%.2f", (a - b) / n}')
	calls[${#calls[@]}]=$per
done
printf '%s bare %s, native lingering %s (+%.2f), graceful warn %s (+%.2f), graceful info %s (+%.2f)\n' "$line" \
	"${calls[0]}" "${calls[1]}" "$(calc "${calls[1]} - ${calls[0]}")" \
	"${calls[2]}" "$(calc "${calls[2]} - ${calls[0]}")" "${calls[3]}" "$(calc "${calls[3]} - ${calls[0]}")"
