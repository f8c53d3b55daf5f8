/* Close-on-exec sockets across fork + exec: a server forks a child that execs a helper, learns
 * that the exec happened (a close-on-exec pipe reaching EOF) and closes the connection at once,
 * with a byte of the request unread. The child's reference goes before its exec, so the server's
 * close is the last one and the graceful policy acts every time: the peer reads every byte, then
 * EOF. Before, the child's reference was only dropped once the helper's shim started, and the
 * server's close was taken for "held elsewhere": a plain close, and the kernel's RST (10 of 10
 * runs at zero delay). */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RUNS 50
#define REPLY 100000

static void test_exec_race(void **state)
{
	(void)state;
	struct h_proc p;
	char runs[16];
	snprintf(runs, sizeof runs, "%d", RUNS);
	h_spawn(&p, "version: 1\nrules:\n  - name: web\n    match: {role: server}\n    action: graceful\n",
		NULL, "exec_race", runs, NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	char req[100];
	memset(req, 'q', sizeof req);
	for (int i = 0; i < RUNS; i++) {
		int fd = h_connect(port, 0);
		h_send_all(fd, req, sizeof req);
		struct h_read r = h_read_to_end(fd, 10000);
		assert_int_equal(r.err, 0); /* EOF, not ECONNRESET */
		assert_int_equal(r.bytes, REPLY);
		close(fd);
		assert_int_equal(h_expect(&p, "closed ", 5000), i);
	}
	h_expect(&p, "done", 5000);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char server[48];
	snprintf(server, sizeof server, "closepolicy[%d]", (int)p.pid);
	/* a close event each time, from the server, and every drain ended by the peer's EOF */
	assert_int_equal(h_log_count(&p, server, "event=close", "action=graceful", NULL), RUNS);
	for (int tries = 0; h_log_count(&p, server, "event=drain", NULL) < RUNS && tries < RUNS; tries++)
		free(h_log_wait(&p, 5000, server, "event=drain", NULL));
	assert_int_equal(h_log_count(&p, server, "event=drain", "outcome=eof", NULL), RUNS);
	assert_int_equal(h_log_count(&p, "event=close", NULL), RUNS);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 0);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_race),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
