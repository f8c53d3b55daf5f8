#!/bin/sh
# Run the integration tests given as arguments (cmocka binaries); every one runs, and any
# failure fails the whole. BUILD is the build directory holding libclosepolicy.so and progs/.
# SAN=1: the object is built with sanitizers, so their runtime must be preloaded first.
# SAN=thread: the programs and the object are built with ThreadSanitizer.
: "${BUILD:=build}"
export BUILD
if [ "$SAN" = 1 ]; then
	CP_ITEST_PRELOAD_PREFIX=$(${CC:-cc} -print-file-name=libasan.so)
	export CP_ITEST_PRELOAD_PREFIX
	# verify_asan_link_order=0: `closepolicy run` puts the object in front of LD_PRELOAD
	export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:verify_asan_link_order=0}"
fi
if [ "$SAN" = thread ]; then
	# a data race ends the program at once (status 66), which every test notices.
	# die_after_fork=0: a process under the shim has the shim's reload thread, so its forked
	# children (which start threads of their own: the drainer, their reload thread) are children
	# of a multi-threaded parent, as in many real servers; TSan refuses those by default.
	export TSAN_OPTIONS="${TSAN_OPTIONS:-halt_on_error=1 exitcode=66 second_deadlock_stack=1 die_after_fork=0}"
fi
[ -f "$BUILD/libclosepolicy.so" ] || { echo "run.sh: $BUILD/libclosepolicy.so is missing" >&2; exit 1; }
passed=0
failed=""
for t in "$@"; do
	echo "== $t"
	if "$t"; then
		passed=$((passed + 1))
	else
		failed="$failed $t"
	fi
done
echo "integration: $passed of $# test programs passed"
if [ -n "$failed" ]; then
	echo "integration: FAILED:$failed"
	exit 1
fi
[ "$#" -gt 0 ] || { echo "integration: no test programs given" >&2; exit 1; }
