#!/bin/bash
# make demo: every way a TCP connection ends, each case run bare and then under a policy, on
# 127.0.0.1; the peer says what it saw. Exits non-zero when a "with policy" outcome is wrong.
set -u
BUILD=${BUILD:-build}
CP=$BUILD/closepolicy
SERVER=$BUILD/progs/demo_server
CLIENT=$BUILD/progs/demo_client
work=$(mktemp -d /tmp/closepolicy-demo.XXXXXX)
trap 'rm -rf "$work"' EXIT
rows=()
failed=0

policy() { # name yaml
	printf 'version: 1\n%s\n' "$2" > "$work/$1.yaml"
	echo "$work/$1.yaml"
}

# run_one POLICY|- SERVER-ARGS... : prints the client's line, then what the server said after
# its port (how long close() took, a child's death); the log goes to $work/log
run_one() {
	local pol=$1; shift
	: > "$work/log"
	if [ "$pol" = - ]; then
		exec 3< <("$SERVER" "$@" 2>/dev/null; echo "status $?")
	else
		exec 3< <("$CP" run -p "$pol" -l "$work/log" -- "$SERVER" "$@" 2>/dev/null; echo "status $?")
	fi
	local port line said notes=
	read -r port <&3
	line=$("$CLIENT" "$port" --send 100 ${CLIENT_ARGS:-})
	while read -r said <&3; do
		case $said in
		status*) ;;
		"child killed by signal 13") notes+="; the child died of SIGPIPE" ;;
		*) notes+="; $said" ;;
		esac
	done
	exec 3<&-
	local sent=4194304 prev=
	for a in "$@"; do [ "$prev" = --write ] && sent=$a; prev=$a; done
	echo "${line/ bytes,/ of $sent bytes,}$notes"
}

# show_case RUNNER LABEL EXPECT NAME YAML [ARGS...]: the case run bare, then under the policy
# YAML ("-": no policy file, the built-in default); RUNNER POLICY|-|default ARGS prints what the
# peer (or the program) saw. BARE_NOTE, when set, follows the bare outcome.
show_case() {
	local runner=$1 label=$2 expect=$3 name=$4 yaml=$5; shift 5
	local pol=default bare with verdict=ok
	[ "$yaml" = - ] || pol=$(policy "$name" "$yaml")
	echo "== $label"
	bare=$($runner - "$@")
	echo "   bare:        $bare${BARE_NOTE:+ ($BARE_NOTE)}"
	with=$($runner "$pol" "$@")
	echo "   with policy: $with"
	echo "   policy:      $(echo "${yaml/#-/none (the built-in default)}" | tr '\n' ' ' | tr -s ' ')"
	echo "   closepolicy log:"
	sed 's/^/     /' "$work/log"
	if ! echo "$with" | grep -qE "$expect"; then
		verdict="UNEXPECTED (wanted: $expect)"
		failed=1
	fi
	echo "   outcome:     $verdict"
	echo
	rows+=("$label|$bare|$with|$name|$verdict")
}

# demo_case LABEL EXPECT POLICY-NAME POLICY-YAML SERVER-ARGS...
demo_case() { show_case run_one "$@"; }

[ -x "$SERVER" ] && [ -x "$CLIENT" ] && [ -x "$CP" ] || { echo "demo: run 'make demo' (build first)"; exit 1; }

demo_case "1.1/2.1 close() with unread data (server reads 5 of 100 bytes, writes 4 MB)" \
	"received 4194304 of 4194304 bytes, then EOF" graceful \
	"rules:
  - {name: web, match: {role: server}, action: graceful}" \
	--read 5 --write 4194304 --end close

demo_case "1.4 SO_LINGER {1,0}: reset, the abortive close (no TIME_WAIT)" \
	"then ECONNRESET" reset \
	"rules:
  - {name: abort, match: {role: server}, action: reset}" \
	--read 100 --write 65536 --end close

# The server says how long its close() kept it waiting: under linger, until the peer (here a slow
# one, which starts reading 300 ms after its request) has acknowledged the data.
CLIENT_ARGS="--read-after 300" demo_case \
	"1.4 SO_LINGER {1,N}: linger, close() waits for the data to be acknowledged (the peer reads 300 ms late)" \
	"received 1048576 of 1048576 bytes, then EOF.*close\\(\\) returned after" linger \
	"rules:
  - {name: wait, match: {role: server}, action: linger, linger: 5s}" \
	--read 100 --write 1048576 --end close --time-close

demo_case "1.2 process exit() without close(), data left unread" \
	"received 4194304 of 4194304 bytes, then EOF" exit-graceful \
	"rules:
  - {name: web, match: {role: server}, action: passthrough, on_exit: graceful}" \
	--read 5 --write 4194304 --end exit

demo_case "2.2 process _exit() without close(), data left unread" \
	"received 4194304 of 4194304 bytes, then EOF" _exit-graceful \
	"rules:
  - {name: web, match: {role: server}, action: passthrough, on_exit: graceful}" \
	--read 5 --write 4194304 --end _exit

demo_case "1.3 shutdown(SHUT_WR) by the program, then close(): the shim only drains" \
	"received 4194304 of 4194304 bytes, then EOF" shutdown \
	"rules:
  - {name: web, match: {role: server}, action: graceful}" \
	--read 100 --write 4194304 --end shutdown

demo_case "1.4 emulate Windows: process exit is an abortive close (on_exit: reset)" \
	"then ECONNRESET" windows \
	"rules:
  - {name: win, match: {role: server}, action: passthrough, on_exit: reset}" \
	--read 100 --write 65536 --end exit

# Writes after the peer left: EPIPE, and SIGPIPE, which kills a program that did not ask
# otherwise — with no trace. Under the shim it dies the same way, and the log says where; with
# sigpipe: ignore it survives and gets EPIPE.
epipe_one() { # POLICY|-|default : prints what happened to the writer
	: > "$work/log"
	local out status
	case $1 in
	-) out=$("$EPIPE_PROG" 2>&1); status=$? ;;
	default) out=$("$CP" run -l "$work/log" -- "$EPIPE_PROG" 2>&1); status=$? ;;
	*) out=$("$CP" run -p "$1" -l "$work/log" -- "$EPIPE_PROG" 2>&1); status=$? ;;
	esac
	if [ "$status" = 141 ]; then
		if [ -s "$work/log" ]; then echo "killed by SIGPIPE (status 141), logged"; else echo "killed by SIGPIPE (status 141), no trace"; fi
	else
		echo "${out:-exit $status} (status $status)"
	fi
}
EPIPE_PROG=$BUILD/progs/demo_epipe
show_case epipe_one "writes after the peer left (sigpipe: log, the default; no policy file)" \
	"killed by SIGPIPE \\(status 141\\), logged" sigpipe-log -
