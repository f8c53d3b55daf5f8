#!/bin/bash
# make check-deb: make deb builds closepolicy_VERSION_ARCH.deb, lintian finds no error in it, and
# the package works where it lands: installed with apt-get (as root; otherwise unpacked with
# dpkg-deb -x, and said so), a program under /usr/bin/closepolicy maps /usr/lib/closepolicy's
# object and behaves under it, the README's recipes run as written (the systemd drop-in's
# environment, verified with systemd-analyze; closepolicy run under start-stop-daemon as an
# init script starts it). A package this test installed is removed again at the end, so the
# machine's later runs are untouched (tests always use the build tree's object anyway).
set -u
BUILD=${BUILD:-build}
MAKE=${MAKE:-make}
VERSION=${VERSION:?VERSION}
failed=0
fail() { echo "check_deb: FAILED: $*"; failed=1; }
tmp=$(mktemp -d /tmp/closepolicy-deb.XXXXXX)
installed_here=0
cleanup() {
	[ "$installed_here" = 1 ] && dpkg -r closepolicy > /dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

for tool in dpkg-deb:dpkg dpkg-shlibdeps:dpkg-dev lintian:lintian systemd-analyze:systemd; do
	command -v "${tool%%:*}" > /dev/null ||
		{ echo "check_deb: ${tool%%:*} is missing: install the Debian package ${tool#*:} (.ci/run does)"; exit 1; }
done
$MAKE --no-print-directory -s deb BUILD="$BUILD" > "$tmp/deb.log" 2>&1 || { cat "$tmp/deb.log"; echo "check_deb: make deb failed"; exit 1; }
deb=closepolicy_${VERSION}_$(dpkg --print-architecture).deb
[ -f "$deb" ] || { echo "check_deb: make deb did not write $deb"; exit 1; }
dpkg-deb -f "$deb" Depends | grep -q 'libyaml-0-2' || fail "Depends does not name libyaml-0-2: $(dpkg-deb -f "$deb" Depends)"
dpkg-deb -f "$deb" Depends | grep -q 'libc6' || fail "Depends does not name libc6"
contents=$(dpkg-deb -c "$deb" | awk '{print $6}')
for f in ./usr/bin/closepolicy ./usr/lib/closepolicy/libclosepolicy.so ./usr/share/man/man1/closepolicy.1.gz \
	 ./usr/share/man/man5/closepolicy.yaml.5.gz ./usr/share/man/man7/libclosepolicy.7.gz \
	 ./usr/share/doc/closepolicy/copyright ./usr/share/doc/closepolicy/examples/systemd/closepolicy.conf; do
	grep -qxF "$f" <<< "$contents" || fail "$deb lacks $f"
done

# lintian: errors fail; warnings are shown.
lintian --tag-display-limit 0 --fail-on error "$deb" > "$tmp/lintian.out" 2>&1
lintian_status=$?
grep -v 'running with root privileges' "$tmp/lintian.out"
[ "$lintian_status" = 0 ] || fail "lintian reports errors in $deb"

if [ "$(id -u)" = 0 ]; then
	dpkg-query -W -f='${Status}' closepolicy 2>/dev/null | grep -q "install ok installed" || installed_here=1
	DEBIAN_FRONTEND=noninteractive apt-get install -o DPkg::Lock::Timeout=300 -y -q --no-install-recommends "./$deb" > "$tmp/apt.log" 2>&1 ||
		{ cat "$tmp/apt.log"; fail "apt-get install ./$deb failed"; exit 1; }
	root=
	echo "check_deb: $deb installed with apt-get"
else
	root=$tmp/unpacked
	dpkg-deb -x "$deb" "$root"
	echo "check_deb: not root: $deb unpacked with dpkg-deb -x into $root instead of installed"
fi
cmd=$root/usr/bin/closepolicy
object=$root/usr/lib/closepolicy/libclosepolicy.so
[ -x "$cmd" ] && [ -f "$object" ] || { fail "the package did not put $cmd and $object in place"; exit 1; }

# The packaged command preloads the packaged object, and it acts.
maps=$("$cmd" run -- grep -F libclosepolicy.so /proc/self/maps 2>&1)
grep -qF "$object" <<< "$maps" || fail "a program under $cmd did not map $object: $maps"
"$cmd" run -l "$tmp/epipe.log" --json -- "$BUILD/progs/demo_epipe" > /dev/null 2>&1
status=$?
[ "$status" = 141 ] || fail "demo_epipe under $cmd: status $status, expected 141 (SIGPIPE)"
grep -q '"event":"sigpipe"' "$tmp/epipe.log" 2>/dev/null || fail "no sigpipe event from the packaged object"
"$cmd" check "$root/usr/share/doc/closepolicy/examples/web-server-rst.yaml" > /dev/null || fail "packaged example is not valid"

# The systemd drop-in: its paths are the package's, systemd accepts it, and its environment
# (with a test policy) preloads the object into a program.
dropin=$root/usr/share/doc/closepolicy/examples/systemd/closepolicy.conf
preload=$(sed -n 's/^Environment=LD_PRELOAD=//p' "$dropin")
[ "$preload" = /usr/lib/closepolicy/libclosepolicy.so ] || fail "the drop-in preloads $preload, not the package's object"
mkdir -p "$tmp/units/cptest.service.d"
printf '[Unit]\nDescription=closepolicy drop-in check\n[Service]\nExecStart=/usr/bin/closepolicy --version\n' > "$tmp/units/cptest.service"
cp "$dropin" "$tmp/units/cptest.service.d/"
verify=$(cd "$tmp/units" && systemd-analyze verify ./cptest.service 2>&1) || fail "systemd-analyze verify failed: $verify"
[ -z "$verify" ] || fail "systemd-analyze verify complains about the drop-in: $verify"
printf 'version: 1\nlog: {level: info}\n' > "$tmp/policy.yaml"
out=$(env LD_PRELOAD="$root$preload" CLOSEPOLICY_FILE="$tmp/policy.yaml" grep -F libclosepolicy.so /proc/self/maps 2>&1)
grep -qF "$object" <<< "$out" || fail "the drop-in's environment did not preload $object: $out"
grep -q 'event=policy outcome=loaded' <<< "$out" || fail "the drop-in's environment: no policy loaded event: $out"

# An init script's line (README): start-stop-daemon starting the daemon through closepolicy run.
if command -v start-stop-daemon > /dev/null; then
	out=$(start-stop-daemon --start --pidfile "$tmp/daemon.pid" --startas "$cmd" -- run -- grep -F libclosepolicy.so /proc/self/maps 2>&1)
	grep -qF "$object" <<< "$out" || fail "closepolicy run under start-stop-daemon did not preload $object: $out"
else
	fail "start-stop-daemon is not installed (dpkg)"
fi

if [ "$installed_here" = 1 ]; then
	dpkg -r closepolicy > /dev/null 2>&1 || fail "dpkg -r closepolicy failed"
	installed_here=0
	[ ! -e /usr/bin/closepolicy ] && [ ! -e /usr/lib/closepolicy ] || fail "dpkg -r left files behind"
fi
[ "$failed" = 0 ] && echo "check_deb: $deb: lintian, install, packaged run, systemd drop-in and init-script recipes ok"
exit $failed
