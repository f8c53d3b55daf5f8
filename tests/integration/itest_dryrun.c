/* dry_run decides and logs what each close would do, and changes nothing: a reset policy in dry
 * run delivers all of the reply and EOF. Set in the policy or with CLOSEPOLICY_DRY_RUN=1. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static void check(const char *policy, const char *const *env)
{
	struct h_proc p;
	h_spawn(&p, policy, env, "reply_server", "-n", "100", "-x", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	int fd = h_connect(port, 65536);
	char req[100];
	memset(req, 'r', sizeof req);
	h_send_all(fd, req, sizeof req);
	struct h_read r = h_read_to_end(fd, 20000);
	close(fd);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, (uint64_t)H_MB4);
	char *line = h_log_wait(&p, 5000, "event=close", NULL);
	assert_non_null(line);
	assert_non_null(strstr(line, "action=reset"));
	assert_non_null(strstr(line, "dry_run=true"));
	free(line);
	assert_int_equal(h_log_count(&p, "event=policy", "dry_run=true", NULL), 1);
	h_say(&p, "exit");
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	h_finish(&p);
}

static void test_dry_run_in_policy(void **state)
{
	(void)state;
	check("version: 1\ndry_run: true\nrules:\n  - action: reset\n", NULL);
}

static void test_dry_run_from_environment(void **state)
{
	(void)state;
	const char *env[] = { "CLOSEPOLICY_DRY_RUN=1", NULL };
	check("version: 1\nrules:\n  - action: reset\n", env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dry_run_in_policy),
		cmocka_unit_test(test_dry_run_from_environment),
	};
	return cmocka_run_group_tests_name("dryrun", tests, NULL, NULL);
}
