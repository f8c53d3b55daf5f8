/* errno is preserved across every wrapper on success; failures are those of the C library
 * (EBADF for bad descriptors and for the shim's own); the log descriptor is high and
 * close-on-exec. The checks run inside the program (errno_calls). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void check(const char *policy)
{
	struct h_proc p;
	char line[512];
	h_spawn(&p, policy, NULL, "errno_calls", NULL);
	for (;;) {
		h_line(&p, line, sizeof line, 10000);
		if (strcmp(line, "ok") == 0)
			break;
		if (strncmp(line, "FAIL", 4) == 0)
			fail_msg("errno_calls: %s", line);
	}
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	h_finish(&p);
}

static void test_errno_graceful(void **state)
{
	(void)state;
	check("version: 1\nrules:\n  - action: graceful\n    drain_timeout: 1s\n");
}

static void test_errno_reset(void **state)
{
	(void)state;
	check("version: 1\nrules:\n  - action: reset\n");
}

static void test_errno_default(void **state)
{
	(void)state;
	check(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_errno_graceful),
		cmocka_unit_test(test_errno_reset),
		cmocka_unit_test(test_errno_default),
	};
	return cmocka_run_group_tests_name("errno", tests, NULL, NULL);
}
