/* Descriptors that are not connected TCP sockets pass straight through, even under a policy
 * that resets every TCP socket: a pipe, a UNIX socket pair, a UDP socket, a file, a listening
 * and a never-connected TCP socket. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>

static void test_nontcp_untouched(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nlog: {level: debug}\nrules:\n  - action: reset\n", NULL, "nontcp_ops",
		NULL);
	char line[512];
	h_line(&p, line, sizeof line, 10000);
	if (strcmp(line, "ok") != 0)
		fail_msg("nontcp_ops: %s", line);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(h_log_count(&p, "event=policy", "outcome=loaded", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=close", NULL), 0);
	assert_int_equal(h_log_count(&p, "event=risk", NULL), 0);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 0);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_nontcp_untouched),
	};
	return cmocka_run_group_tests_name("nontcp", tests, NULL, NULL);
}
