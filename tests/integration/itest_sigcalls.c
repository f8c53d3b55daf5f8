/* What SIGPIPE's disposition costs in system calls (strace -f, the same on any machine), against
 * the same program bare in the same run (progs/sigpipe_calls):
 *  - start-up: one rt_sigaction (the shim's handler installed, the inherited action read back by
 *    the same call); two when SIGPIPE is inherited ignored (SIG_IGN put back in the kernel);
 *  - signal(SIGPIPE, SIG_IGN) in a process of one thread, and signal(SIGPIPE, handler) in its
 *    forked child (busybox httpd's children): one call each, as bare: no signal mask changed, no
 *    second read (what the C library adds to an action is learned from the call's old action);
 *  - with a second thread: at most three (the changes' lock, with every signal blocked around it).
 * The program also reads back what it set and its child's handler runs once for a broken pipe.
 * Plain build only (make check): a sanitizer's runtime makes calls of its own. */
#include "harness.h"

#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-itest-sigcalls-XXXXXX";

/* the calls of the program's stretches ([0]) and its child's ([1]; a thread never marks):
 * before the first mark, and between marks */
#define TASKS 4
struct stretches {
	int pid[TASKS];      /* in the order they appear in the trace: the program first */
	int before[TASKS];   /* calls before the first mark (rt_sigaction and rt_sigprocmask only) */
	int between[TASKS][3]; /* calls between mark i and i + 1 */
	int marks[TASKS];
};

static int who(struct stretches *s, int pid)
{
	for (int i = 0; i < TASKS; i++) {
		if (s->pid[i] == pid)
			return i;
		if (s->pid[i] == 0) {
			s->pid[i] = pid;
			return i;
		}
	}
	return -1;
}

static struct stretches run(bool bare, bool threaded, char *out, size_t size)
{
	char trace[PATH_MAX], pre[PATH_MAX + 16], logf[PATH_MAX], logenv[PATH_MAX + 32];
	snprintf(trace, sizeof trace, "%s/trace", dir);
	snprintf(logf, sizeof logf, "%s/log", dir);
	snprintf(logenv, sizeof logenv, "CLOSEPOLICY_LOG=%s", logf);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", bare ? "" : h_build_path("libclosepolicy.so"));
	const char *argv[] = { "/usr/bin/strace", "-f", "-qq", "-o", trace, "-E", pre, "-E", logenv,
			       h_build_path("progs/sigpipe_calls"), threaded ? "threaded" : NULL, NULL };
	int st = h_run(argv, NULL, out, size, 20000);
	if (st != 0)
		fail_msg("strace sigpipe_calls: status %d (is strace installed?)", st);
	FILE *f = fopen(trace, "r");
	assert_non_null(f);
	struct stretches s;
	memset(&s, 0, sizeof s);
	char line[4096];
	while (fgets(line, sizeof line, f) != NULL) {
		int pid, at;
		if (sscanf(line, "%d %n", &pid, &at) != 1 || strstr(line, " resumed>") != NULL ||
		    strncmp(line + at, "+++", 3) == 0 || strncmp(line + at, "---", 3) == 0)
			continue;
		int i = who(&s, pid);
		if (i < 0)
			continue;
		const char *call = line + at;
		if (strncmp(call, "getppid(", 8) == 0) {
			s.marks[i]++;
		} else if (s.marks[i] == 0) {
			if (strncmp(call, "rt_sigaction(", 13) == 0 || strncmp(call, "rt_sigprocmask(", 15) == 0)
				s.before[i]++;
		} else if (s.marks[i] <= 3) {
			s.between[i][s.marks[i] - 1]++;
		}
	}
	fclose(f);
	unlink(trace);
	unlink(logf);
	for (int i = 2; i < TASKS; i++) /* the child is the other task that marks */
		if (s.marks[1] == 0 && s.marks[i] > 0) {
			s.marks[1] = s.marks[i];
			s.before[1] = s.before[i];
			memcpy(s.between[1], s.between[i], sizeof s.between[1]);
		}
	return s;
}

static void test_one_call_each(void **state)
{
	(void)state;
	char out[128];
	struct stretches bare = run(true, false, out, sizeof out);
	assert_string_equal(out, "start default\nchild ok\ndone\n");
	struct stretches shim = run(false, false, out, sizeof out);
	assert_string_equal(out, "start default\nchild ok\ndone\n");
	print_message("bare: start-up %d, signal() %d, the child's signal() %d; preloaded: %d, %d, %d\n",
		      bare.before[0], bare.between[0][1], bare.between[1][0], shim.before[0], shim.between[0][1],
		      shim.between[1][0]);
	assert_int_equal(shim.marks[0], 3);
	assert_int_equal(shim.marks[1], 2);
	assert_int_equal(shim.before[0], bare.before[0] + 1);
	assert_int_equal(bare.between[0][1], 1);
	assert_int_equal(shim.between[0][1], 1);
	assert_int_equal(bare.between[1][0], 1);
	assert_int_equal(shim.between[1][0], 1);
}

static void test_inherited_ignore(void **state)
{
	(void)state;
	char out[128];
	void (*was)(int) = signal(SIGPIPE, SIG_IGN); /* inherited through strace's exec */
	struct stretches bare = run(true, false, out, sizeof out);
	assert_string_equal(out, "start ignore\nchild ok\ndone\n");
	struct stretches shim = run(false, false, out, sizeof out);
	assert_string_equal(out, "start ignore\nchild ok\ndone\n");
	signal(SIGPIPE, was);
	print_message("SIGPIPE inherited ignored: start-up bare %d, preloaded %d; signal() %d\n", bare.before[0],
		      shim.before[0], shim.between[0][1]);
	assert_int_equal(shim.before[0], bare.before[0] + 2);
	assert_int_equal(shim.between[0][1], 1);
	assert_int_equal(shim.between[1][0], 1);
}

static void test_threaded_locked(void **state)
{
	(void)state;
	char out[128];
	struct stretches shim = run(false, true, out, sizeof out);
	assert_string_equal(out, "start default\nchild ok\ndone\n");
	print_message("with a second thread: signal() %d, the child's %d\n", shim.between[0][1],
		      shim.between[1][0]);
	assert_int_equal(shim.marks[1], 2);
	assert_true(shim.between[0][1] <= 3);
	assert_true(shim.between[1][0] <= 3);
}

static int setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_call_each),
		cmocka_unit_test(test_inherited_ignore),
		cmocka_unit_test(test_threaded_locked),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
