#!/bin/bash
# Real, unmodified programs under a graceful policy, as a user runs them: nginx (one worker,
# lingering_close off), busybox httpd, socat TCP-LISTEN with fork, python3 -m http.server, and
# curl (itself under the shim too). Each serves a 1 MB file to a few clients over 127.0.0.1;
# every body must arrive whole (cmp), no client may see a reset (curl's exit status), the server's
# log must hold a `drain` with outcome eof for each connection it closed, and each server must
# end with the status it has without the shim. A program that is missing is a failure.
# Synchronisation is by polling (a listening port, a log line) with a bounded wait.
set -u
: "${BUILD:=build}"
LIB=$(realpath "$BUILD/libclosepolicy.so") || { echo "real: $BUILD/libclosepolicy.so is missing"; exit 1; }
REQUESTS=8
failed=0
pids=()

fail() {
	echo "real: FAIL: $*"
	failed=1
}

tmp=$(mktemp -d /tmp/cp-real-XXXXXX)
chmod 755 "$tmp"
cleanup() {
	for p in "${pids[@]}"; do kill -KILL "$p" 2>/dev/null; done
	rm -rf "$tmp"
}
trap cleanup EXIT

for prog in nginx busybox socat curl python3 ss; do
	command -v "$prog" >/dev/null || PATH=$PATH:/usr/sbin:/sbin command -v "$prog" >/dev/null ||
		{ echo "real: FAIL: $prog is not installed (.ci/run installs it)"; exit 1; }
done
PATH=$PATH:/usr/sbin:/sbin

www=$tmp/www
mkdir -p "$www"
head -c 1000000 /dev/urandom >"$www/big.bin"
echo "hello" >"$www/small.txt"
chmod -R a+rX "$www"
cat >"$tmp/policy.yaml" <<'EOF'
version: 1
log: {format: json}
rules:
  - name: all
    action: graceful
    drain_timeout: 2s
EOF

