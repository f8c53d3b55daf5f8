#!/bin/bash
# make check-docs: the manual pages are the contract, so
#  1. each page renders with groff -man -ww without a single warning, and
#  2. every name the code accepts or writes is documented in its page, the lists taken from the
#     source itself: the loader's key table (policy/keys.c) and value words (policy/*.c) in
#     closepolicy.yaml(5); every event, log field and environment variable the shim writes or
#     reads (shim/*.c) in libclosepolicy(7); the command's subcommands, options and
#     environment (cli/*.c) in closepolicy(1).
# A key, field or event is "documented" when it is a tagged paragraph's term (.TP/.TQ) in its
# page, not merely a word somewhere in the text.
#   tests/docs/check_pages.sh [ROOT]      check the tree at ROOT (default: this repository)
#   tests/docs/check_pages.sh --selftest  prove the check fails on an undocumented key, field,
#                                         event and variable (on copies in a temporary tree)
set -u
export LC_ALL=C.UTF-8
here=$(cd "$(dirname "$0")/../.." && pwd)

# The terms of .TP/.TQ paragraphs: every word of the tag line, escapes removed.
terms() {
	perl -ne 'if ($tag) { s/^\.(B|BR|BI|I|IR|IB|RB)\s+//; s/\\f[BIRP]//g; s/\\-/-/g; s/\\\(dq//g;
		s/"//g; s/,//g; print "$_\n" for grep { length } split /\s+/; $tag = 0; next }
		$tag = 1 if /^\.(TP|TQ)\b/;' "$1" | sort -u
}
# The page as plain text on very long lines (no wrapping, so no hyphenation).
text() { groff -man -Tutf8 -rLL=5000n -P-cbou "$1" 2>/dev/null | sed 's/\xe2\x80\x90/-/g'; }

