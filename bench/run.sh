#!/bin/sh
# make bench: every benchmark in one run; each prints its own figures (ratios where it has a
# baseline measured in the same run). nginx.sh measures nginx when it is installed.
set -e
BUILD=${BUILD:-build}
for b in "$BUILD"/bench/*; do
	[ -x "$b" ] || continue
	echo "== $(basename "$b")"
	BUILD=$BUILD "$b"
done
echo "== nginx"
BUILD=$BUILD bash bench/nginx.sh