free_port() {
	python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Bounded wait (10 s) until something listens on 127.0.0.1:$1.
wait_listen() {
	for _ in $(seq 200); do
		[ -n "$(ss -Hltn "sport = :$1" 2>/dev/null)" ] && return 0
		sleep 0.05
	done
	return 1
}

# Lines of log $1 that contain every other argument.
count_lines() {
	local log=$1 n
	shift
	n=$(cat "$log" 2>/dev/null)
	for needle in "$@"; do
		n=$(printf '%s\n' "$n" | grep -F -- "$needle")
	done
	[ -z "$n" ] && echo 0 || printf '%s\n' "$n" | wc -l
}

# Bounded wait (10 s) until log $1 has at least $2 drains that ended at the peer's EOF.
wait_drains() {
	for _ in $(seq 200); do
		[ "$(count_lines "$1" '"event":"drain"' '"outcome":"eof"')" -ge "$2" ] && return 0
		sleep 0.05
	done
	return 1
}

# env, not a shell function, runs the program: started with &, $! is then the program's pid
under_shim() { # log, command...
	local log=$1
	shift
	env LD_PRELOAD="$LIB" CLOSEPOLICY_FILE="$tmp/policy.yaml" CLOSEPOLICY_LOG="$log" "$@"
}
shim_env() { # log
	echo env "LD_PRELOAD=$LIB" "CLOSEPOLICY_FILE=$tmp/policy.yaml" "CLOSEPOLICY_LOG=$1"
}

# GET $2 with curl under the shim ($1 names the case; more curl options follow): the body must be
# the file, curl must exit 0 (a reset is exit 56).
fetch() {
	local name=$1 url=$2
	shift 2
	under_shim "$tmp/curl.log" curl -sS --max-time 20 -o "$tmp/body" "$@" "$url"
	local st=$?
	[ "$st" -eq 0 ] || { fail "$name: curl exit status $st"; return; }
	cmp -s "$tmp/body" "$www/big.bin" || fail "$name: the body differs from the file"
}

# The server's log: a drain at EOF for each of $2 connections, none reset, no error or risk.
check_server_log() {
	local name=$1 n=$2 log=$3
	wait_drains "$log" "$n" || fail "$name: $(count_lines "$log" '"event":"drain"' '"outcome":"eof"') drains at EOF logged, $n expected"
	[ "$(count_lines "$log" '"event":"drain"' '"outcome":"reset"')" -eq 0 ] || fail "$name: a drain ended in a reset"
	[ "$(count_lines "$log" '"event":"error"')" -eq 0 ] || fail "$name: error events: $(grep -F '"event":"error"' "$log" | head -3)"
	[ "$(count_lines "$log" '"event":"risk"')" -eq 0 ] || fail "$name: risk events"
}

# Stop server pid $2 with signal $3 (bounded wait); its status must be $4.
stop() {
	local name=$1 pid=$2 sig=$3 want=$4
	kill -"$sig" "$pid"
	for _ in $(seq 200); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.05
	done
	kill -0 "$pid" 2>/dev/null && { fail "$name: still running 10 s after SIG$sig"; kill -KILL "$pid"; }
	wait "$pid"
	local st=$?
	[ "$st" -eq "$want" ] || fail "$name: exit status $st, $want without the shim"
	echo "real: $name: stopped by SIG$sig, status $st"
}

# ---- nginx: one worker, its own lingering close off (the shim's graceful close instead)
run_nginx() {
	local port dir=$tmp/nginx log=$tmp/nginx.log
	port=$(free_port)
	mkdir -p "$dir"
	cat >"$dir/nginx.conf" <<EOF
worker_processes 1;
daemon off;
pid $dir/nginx.pid;
error_log $dir/error.log;
$([ "$(id -u)" = 0 ] && echo "user root;")
events { worker_connections 256; }
http {
	access_log off;
	client_body_temp_path $dir/body;
	proxy_temp_path $dir/proxy;
	fastcgi_temp_path $dir/fastcgi;
	uwsgi_temp_path $dir/uwsgi;
	scgi_temp_path $dir/scgi;
	lingering_close off;
	server {
		listen 127.0.0.1:$port;
		root $www;
	}
}
EOF
	$(shim_env "$log") nginx -p "$dir" -e "$dir/error.log" -c "$dir/nginx.conf" &
	local pid=$!
	pids+=("$pid")
	wait_listen "$port" || { fail "nginx: not listening on $port"; cat "$dir/error.log"; return; }
	for i in $(seq "$REQUESTS"); do
		fetch "nginx HTTP/1.0 #$i" "http://127.0.0.1:$port/big.bin" --http1.0
		fetch "nginx Connection: close #$i" "http://127.0.0.1:$port/big.bin" -H 'Connection: close'
	done
	# a request body nginx never reads (413: over client_max_body_size, 1 MB): without a drain,
	# its close with the body unread would answer with RST
	head -c 3000000 /dev/zero >"$tmp/upload"
	local code
	code=$(under_shim "$tmp/curl.log" curl -sS --max-time 20 -o /dev/null -w '%{http_code}' \
		--data-binary @"$tmp/upload" "http://127.0.0.1:$port/small.txt")
	local st=$?
	[ "$st" -eq 0 ] && [ "$code" = 413 ] || fail "nginx POST left unread: curl status $st, HTTP $code"
	check_server_log nginx $((2 * REQUESTS + 1)) "$log"
	stop nginx "$pid" QUIT 0
}

# ---- busybox httpd: a child process per connection
run_busybox() {
	local port log=$tmp/busybox.log
	port=$(free_port)
	$(shim_env "$log") busybox httpd -f -p "127.0.0.1:$port" -h "$www" &
	local pid=$!
	pids+=("$pid")
	wait_listen "$port" || { fail "busybox httpd: not listening on $port"; return; }
	for i in $(seq "$REQUESTS"); do
		fetch "busybox httpd #$i" "http://127.0.0.1:$port/big.bin"
	done
	check_server_log "busybox httpd" "$REQUESTS" "$log"
	stop "busybox httpd" "$pid" TERM 143
}

# ---- socat TCP-LISTEN,fork: sends the file and closes (the client reads to EOF)
run_socat() {
	local port log=$tmp/socat.log
	port=$(free_port)
	$(shim_env "$log") socat "TCP-LISTEN:$port,bind=127.0.0.1,fork,reuseaddr" "SYSTEM:cat $www/big.bin" &
	local pid=$!
	pids+=("$pid")
	wait_listen "$port" || { fail "socat: not listening on $port"; return; }
	for i in $(seq "$REQUESTS"); do
		under_shim "$tmp/client.log" socat -u "TCP:127.0.0.1:$port" "CREATE:$tmp/body"
		local st=$?
		[ "$st" -eq 0 ] || fail "socat #$i: the client's exit status $st"
		cmp -s "$tmp/body" "$www/big.bin" || fail "socat #$i: the body differs from the file"
		rm -f "$tmp/body"
	done
	check_server_log socat "$REQUESTS" "$log"
	stop socat "$pid" TERM 143
}

# ---- python3 -m http.server (HTTP/1.0: the server closes first)
run_python() {
	local port log=$tmp/python.log
	port=$(free_port)
	$(shim_env "$log") python3 -m http.server --bind 127.0.0.1 --directory "$www" "$port" >/dev/null 2>&1 &
	local pid=$!
	pids+=("$pid")
	wait_listen "$port" || { fail "python3 http.server: not listening on $port"; return; }
	for i in $(seq "$REQUESTS"); do
		fetch "python3 http.server #$i" "http://127.0.0.1:$port/big.bin"
	done
	check_server_log "python3 http.server" "$REQUESTS" "$log"
	# (SIGTERM: a shell starts background programs with SIGINT ignored)
	stop "python3 http.server" "$pid" TERM 143
}

run_nginx
run_busybox
run_socat
run_python
# curl, under the shim as a client: it closed each connection after the server's EOF
[ "$(count_lines "$tmp/curl.log" '"event":"close"' '"role":"client"')" -ge $((4 * REQUESTS)) ] ||
	fail "curl: close events of its connections missing from its log"
[ "$(count_lines "$tmp/curl.log" '"event":"error"')" -eq 0 ] || fail "curl: error events"

if [ "$failed" -ne 0 ]; then
	echo "real: FAILED"
	exit 1
fi
echo "real: nginx, busybox httpd, socat, python3 http.server and curl under graceful: every body whole, no reset, every drain at EOF"
