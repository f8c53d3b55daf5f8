#!/bin/sh
# Check the build's libraries; name the Debian package of each missing one, and install them
# with apt-get when running as root on a machine that has it.
CC=${CC:-cc}
missing=""
have_header() { printf '#include <stdarg.h>\n#include <stddef.h>\n#include <setjmp.h>\n#include <stdint.h>\n#include <%s>\n' "$1" | $CC -E -x c - >/dev/null 2>&1; }
check() { have_header "$1" || missing="$missing $2"; }
check yaml.h libyaml-dev
check cmocka.h libcmocka-dev
check uv.h libuv1-dev
[ -z "$missing" ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
	echo "closepolicy: installing missing packages:$missing" >&2
	apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $missing >/dev/null || {
		echo "closepolicy: apt-get install$missing failed" >&2; exit 1; }
	exit 0
fi
for p in $missing; do echo "closepolicy: missing build dependency: install the Debian package $p (apt-get install $p)" >&2; done
exit 1