# ---- lists from the source ----
policy_keys() { # every string of the KEY_SET(...) tables
	perl -0777 -ne 'while (/KEY_SET\(\s*\w+\s*,(.*?)\);/sg) { print "$_\n" for ($1 =~ /"([^"]+)"/g) }' \
		"$1"/policy/keys.c | sort -u
}
policy_words() { # the words of the loader's static word tables (actions, roles, levels, ...)
	perl -0777 -ne 'while (/static const char \*const \w+\[\]\s*=\s*\{(.*?)\};/sg) {
		print "$_\n" for ($1 =~ /"([^"]+)"/g) }' "$1"/policy/load.c "$1"/policy/rules.c | sort -u
}
shim_events() { # the event names given to cp_log_begin
	perl -0777 -ne 'while (/cp_log_begin\s*\((.*?)\);/sg) { print "$_\n" for ($1 =~ /"([a-z_]+)"/g) }' \
		"$1"/shim/*.c | sort -u
}
shim_fields() { # the keys given to the field writers, and the JSON keys written literally
	perl -0777 -ne 'while (/cp_log_(?:str|int|uint|bool|addr|errno|u64|i64|ms|hex)\s*\(\s*[^,()]+,\s*"([a-z_0-9]+)"/sg) { print "$1\n" }
		while (/\\"([a-z_0-9]+)\\":/g) { print "$1\n" }' "$1"/shim/*.c | sort -u
}
env_vars() { # CLOSEPOLICY_* names in the given files
	cat "$@" | grep -o '"CLOSEPOLICY_[A-Z_]*"' | tr -d '"' | sort -u
}
cli_words() { # the subcommands and options the command compares its arguments with
	perl -0777 -ne 'while (/strcmp\(\s*(?:a|cmd|argv\[\w+\])\s*,\s*"([^"]+)"\)/g) { print "$1\n" }' \
		"$1"/cli/*.c | sort -u
}

check_tree() {
	local root=$1 failed=0 page
	for page in "$root"/man/closepolicy.1 "$root"/man/closepolicy.yaml.5 "$root"/man/libclosepolicy.7; do
		[ -f "$page" ] || { echo "check_pages: missing page $page"; failed=1; continue; }
		local warn
		warn=$(groff -man -ww -Tutf8 -z "$page" 2>&1)
		if [ -n "$warn" ]; then
			echo "check_pages: $page renders with warnings:"; echo "$warn"; failed=1
		fi
	done
	[ "$failed" = 0 ] || return 1
	local y5=$root/man/closepolicy.yaml.5 l7=$root/man/libclosepolicy.7 c1=$root/man/closepolicy.1
	# every ITEM must be a term of PAGE (or, for value words, a word of its text)
	missing_from() { # LABEL PAGE MODE(terms|text) ITEMS...
		local label=$1 page=$2 mode=$3 known item n=0; shift 3
		if [ "$mode" = terms ]; then known=$(terms "$page"); else known=$(text "$page" | tr -s ' \t,.;:()[]{}"=' '\n'); fi
		for item in "$@"; do
			if ! grep -qxF -- "$item" <<< "$known"; then
				echo "check_pages: $label \"$item\" is not documented in $(basename "$page")"; failed=1
			fi
			n=$((n + 1))
		done
		[ "$n" -gt 0 ] || { echo "check_pages: found no ${label}s in the source (extraction broken?)"; failed=1; }
		echo "check_pages: $n ${label}s checked against $(basename "$page")"
	}
	missing_from "policy key" "$y5" terms $(policy_keys "$root")
	missing_from "policy value" "$y5" text $(policy_words "$root")
	missing_from "log event" "$l7" terms $(shim_events "$root")
	missing_from "log field" "$l7" terms $(shim_fields "$root")
	missing_from "shim environment variable" "$l7" terms $(env_vars "$root"/shim/*.c)
	missing_from "command environment variable" "$c1" terms $(env_vars "$root"/cli/*.c)
	missing_from "command word" "$c1" terms $(cli_words "$root")
	return $failed
}

selftest() {
	local tmp rc=0
	tmp=$(mktemp -d /tmp/closepolicy-doccheck.XXXXXX)
	trap 'rm -rf "$tmp"' RETURN
	fresh() { rm -rf "$tmp/t"; mkdir -p "$tmp/t"; cp -r "$here"/policy "$here"/shim "$here"/cli "$here"/man "$tmp/t/"; }
	expect_fail() { # WHAT WORD: the check of the altered tree must fail and name WORD
		local out
		if out=$(check_tree "$tmp/t" 2>&1); then
			echo "check_pages selftest: FAILED: $1 was not noticed"; rc=1
		elif ! grep -qF -- "$2" <<< "$out"; then
			echo "check_pages selftest: FAILED: $1: the failure does not name $2:"; echo "$out"; rc=1
		else
			echo "check_pages selftest: ok: $1 fails the check"
		fi
	}
	fresh
	check_tree "$tmp/t" > /dev/null || { echo "check_pages selftest: the unaltered copy fails"; return 1; }
	fresh; sed -i 's/"idle", "interval", "count"/"idle", "interval", "count", "probe_grace"/' "$tmp/t/policy/keys.c"
	expect_fail "a new keepalive key without documentation" probe_grace
	fresh; perl -0pi -e 's/(\.TP\n\.B user_timeout\n)/.TP\n.B user_timeout_removed_for_the_selftest\n/' "$tmp/t/man/closepolicy.yaml.5"
	expect_fail "a policy key removed from closepolicy.yaml(5)" user_timeout
	fresh; sed -i 's/cp_log_str(l, "call", w->call);/cp_log_str(l, "call", w->call);\n\tcp_log_uint(l, "queued_ms", 0);/' "$tmp/t/shim/events.c"
	expect_fail "a new log field without documentation" queued_ms
	fresh; perl -0pi -e 's/"sigpipe"\);/"sigpipe");\n\tcp_log_begin(&l, CP_LEVEL_WARN, "handover");/' "$tmp/t/shim/events.c"
	expect_fail "a new event without documentation" handover
	fresh; sed -i 's/secure_getenv("CLOSEPOLICY_DRY_RUN")/secure_getenv("CLOSEPOLICY_DRY_RUN") ?: secure_getenv("CLOSEPOLICY_NEW_KNOB")/' "$tmp/t/shim/init.c"
	expect_fail "a new environment variable without documentation" CLOSEPOLICY_NEW_KNOB
	fresh; sed -i 's/^\.B \\-\\-json$/.B \\-\\-jsonx/' "$tmp/t/man/closepolicy.1"
	expect_fail "an option removed from closepolicy(1)" --json
	fresh; printf '.TP\n.B broken\n.BR\n.xyz\n' >> "$tmp/t/man/libclosepolicy.7"
	expect_fail "a page that renders with a warning" xyz
	return $rc
}

command -v groff > /dev/null || { echo "check_pages: groff is missing: install the Debian package groff-base"; exit 1; }
command -v perl > /dev/null || { echo "check_pages: perl is missing: install the Debian package perl-base"; exit 1; }
if [ "${1:-}" = --selftest ]; then
	selftest
else
	check_tree "${1:-$here}"
fi
