/* `closepolicy check` on the examples and on broken policies: exit status and output. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy/policy.h"

static char cmd[512], out_path[64], err_path[64];

static int run_check(const char *policy, char *out, size_t out_size, char *err, size_t err_size)
{
	char line[1024];
	snprintf(line, sizeof line, "%s check '%s' >%s 2>%s", cmd, policy, out_path, err_path);
	int status = system(line);
	assert_true(WIFEXITED(status));
	FILE *f = fopen(out_path, "r");
	size_t n = fread(out, 1, out_size - 1, f);
	out[n] = '\0';
	fclose(f);
	f = fopen(err_path, "r");
	n = fread(err, 1, err_size - 1, f);
	err[n] = '\0';
	fclose(f);
	return WEXITSTATUS(status);
}

static const char *const examples[] = {
	"examples/web-server-rst.yaml",
	"examples/client-dead-server.yaml",
	"examples/observe-only.yaml",
};

static void test_examples_pass(void **state)
{
	(void)state;
	static char out[65536], err[65536];
	for (size_t i = 0; i < sizeof examples / sizeof *examples; i++) {
		int rc = run_check(examples[i], out, sizeof out, err, sizeof err);
		if (rc != 0)
			fail_msg("%s: exit %d: %s", examples[i], rc, err);
		assert_string_equal(err, "");
		/* What check prints is a policy too, with the defaults spelled out. */
		struct cp_diag d;
		struct cp_policy *p = cp_policy_load_string(out, strlen(out), "dump", &d);
		if (!p)
			cp_diag_print(&d, stderr);
		assert_non_null(p);
		assert_non_null(strstr(out, "drain_timeout:"));
		assert_non_null(strstr(out, "exit_wait:"));
		cp_policy_free(p);
	}
}

struct broken {
	const char *yaml;
	const char *first_error; /* after "FILE:" */
};

static const struct broken broken[] = {
	{"version: 1\nrules:\n  - acton: graceful\n", "3:5: unknown key acton in a rule: did you mean action?"},
	{"version: 1\nrules:\n  - action: linger\n", "3:13: linger needs a time"},
	{"version: 1\nrules:\n  - match: {peer: 10.0.0.0/40}\n", "3:19: peer: CIDR prefix out of range 0..32"},
	{"rules: []\n", "1:1: missing required key version"},
	{"version: 1\nlog: {level: loud\n", "3:1: YAML syntax error"},
	{"", "1:1: empty policy"},
};

static void test_broken_rejected(void **state)
{
	(void)state;
	static char out[65536], err[65536];
	char path[] = "/tmp/cp-check-XXXXXX";
	for (size_t i = 0; i < sizeof broken / sizeof *broken; i++) {
		int fd = mkstemp(path);
		assert_true(fd >= 0);
		assert_int_equal(write(fd, broken[i].yaml, strlen(broken[i].yaml)), (ssize_t)strlen(broken[i].yaml));
		close(fd);
		int rc = run_check(path, out, sizeof out, err, sizeof err);
		char want[512];
		snprintf(want, sizeof want, "%s:%s", path, broken[i].first_error);
		unlink(path);
		strcpy(path, "/tmp/cp-check-XXXXXX");
		assert_int_equal(rc, 2);
		assert_string_equal(out, ""); /* never a partial policy */
		if (strncmp(err, want, strlen(want)) != 0)
			fail_msg("got:  %swant: %s", err, want);
	}
	assert_int_equal(run_check("/nonexistent/p.yaml", out, sizeof out, err, sizeof err), 2);
	assert_non_null(strstr(err, "/nonexistent/p.yaml: cannot open policy: No such file or directory"));
}

static void test_usage(void **state)
{
	(void)state;
	char line[1024];
	snprintf(line, sizeof line, "%s --version | grep -q '^closepolicy [0-9]'", cmd);
	assert_int_equal(system(line), 0);
	snprintf(line, sizeof line, "%s --help | grep -q 'closepolicy check POLICY'", cmd);
	assert_int_equal(system(line), 0);
	snprintf(line, sizeof line, "%s frobnicate 2>/dev/null", cmd);
	assert_int_equal(WEXITSTATUS(system(line)), 2);
	snprintf(line, sizeof line, "%s check 2>/dev/null", cmd);
	assert_int_equal(WEXITSTATUS(system(line)), 2);
	snprintf(line, sizeof line, "%s 2>/dev/null", cmd);
	assert_int_equal(WEXITSTATUS(system(line)), 2);
}

int main(void)
{
	const char *build = getenv("BUILD");
	snprintf(cmd, sizeof cmd, "%s/closepolicy", build ? build : "build");
	snprintf(out_path, sizeof out_path, "/tmp/cp-check-out.%d", (int)getpid());
	snprintf(err_path, sizeof err_path, "/tmp/cp-check-err.%d", (int)getpid());
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_examples_pass),
		cmocka_unit_test(test_broken_rejected),
		cmocka_unit_test(test_usage),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	unlink(out_path);
	unlink(err_path);
	return rc;
}
