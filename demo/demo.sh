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

# run_one POLICY|- SERVER-ARGS... : prints the client's line; the log goes to $work/log
run_one() {
	local pol=$1; shift
	: > "$work/log"
	if [ "$pol" = - ]; then
		exec 3< <("$SERVER" "$@" 2>/dev/null; echo "status $?")
	else
		exec 3< <("$CP" run -p "$pol" -l "$work/log" -- "$SERVER" "$@" 2>/dev/null; echo "status $?")
	fi
	local port line status
	read -r port <&3
	line=$("$CLIENT" "$port" --send 100)
	read -r _ status <&3
	exec 3<&-
	echo "$line"
}

# case LABEL EXPECT POLICY-NAME POLICY-YAML SERVER-ARGS...
demo_case() {
	local label=$1 expect=$2 name=$3 yaml=$4; shift 4
	local pol bare with
	pol=$(policy "$name" "$yaml")
	echo "== $label"
	bare=$(run_one - "$@")
	echo "   bare:        $bare"
	with=$(run_one "$pol" "$@")
	echo "   with policy: $with"
	echo "   policy:      $(echo "$yaml" | tr '\n' ' ' | tr -s ' ')"
	echo "   closepolicy log:"
	sed 's/^/     /' "$work/log"
	local verdict=ok
	if ! echo "$with" | grep -qE "$expect"; then
		verdict="UNEXPECTED (wanted: $expect)"
		failed=1
	fi
	echo "   outcome:     $verdict"
	echo
	rows+=("$label|$bare|$with|$name|$verdict")
}

[ -x "$SERVER" ] && [ -x "$CLIENT" ] && [ -x "$CP" ] || { echo "demo: run 'make demo' (build first)"; exit 1; }

demo_case "1.1/2.1 close() with unread data (server reads 5 of 100 bytes, writes 4 MB)" \
	"received 4194304 bytes, then EOF" graceful \
	"rules:
  - {name: web, match: {role: server}, action: graceful}" \
	--read 5 --write 4194304 --end close

demo_case "1.4 SO_LINGER {1,0}: reset, the abortive close (no TIME_WAIT)" \
	"then ECONNRESET" reset \
	"rules:
  - {name: abort, match: {role: server}, action: reset}" \
	--read 100 --write 65536 --end close

demo_case "1.4 SO_LINGER {1,N}: linger, close() waits for the data to be acknowledged" \
	"received 4194304 bytes, then EOF" linger \
	"rules:
  - {name: wait, match: {role: server}, action: linger, linger: 5s}" \
	--read 100 --write 4194304 --end close

echo "Summary"
printf '%-72s | %-48s | %-48s | %s\n' "case" "bare: what the peer saw" "with policy" "policy"
for r in "${rows[@]}"; do
	IFS='|' read -r label bare with name verdict <<< "$r"
	printf '%-72s | %-48s | %-48s | %s %s\n' "$label" "$bare" "$with" "$name" "$([ "$verdict" = ok ] || echo "$verdict")"
done
exit $failed