show_case epipe_one "writes after the peer left (sigpipe: ignore)" \
	"then EPIPE \\(status 0\\)" sigpipe-ignore "sigpipe: ignore"

# A fork-per-connection server: the parent closes its copy right after fork, the child replies.
# shutdown() ignores other holders, so a shim acting on the parent's close would cut the child.
SERVER=$BUILD/progs/demo_forkserver demo_case \
	"fork server: the parent closes its copy at once, the child replies 200000 bytes" \
	"received 200000 of 200000 bytes, then EOF" fork-graceful \
	"rules:
  - {name: web, match: {role: server}, action: graceful}" \
	--write 200000
# The same, under a shim that acted at each process's own last close instead of the socket's
# last close in any process: the parent's close shuts the connection under the child's feet
# (the child dies of SIGPIPE, or finds its request already drained away: a race, both cut it).
run_without_refs() { CLOSEPOLICY_TEST_NO_SHARED_REFS=1 run_one "$@"; }
SERVER=$BUILD/progs/demo_forkserver show_case run_without_refs \
	"the same fork server, under a shim without last-reference counting (CLOSEPOLICY_TEST_NO_SHARED_REFS=1)" \
	"received ([0-9]{1,5}|1[0-9]{5}) of 200000 bytes" fork-no-refs \
	"rules:
  - {name: web, match: {role: server}, action: graceful}" \
	--write 200000

