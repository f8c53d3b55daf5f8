#!/bin/bash
# make check-install: `make install` into a staging DESTDIR writes the layout of closepolicy(1)
# FILES, the staged command preloads the staged object by itself (not the build tree's) and a
# program under it behaves as under the policy; `make uninstall` removes exactly what install
# wrote and nothing else.
set -u
BUILD=${BUILD:-build}
MAKE=${MAKE:-make}
PREFIX=/usr/local
stage=$(mktemp -d /tmp/closepolicy-stage.XXXXXX)
trap 'rm -rf "$stage"' EXIT
failed=0
fail() { echo "check_install: FAILED: $*"; failed=1; }

# Someone else's file in the same directories: uninstall must leave it alone.
mkdir -p "$stage$PREFIX/bin" "$stage$PREFIX/share/man/man1"
echo keep > "$stage$PREFIX/bin/someone-else"
echo keep > "$stage$PREFIX/share/man/man1/someone-else.1"

$MAKE --no-print-directory -s install PREFIX=$PREFIX DESTDIR="$stage" BUILD="$BUILD" > "$stage.log" 2>&1 ||
	{ cat "$stage.log"; rm -f "$stage.log"; echo "check_install: make install failed"; exit 1; }
rm -f "$stage.log"

expected=$( { printf '%s\n' bin/closepolicy bin/someone-else lib/closepolicy/libclosepolicy.so \
	share/doc/closepolicy/README.md share/doc/closepolicy/examples/systemd/closepolicy.conf \
	share/man/man1/closepolicy.1 share/man/man1/someone-else.1 share/man/man5/closepolicy.yaml.5 \
	share/man/man7/libclosepolicy.7
	for y in examples/*.yaml; do echo "share/doc/closepolicy/$y"; done; } | LC_ALL=C sort)
got=$(cd "$stage$PREFIX" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
[ "$got" = "$expected" ] || fail "installed files differ from the layout:$(diff <(echo "$expected") <(echo "$got") | sed 's/^/\n  /')"

cmd=$stage$PREFIX/bin/closepolicy
object=$stage$PREFIX/lib/closepolicy/libclosepolicy.so
# The staged command finds the staged object by itself: a program under it has that file mapped.
maps=$("$cmd" run -- grep -F libclosepolicy.so /proc/self/maps 2>&1)
grep -qF "$object" <<< "$maps" || fail "a program under the staged command did not map $object:
$maps"
grep -qF "$(cd "$BUILD" && pwd)/libclosepolicy.so" <<< "$maps" && fail "the staged command preloaded the build tree's object"

# ... and the object acts: a write after the peer left is logged, the program still dies of
# SIGPIPE as without the shim (sigpipe: log).
log=$stage/epipe.log
"$cmd" run -l "$log" --json -- "$BUILD/progs/demo_epipe" > /dev/null 2>&1
status=$?
[ "$status" = 141 ] || fail "demo_epipe under the staged command: status $status, expected 141 (SIGPIPE)"
grep -q '"event":"sigpipe"' "$log" 2>/dev/null || fail "no sigpipe event in the staged run's log: $(cat "$log" 2>&1)"

# The policy examples are installed valid.
for y in "$stage$PREFIX"/share/doc/closepolicy/examples/*.yaml; do
	"$cmd" check "$y" > /dev/null || fail "installed example $y is not a valid policy"
done
# man finds the installed pages by name.
if command -v man > /dev/null; then
	for page in 1:closepolicy 5:closepolicy.yaml 7:libclosepolicy; do
		MANPATH=$stage$PREFIX/share/man man -w "${page%%:*}" "${page#*:}" > /dev/null 2>&1 ||
			fail "man does not find ${page#*:}(${page%%:*}) in the staged tree"
	done
else
	fail "man is not installed (the man-db package)"
fi

$MAKE --no-print-directory -s uninstall PREFIX=$PREFIX DESTDIR="$stage" BUILD="$BUILD" > /dev/null 2>&1 || fail "make uninstall failed"
left=$(cd "$stage$PREFIX" && find . -type f | sed 's|^\./||' | LC_ALL=C sort)
[ "$left" = "bin/someone-else
share/man/man1/someone-else.1" ] || fail "after make uninstall, these files are left: $left"
[ ! -e "$stage$PREFIX/lib/closepolicy" ] && [ ! -e "$stage$PREFIX/share/doc/closepolicy" ] ||
	fail "make uninstall left closepolicy's own directories"
[ -d "$stage$PREFIX/bin" ] && [ -d "$stage$PREFIX/share/man/man1" ] || fail "make uninstall removed shared directories"

[ "$failed" = 0 ] && echo "check_install: make install/uninstall with DESTDIR: layout, staged run and removal ok"
exit $failed
