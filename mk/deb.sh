#!/bin/sh
# make deb: closepolicy_VERSION_ARCH.deb, built with dpkg-deb from a staged `make install
# PREFIX=/usr`. No debian/ directory and no debhelper: the Makefile already knows the layout
# (make install), so the package is that tree plus what Debian policy adds — stripped
# binaries, compressed pages and changelog, a copyright file, md5sums, and Depends computed by
# dpkg-shlibdeps from the binaries themselves. Needs dpkg-dev (dpkg-shlibdeps) and binutils.
#   sh mk/deb.sh VERSION BUILD
set -eu
VERSION=$1
BUILD=$2
MAKE=${MAKE:-make}
PACKAGE=closepolicy
arch=$(dpkg --print-architecture)
deb=${PACKAGE}_${VERSION}_${arch}.deb
work=$BUILD/deb
root=$work/root
rm -rf "$work"
mkdir -p "$work"
$MAKE --no-print-directory -s install PREFIX=/usr DESTDIR="$root" BUILD="$BUILD" > /dev/null
# the doc's README is the user guide; examples stay uncompressed so they can be used as they are
strip --strip-unneeded --remove-section=.comment --remove-section=.note "$root/usr/lib/closepolicy/libclosepolicy.so"
strip --strip-all --remove-section=.comment --remove-section=.note "$root/usr/bin/closepolicy"
gzip -9n "$root"/usr/share/man/man*/*
doc=$root/usr/share/doc/$PACKAGE
cat > "$doc/copyright" <<COPYRIGHT
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: closepolicy
Comment: closepolicy decides how a program's TCP connections end (see closepolicy(1)).
 The project has not chosen a license yet: until it does, no rights are granted beyond
 using this package.

Files: *
Copyright: 2026 the closepolicy authors
License: none-chosen-yet
 The project has not chosen a license yet.
COPYRIGHT
date=$(git log -1 --format=%aD 2>/dev/null || date -R)
printf '%s (%s) unstable; urgency=medium\n\n  * Package built from the source tree with make deb.\n\n -- closepolicy maintainers <maintainers@closepolicy.invalid>  %s\n' \
	"$PACKAGE" "$VERSION" "$date" | gzip -9n > "$doc/changelog.gz"
chmod 0644 "$doc/copyright" "$doc/changelog.gz"

# Depends from the binaries (libc6, libyaml-0-2, ...); dpkg-shlibdeps wants a debian/control.
mkdir -p "$work/debian"
printf 'Source: %s\n\nPackage: %s\nArchitecture: any\n' "$PACKAGE" "$PACKAGE" > "$work/debian/control"
depends=$(cd "$work" && dpkg-shlibdeps -O root/usr/bin/closepolicy root/usr/lib/closepolicy/libclosepolicy.so 2> shlibdeps.err |
	sed -n 's/^shlibs:Depends=//p') || true
[ -n "$depends" ] || { cat "$work/shlibdeps.err" >&2; echo "mk/deb.sh: dpkg-shlibdeps gave no dependencies" >&2; exit 1; }

mkdir -p "$root/DEBIAN"
size=$(du -sk --exclude=DEBIAN "$root" | cut -f1)
cat > "$root/DEBIAN/control" <<CONTROL
Package: $PACKAGE
Version: $VERSION
Architecture: $arch
Maintainer: closepolicy maintainers <maintainers@closepolicy.invalid>
Installed-Size: $size
Depends: $depends
Section: net
Priority: optional
Description: decide how a program's TCP connections end, without recompiling it
 A preloadable object (LD_PRELOAD) and the closepolicy command. A small
 YAML policy chooses, per socket (role, ports, addresses, program), what
 close() and process exit do: pass through, a graceful close that drains
 the peer, SO_LINGER, or a reset; and keepalive and TCP_USER_TIMEOUT.
 Every EPIPE, SIGPIPE and risky close is logged. Without a policy nothing
 changes and the object only observes.
CONTROL
(cd "$root" && find usr -type f -print0 | LC_ALL=C sort -z | xargs -0 md5sum) > "$root/DEBIAN/md5sums"
chmod 0644 "$root/DEBIAN/control" "$root/DEBIAN/md5sums"
find "$root" -type d -exec chmod 0755 {} +
dpkg-deb --root-owner-group -Zxz --build "$root" "$deb" > /dev/null
echo "make deb: $deb (Depends: $depends)"
