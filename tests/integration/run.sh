#!/bin/sh
# Run every integration test binary given; any failure fails the run.
BUILD=${BUILD:-build}
export BUILD
failed=0
count=0
for t in "$@"; do
	count=$((count + 1))
	echo "== $t"
	"$t" || { echo "FAILED: $t"; failed=$((failed + 1)); }
done
echo "integration: $count test programs, $failed failed"
[ "$failed" = 0 ]
