#!/bin/sh
# make demo: closepolicy check on the example policies, and on a broken one.
BUILD=${BUILD:-build}
CP=$BUILD/closepolicy
status=0
for f in examples/*.yaml; do
	echo "\$ closepolicy check $f"
	$CP check "$f" | sed -n '1,12p'
	echo "  ..."
	echo
done
broken=$(mktemp /tmp/cp-demo-XXXXXX.yaml)
printf 'version: 1\nrules:\n  - acton: graceful\n    match: {peer: 10.0.0.0/33, local_port: "90-80"}\n  - action: linger\n' > "$broken"
echo "\$ cat $broken"; cat "$broken"
echo "\$ closepolicy check $broken"
$CP check "$broken"; rc=$?
echo "(exit status $rc)"
rm -f "$broken"
[ $rc = 2 ] || status=1
exit $status
