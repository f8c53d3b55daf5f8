/* A quieter log: `closepolicy run` says `policy loaded` once for a whole tree of processes (the
 * ones it starts say it at debug), and `log: {rate: N}` keeps N lines a second per event kind,
 * with the rest counted in `suppressed` lines and, exactly, in the counters. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "stat_helpers.h"

/* `closepolicy run` over a shell that starts three more programs: one `policy loaded` line. */
static void test_one_policy_line_per_run(void **state)
{
	(void)state;
	struct h_proc p;
	char out[4096];
	h_shell(&p,
		"printf 'version: 1\\nrules: []\\n' > \"$LOG.policy\"\n"
		"$CP run -p \"$LOG.policy\" -l \"$LOG\" -- /bin/sh -c '/bin/true; /bin/true; /bin/true; :'\n",
		out, sizeof out);
	assert_int_equal(h_log_count(&p, "event=policy", "outcome=loaded", NULL), 1);
	/* at debug level the children say it too */
	h_finish(&p);
	h_shell(&p,
		"printf 'version: 1\\nlog: {level: debug}\\nrules: []\\n' > \"$LOG.policy\"\n"
		"$CP run -p \"$LOG.policy\" -l \"$LOG\" -- /bin/sh -c '/bin/true; /bin/true; /bin/true; :'\n",
		out, sizeof out);
	assert_true(h_log_count(&p, "event=policy", "outcome=loaded", NULL) >= 4);
	h_finish(&p);
}

/* log.rate 2: of 12 risky closes in a burst, at most 2 lines a second are written; the others
 * are counted in `suppressed` lines (the last at exit) and, exactly, in the counters. */
static void test_log_rate(void **state)
{
	(void)state;
	struct h_rundir rd;
	h_rundir_make(&rd);
	struct h_proc p;
	h_spawn(&p, "version: 1\nlog: {rate: 2}\nrules:\n  - name: web\n    match: {role: server}\n", rd.env,
		"step_server", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	enum { N = 12 };
	for (int i = 0; i < N; i++) {
		int peer = h_connect(port, 0);
		h_send_all(peer, "hello and more", 14); /* 9 bytes stay unread: a risky close */
		h_sayf(&p, "serve 5 10");
		char line[64];
		h_line(&p, line, sizeof line, 5000);
		int fd = atoi(line + strlen("served "));
		h_sayf(&p, "close %d", fd);
		h_answer(&p, "close %d = 0 0", fd);
		close(peer);
	}
	char cmd[64], out[16384];
	snprintf(cmd, sizeof cmd, "stat --json %d", (int)p.pid);
	assert_int_equal(h_cp(&rd, cmd, out, sizeof out), 0);
	assert_int_equal(h_json_num(out, "risk"), N);
	assert_true(h_json_num(out, "log_dropped") > 0);
	h_say(&p, "exit");
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	int written = h_log_count(&p, "event=risk", NULL);
	assert_true(written < N);
	long suppressed = 0;
	char *log = h_log(&p);
	for (char *s = log; (s = strstr(s, "event=suppressed kind=risk count=")) != NULL; s++)
		suppressed += atol(s + strlen("event=suppressed kind=risk count="));
	free(log);
	assert_int_equal(written + suppressed, N);
	h_finish(&p);
	h_rundir_remove(&rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_policy_line_per_run),
		cmocka_unit_test(test_log_rate),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
