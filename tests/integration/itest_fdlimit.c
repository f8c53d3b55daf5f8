/* RLIMIT_NOFILE reached: a graceful close needs descriptors of the shim's own (its copy of the
 * socket; the drainer's epoll set and eventfd the first time). Without them the shim drains in
 * the program's close() instead, says so with one `error` event, and the peer still gets every
 * byte and EOF. The program's number is released exactly once: the next open() gets it back, and
 * it stays the program's (a second close by the shim would take it away). */
#include "harness.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLICY "version: 1\nrules:\n  - name: web\n    action: graceful\n    drain_timeout: 20s\n"
#define REQUEST 100
#define UNREAD 1000 /* left unread by the server: a plain close would answer with RST */
#define REPLY 65536
#define LIMIT 64

static int request(int port)
{
	int fd = h_connect(port, 0);
	char req[REQUEST + UNREAD];
	memset(req, 'r', sizeof req);
	h_send_all(fd, req, sizeof req);
	return fd;
}

/* Serve one connection, then fill the descriptor table, giving `spare` numbers back; close the
 * connection: the shim cannot hand it to the drainer. Checks everything but the error event. */
static void close_at_the_limit(struct h_proc *p, int spare)
{
	h_spawn(p, POLICY, NULL, "step_server", NULL);
	int port = (int)h_expect(p, "port ", 5000);
	int peer = request(port);
	h_sayf(p, "serve %d %d", REQUEST, REPLY);
	long fd = h_expect(p, "served ", 5000);
	h_sayf(p, "fill %d", LIMIT);
	assert_true(h_expect(p, "fill ", 5000) > 0);
	h_say(p, "open /dev/null");
	h_answer(p, "open = -1"); /* full indeed */
	for (int i = 0; i < spare; i++) { /* the fill's last descriptors */
		h_sayf(p, "close %d", LIMIT - 1 - i);
		h_answer(p, "close %d = 0 0", LIMIT - 1 - i);
	}

	/* close() drains before it returns: the peer reads everything, then the shim's FIN */
	h_sayf(p, "close %ld", fd);
	struct h_read r = h_read_to_end(peer, 10000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, REPLY);
	close(peer);
	h_answer(p, "close %ld = 0 0", fd);

	/* drained by the program's own thread, inside close() */
	char tid[32];
	snprintf(tid, sizeof tid, "tid=%d ", (int)p->pid);
	assert_int_equal(h_log_count(p, "event=drain", "outcome=eof", tid, NULL), 1);
	assert_int_equal(h_log_count(p, "event=close", "action=graceful", NULL), 1);

	/* Exactly the spare numbers and the connection's are free again: none kept by the shim, and
	 * each stays the program's once reopened (a second close by the shim would take it away). */
	long reopened[8];
	for (int i = 0; i <= spare; i++) {
		h_say(p, "open /dev/null");
		reopened[i] = h_expect(p, "open = ", 5000);
		assert_true(reopened[i] == fd || reopened[i] >= LIMIT - spare);
	}
	h_say(p, "open /dev/null");
	h_answer(p, "open = -1");
	for (int i = 0; i <= spare; i++) {
		h_sayf(p, "check %ld", reopened[i]);
		h_answer(p, "check %ld open", reopened[i]);
	}

	h_say(p, "unfill");
	h_answer(p, "unfill done");
	h_say(p, "exit");
	int st = h_wait(p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

/* No number free at all: the shim's copy of the socket cannot be made. */
static void test_no_descriptor_for_the_copy(void **state)
{
	(void)state;
	struct h_proc p;
	close_at_the_limit(&p, 0);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=error", "errno=EMFILE", "no descriptor for a background drain",
				     "instead=\"drained before close returned\"", NULL),
			 1);
	h_finish(&p);
}

/* One number free: the copy takes it; the program's number, released next, is then the only one
 * free, so the drainer's epoll set (the first graceful close of the process creates it) lands
 * there and cannot move up among the shim's numbers. The epoll set must be closed again, not left
 * behind in the program's range; the drain event names the program's number, not the shim's copy. */
static void test_no_descriptor_for_the_drainer(void **state)
{
	(void)state;
	struct h_proc p;
	close_at_the_limit(&p, 1);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=error", "errno=EMFILE", "drainer", NULL), 1);
	char *log = h_log(&p);
	char *drain = strstr(log, "event=drain");
	assert_non_null(drain);
	char *close_line = strstr(log, "event=close");
	assert_non_null(close_line);
	assert_int_equal(h_field(drain, "fd"), h_field(close_line, "fd"));
	free(log);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_descriptor_for_the_copy),
		cmocka_unit_test(test_no_descriptor_for_the_drainer),
	};
	return cmocka_run_group_tests_name("fdlimit", tests, NULL, NULL);
}