# 1.5 / 2.3 / 2.4: a peer that vanishes. Two network namespaces joined by a veth pair; the
# server's side of the cable is then pulled (link down), so nothing comes back, ever.
NS_A=cpdemo-a.$$ NS_B=cpdemo-b.$$
vanish_one() { # POLICY|- writer-args...
	local pol=$1; shift
	: > "$work/log"
	ip netns add "$NS_A" && ip netns add "$NS_B" || return 1
	ip link add "va$$" netns "$NS_A" type veth peer name "vb$$" netns "$NS_B"
	ip -n "$NS_A" addr add 198.18.0.1/30 dev "va$$"
	ip -n "$NS_B" addr add 198.18.0.2/30 dev "vb$$"
	ip -n "$NS_A" link set "va$$" up
	ip -n "$NS_B" link set "vb$$" up
	exec 4< <(ip netns exec "$NS_B" "$SERVER" --any --read 0 --write 0 --end hold 2>/dev/null)
	local port line
	read -r port <&4
	if [ "$pol" = - ]; then
		coproc W { ip netns exec "$NS_A" "$WRITER" 198.18.0.2 "$port" "$@" 2>&1; }
	else
		coproc W { ip netns exec "$NS_A" "$CP" run -p "$pol" -l "$work/log" -- "$WRITER" 198.18.0.2 "$port" "$@" 2>&1; }
	fi
	read -r line <&"${W[0]}"          # "connected"
	ip -n "$NS_B" link set "vb$$" down  # the cable is pulled
	echo go >&"${W[1]}"
	read -r line <&"${W[0]}"
	echo "$line"
	wait "$W_PID" 2>/dev/null
	ip netns pids "$NS_B" | xargs -r kill 2>/dev/null
	exec 4<&-
	ip netns del "$NS_A"; ip netns del "$NS_B"
}

WRITER=$BUILD/progs/demo_writer
KERNEL_DEFAULT="about $(awk '{print ($1 >= 15) ? "924 s (tcp_retries2 15)" : "a shorter time"}' /proc/sys/net/ipv4/tcp_retries2 2>/dev/null) of retransmission before a write fails; 7200 s idle + 9 probes before keepalive notices"
if [ "$(id -u)" = 0 ] && command -v ip >/dev/null && ip netns add "cpdemo-probe.$$" 2>/dev/null; then
	ip netns del "cpdemo-probe.$$"
	BARE_NOTE="kernel default: $KERNEL_DEFAULT" show_case vanish_one "2.3 server vanishes while the client writes: TCP_USER_TIMEOUT" \
		"error ETIMEDOUT after [0-9.]+ s" user-timeout \
		"rules:
  - {name: backend, match: {role: client}, user_timeout: 3s}" \
		--give-up 6
	BARE_NOTE="kernel default: $KERNEL_DEFAULT" show_case vanish_one "1.5/2.4 peer vanishes while we wait to read: keepalive" \
		"error ETIMEDOUT after [0-9.]+ s" keepalive \
		"rules:
  - {name: backend, match: {role: client}, keepalive: {idle: 1s, interval: 1s, count: 2}}" \
		--read --give-up 6
else
	echo "== 1.5 / 2.3 / 2.4 vanished peer: skipped (needs root, iproute2 and network namespaces)"
	echo
	rows+=("1.5/2.3/2.4 vanished peer|skipped: needs root and ip netns|skipped||skipped")
fi

# One table row; each cell wrapped at spaces to its column's width, so the columns stay aligned
# whatever the case names and outcomes are.
COLUMNS_W=(36 36 36)
table_row() { # CELL...: the last cell is not wrapped
	local -a lines=() wrapped
	local i n=1 row
	for i in 0 1 2; do
		mapfile -t wrapped < <(printf '%s\n' "${@:i+1:1}" | fold -s -w "${COLUMNS_W[i]}" | sed 's/ *$//')
		lines[i]=$(printf '%s\n' "${wrapped[@]}")
		[ "${#wrapped[@]}" -gt "$n" ] && n=${#wrapped[@]}
	done
	for ((row = 1; row <= n; row++)); do
		printf '%-*s | %-*s | %-*s |%s\n' \
			"${COLUMNS_W[0]}" "$(sed -n "${row}p" <<< "${lines[0]}")" \
			"${COLUMNS_W[1]}" "$(sed -n "${row}p" <<< "${lines[1]}")" \
			"${COLUMNS_W[2]}" "$(sed -n "${row}p" <<< "${lines[2]}")" \
			"$([ "$row" = 1 ] && echo " $4")"
	done
}

echo "Summary"
table_row "case" "bare: what the peer saw" "with policy" "policy"
table_row "$(printf '%*s' "${COLUMNS_W[0]}" '' | tr ' ' -)" "$(printf '%*s' "${COLUMNS_W[1]}" '' | tr ' ' -)" \
	"$(printf '%*s' "${COLUMNS_W[2]}" '' | tr ' ' -)" "--------------"
for r in "${rows[@]}"; do
	IFS='|' read -r label bare with name verdict <<< "$r"
	table_row "$label" "$bare" "$with" "$name$([ "$verdict" = ok ] || echo " $verdict")"
done
exit $failed
