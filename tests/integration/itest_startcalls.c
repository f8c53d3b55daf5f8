/* What the object costs a process that never makes a connection, in system calls (strace, which
 * counts the same on any machine). /bin/true preloaded under no policy makes at most 6 calls more
 * than bare: the loader's openat, read, fstat, close and mprotect of the object (its mmaps are
 * not counted), and the shim's one rt_sigaction (the handler installed, the inherited action
 * read back by the same call: no signal mask changed, no second read). Under a policy file whose compiled policy is
 * cached it makes at most 7 calls more than under no policy — the run directory's check (lstat),
 * the cache's open, read and close, the policy file's open, read and close (the cache counts only
 * for the very bytes it was made from) — and not one of the C library's heap (brk, getrandom,
 * mmap: the cached policy is decoded into the object's own memory), and never loads libyaml.
 * The first process, which parses, loads it, and writes the cache.
 * And in page faults (getrusage of the children, the mean of 25 runs: the address space's random
 * layout moves the kernel's 64 KiB fault-around blocks from run to run): the object costs /bin/true
 * at most 12 more than bare, and a cached policy at most 2 more than none (the heap it no longer
 * starts was 2, the counters and the clock that start-up no longer touches 4).
 * Plain build only (make check): a sanitizer's runtime makes calls of its own. */
#include "harness.h"

#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define LOADED_BUDGET 6
#define CACHED_BUDGET 7
#define LOADED_FAULTS 12.0
#define CACHED_FAULTS 2.0
#define FAULT_RUNS 25

static char dir[] = "/tmp/cp-itest-startcalls-XXXXXX";

/* /bin/true under strace with the object preloaded (policy NULL: no policy file; bare: not
 * preloaded); the trace's calls but the heap's (brk, getrandom, mmap: *heap), and whether it
 * opened libyaml. */
static int calls(const char *policy, bool bare, bool *opened_libyaml, int *heap)
{
	char trace[PATH_MAX], pre[PATH_MAX + 16], polenv[PATH_MAX + 32], runenv[PATH_MAX + 32], out[64];
	snprintf(trace, sizeof trace, "%s/trace", dir);
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", bare ? "" : h_build_path("libclosepolicy.so"));
	snprintf(polenv, sizeof polenv, "CLOSEPOLICY_FILE=%s", policy ? policy : "");
	snprintf(runenv, sizeof runenv, "CLOSEPOLICY_RUNDIR=%s/run", dir);
	/* strace runs bare (h_run clears the variables): they are the traced program's alone */
	const char *argv[] = { "/usr/bin/strace", "-qq", "-o", trace, "-E", pre, "-E", polenv, "-E", runenv,
			       "/bin/true", NULL };
	int st = h_run(argv, NULL, out, sizeof out, 10000);
	if (st != 0)
		fail_msg("strace /bin/true: status %d (is strace installed?)", st);
	FILE *f = fopen(trace, "r");
	assert_non_null(f);
	char line[4096];
	int n = 0;
	*opened_libyaml = false;
	*heap = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		if (strncmp(line, "+++", 3) == 0 || strncmp(line, "---", 3) == 0)
			continue;
		if (strncmp(line, "brk(", 4) == 0 || strncmp(line, "getrandom(", 10) == 0 || strncmp(line, "mmap(", 5) == 0) {
			++*heap;
			continue;
		}
		n++;
		if (strstr(line, "libyaml") != NULL)
			*opened_libyaml = true;
	}
	fclose(f);
	unlink(trace);
	return n;
}

/* The mean minor faults of /bin/true (policy and bare as for calls()). */
static double faults(const char *policy, bool bare)
{
	char pre[PATH_MAX + 16], polenv[PATH_MAX + 32], runenv[PATH_MAX + 32];
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s", bare ? "" : h_build_path("libclosepolicy.so"));
	snprintf(polenv, sizeof polenv, "CLOSEPOLICY_FILE=%s", policy ? policy : "");
	snprintf(runenv, sizeof runenv, "CLOSEPOLICY_RUNDIR=%s/run", dir);
	char *envp[] = { pre, polenv, runenv, NULL };
	char *argv[] = { (char *)"/bin/true", NULL };
	long total = 0;
	for (int i = 0; i < FAULT_RUNS; i++) {
		pid_t pid;
		int st;
		struct rusage ru;
		assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, envp), 0);
		assert_int_equal(wait4(pid, &st, 0, &ru), pid);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		total += ru.ru_minflt;
	}
	return (double)total / FAULT_RUNS;
}

static void test_cached_policy_calls(void **state)
{
	(void)state;
	char policy[PATH_MAX];
	snprintf(policy, sizeof policy, "%s/policy.yaml", dir);
	FILE *f = fopen(policy, "w");
	assert_non_null(f);
	fputs("version: 1\nlog: {level: warn}\nrules:\n  - {match: {role: server}, action: graceful}\n", f);
	fclose(f);
	bool yaml;
	int heap_bare, heap_none, heap_first, heap_cached;
	int bare = calls(NULL, true, &yaml, &heap_bare);
	int none = calls(NULL, false, &yaml, &heap_none);
	assert_false(yaml);
	int first = calls(policy, false, &yaml, &heap_first);
	assert_true(yaml); /* parsed: the cache was not there yet */
	int cached = calls(policy, false, &yaml, &heap_cached);
	assert_false(yaml);
	print_message("start-up calls of /bin/true but brk, getrandom and mmap (those in brackets): bare %d (%d), preloaded: no policy %d (%d), "
		      "policy parsed (cache written) %d (%d), policy cached %d (%d)\n",
		      bare, heap_bare, none, heap_none, first, heap_first, cached, heap_cached);
	assert_true(none <= bare + LOADED_BUDGET);
	assert_true(cached <= none + CACHED_BUDGET);
	assert_int_equal(heap_cached, heap_none); /* no heap started for a cached policy */
	assert_true(cached < first);

	double f_bare = faults(NULL, true), f_none = faults(NULL, false), f_cached = faults(policy, false);
	print_message("page faults of /bin/true (mean of %d): bare %.1f, preloaded: no policy %.1f, policy cached %.1f\n",
		      FAULT_RUNS, f_bare, f_none, f_cached);
	assert_true(f_none <= f_bare + LOADED_FAULTS);
	assert_true(f_cached <= f_none + CACHED_FAULTS);
	unlink(policy);
}

static int setup(void **state)
{
	(void)state;
	char run[PATH_MAX];
	if (mkdtemp(dir) == NULL)
		return -1;
	snprintf(run, sizeof run, "%s/run", dir);
	return mkdir(run, 0700);
}

static int teardown(void **state)
{
	(void)state;
	char cmd[PATH_MAX + 16];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_cached_policy_calls),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
