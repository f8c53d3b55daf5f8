/* A policy file that cannot hold a policy — a FIFO (which must not block the program's start), a
 * directory, a file over the size limit — is rejected with one `policy` event, and the preloaded
 * program runs unchanged under the built-in default (no rule: every close is the kernel's).
 * The loader's own unit test (tests/unit/test_load.c) checks the messages; this checks the
 * program around it. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-itest-policyfile-XXXXXX";

/* reply_server under CLOSEPOLICY_FILE=path: one request, the whole reply, EOF, exit 0. */
static void runs_unchanged(const char *path, const char *message)
{
	char env_file[256];
	snprintf(env_file, sizeof env_file, "CLOSEPOLICY_FILE=%s", path);
	const char *env[] = { env_file, NULL };
	struct h_proc p;
	h_spawn(&p, NULL, env, "reply_server", "-n", "100", "-w", "100000", NULL);
	int port = (int)h_expect(&p, "port ", 5000); /* started: a FIFO did not block it */
	int fd = h_connect(port, 0);
	char req[100] = { 0 };
	h_send_all(fd, req, sizeof req);
	struct h_read r = h_read_to_end(fd, 10000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, 100000);
	close(fd);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	assert_int_equal(h_log_count(&p, "event=policy", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=policy", "outcome=rejected", message, NULL), 1);
	/* the default policy: no rule, so the close was not one the shim acts on or reports */
	assert_int_equal(h_log_count(&p, "event=close", NULL), 0);
	assert_int_equal(h_log_count(&p, "event=drain", NULL), 0);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 0);
	h_finish(&p);
}

static void test_fifo(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof path, "%s/policy.fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	runs_unchanged(path, "not a regular file");
	unlink(path);
}

static void test_directory(void **state)
{
	(void)state;
	runs_unchanged(dir, "directory");
}

static void test_huge(void **state)
{
	(void)state;
	char path[128];
	snprintf(path, sizeof path, "%s/huge.yaml", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	/* a valid policy, padded past the limit with comments: refused whole, never truncated */
	fputs("version: 1\nrules:\n  - action: reset\n", f);
	for (int i = 0; i < 200000; i++)
		fputs("# padding\n", f);
	fclose(f);
	runs_unchanged(path, "too large");
	unlink(path);
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
		cmocka_unit_test(test_fifo),
		cmocka_unit_test(test_directory),
		cmocka_unit_test(test_huge),
	};
	return cmocka_run_group_tests_name("policyfile", tests, setup, teardown);
}
