/* `closepolicy run`: exit statuses are COMMAND's own (and its signals), 127 when COMMAND is not
 * found, 2 for a bad policy without starting COMMAND; and the policy really applies to COMMAND. */
#include "harness.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static char cmd[PATH_MAX];

static int run(const char *const argv[])
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		unsetenv("LD_PRELOAD");
		execv(cmd, (char *const *)argv);
		_exit(126);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	return st;
}

static void test_exit_status_is_commands(void **state)
{
	(void)state;
	int st = run((const char *[]){ cmd, "run", "--", "/bin/sh", "-c", "exit 7", NULL });
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 7);
}

/* run makes every process of the tree reloadable (CLOSEPOLICY_RELOAD=1) unless told otherwise */
static void test_reload_on_under_run(void **state)
{
	(void)state;
	struct h_proc p;
	char out[256];
	h_shell(&p,
		"\"$CP\" run -- /bin/sh -c 'echo \"$CLOSEPOLICY_RELOAD\"'\n"
		"CLOSEPOLICY_RELOAD=0 \"$CP\" run -- /bin/sh -c 'echo \"$CLOSEPOLICY_RELOAD\"'\n",
		out, sizeof out);
	assert_string_equal(out, "1\n0\n");
	h_finish(&p);
}

static void test_signal_is_commands(void **state)
{
	(void)state;
	int st = run((const char *[]){ cmd, "run", "--", "/bin/sh", "-c", "kill -TERM $$", NULL });
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGTERM);
}

static void test_not_found_is_127(void **state)
{
	(void)state;
	int st = run((const char *[]){ cmd, "run", "--", "/nonexistent/command", NULL });
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 127);
}

static void test_bad_policy_is_2_and_command_not_started(void **state)
{
	(void)state;
	char dir[] = "/tmp/cp-itest-run-XXXXXX", pol[64], marker[64];
	assert_non_null(mkdtemp(dir));
	snprintf(pol, sizeof pol, "%s/p.yaml", dir);
	snprintf(marker, sizeof marker, "%s/started", dir);
	FILE *f = fopen(pol, "w");
	fputs("version: 1\nrules:\n  - action: linger\n", f); /* linger without a time */
	fclose(f);
	int st = run((const char *[]){ cmd, "run", "-p", pol, "--", "/usr/bin/touch", marker, NULL });
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 2);
	assert_int_equal(access(marker, F_OK), -1);
	unlink(pol);
	rmdir(dir);
}

/* A relative log path is taken from the directory the program starts in, by CLOSEPOLICY_LOG as by
 * `closepolicy run -l`, and the processes it starts in other directories write to the same file
 * (each says `policy loaded`; at debug level, so the images after the first one say it too). */
static void test_relative_path(void **state)
{
	(void)state;
	struct h_proc p;
	char out[4096];
	h_shell(&p,
		"set -e; cd \"$(dirname \"$LOG\")\"; printf 'version: 1\\nlog: {level: debug}\\n' > p.yaml\n"
		"CLOSEPOLICY_LOG=env.log \"$CP\" run -p p.yaml -- /bin/sh -c 'cd / && exec /bin/true'\n"
		"\"$CP\" run -p p.yaml -l opt.log -- /bin/sh -c 'cd / && exec /bin/true'\n"
		"for f in env.log opt.log; do\n"
		"  grep -q 'event=policy outcome=loaded.* program=sh ' $f\n"
		"  grep -q 'event=policy outcome=loaded.* program=true ' $f\n"
		"done\n"
		"! grep -q event=error env.log opt.log\n"
		"test ! -e /env.log && test ! -e /opt.log && echo ok\n",
		out, sizeof out);
	assert_string_equal(out, "ok\n");
	h_finish(&p);
}

int main(void)
{
	const char *b = getenv("BUILD");
	char abs[PATH_MAX];
	if (b == NULL || realpath(b, abs) == NULL) {
		fprintf(stderr, "itest_run: BUILD is not set to the build directory\n");
		return 1;
	}
	if (snprintf(cmd, sizeof cmd, "%s/closepolicy", abs) >= (int)sizeof cmd)
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reload_on_under_run),
		cmocka_unit_test(test_relative_path),
		cmocka_unit_test(test_exit_status_is_commands),
		cmocka_unit_test(test_signal_is_commands),
		cmocka_unit_test(test_not_found_is_127),
		cmocka_unit_test(test_bad_policy_is_2_and_command_not_started),
	};
	return cmocka_run_group_tests_name("run", tests, NULL, NULL);
}
