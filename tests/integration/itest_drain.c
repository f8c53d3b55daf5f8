/* The background drain's limits: a peer that never closes is cut after drain_timeout of silence,
 * one that keeps talking after drain_max; past max_draining, close() drains before returning;
 * a socket dup'd is acted on once, at its last close; a program that shut down its sending side
 * itself is only drained. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int server_port;

static int request(int port)
{
	int fd = h_connect(port, 0);
	char req[100];
	memset(req, 'r', sizeof req);
	h_send_all(fd, req, sizeof req);
	return fd;
}

static int connect_and_request(struct h_proc *p)
{
	server_port = (int)h_expect(p, "port ", 5000);
	return request(server_port);
}

static void test_silent_peer_cut_at_drain_timeout(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - action: graceful\n    drain_timeout: 300ms\n    drain_max: 20s\n",
		NULL, "reply_server", "-n", "5", "-w", "1000", "-x", NULL);
	int fd = connect_and_request(&p);
	struct h_read r = h_read_to_end(fd, 5000); /* all of it, then the shim's FIN */
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, 1000);
	/* stay open and silent */
	char *line = h_log_wait(&p, 5000, "event=drain", NULL);
	assert_non_null(line);
	assert_non_null(strstr(line, "outcome=idle"));
	long ms = h_field(line, "ms");
	assert_true(ms >= 250 && ms < 2000);
	assert_int_equal(h_field(line, "bytes"), 95);
	free(line);
	close(fd);
	h_exit_ok(&p);
}

static void test_talkative_peer_cut_at_drain_max(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - action: graceful\n    drain_timeout: 400ms\n    drain_max: 1s\n",
		NULL, "reply_server", "-n", "5", "-w", "1000", "-x", NULL);
	int fd = connect_and_request(&p);
	struct h_read r = h_read_to_end(fd, 5000);
	assert_int_equal(r.err, 0);
	/* keep talking, a byte every 100 ms (the log wait paces it), until the shim gives up */
	char *line = NULL;
	for (int i = 0; i < 50 && line == NULL; i++) {
		if (send(fd, "x", 1, MSG_NOSIGNAL) < 0)
			break;
		line = h_log_wait(&p, 100, "event=drain", NULL);
	}
	if (line == NULL)
		line = h_log_wait(&p, 2000, "event=drain", NULL);
	assert_non_null(line);
	assert_non_null(strstr(line, "outcome=max"));
	long ms = h_field(line, "ms");
	assert_true(ms >= 950 && ms < 3000);
	free(line);
	close(fd);
	h_exit_ok(&p);
}

/* max_draining 1: the first connection drains in the background (its peer stays silent), the
 * second is drained by close() itself, on the program's own thread. */
static void test_max_draining_drains_synchronously(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nmax_draining: 1\nrules:\n  - action: graceful\n    drain_timeout: 10s\n",
		NULL, "reply_server", "-n", "5", "-w", "1000", "-k", "2", "-x", NULL);
	int a = connect_and_request(&p);
	h_expect(&p, "closed ", 5000);
	struct h_read r = h_read_to_end(a, 5000);
	assert_int_equal(r.err, 0);
	int b = request(server_port);
	r = h_read_to_end(b, 5000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, 1000);
	close(b); /* ends the synchronous drain */
	h_expect(&p, "closed ", 5000);
	char pidstr[32];
	snprintf(pidstr, sizeof pidstr, "tid=%d ", (int)p.pid);
	/* drained by the program's main thread, inside close() */
	assert_int_equal(h_log_count(&p, "event=drain", "outcome=eof", pidstr, NULL), 1);
	assert_int_equal(h_log_count(&p, "event=drain", NULL), 1); /* a is still draining */
	close(a);
	char *line = h_log_wait(&p, 5000, "event=drain", "outcome=eof", "bytes=95", NULL);
	assert_non_null(line);
	free(line);
	h_exit_ok(&p);
}

static void test_dup_acts_once_at_last_close(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - action: graceful\n", NULL, "reply_server", "-n", "5", "-d", "-x",
		NULL);
	int fd = connect_and_request(&p);
	struct h_read r = h_read_to_end(fd, 20000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, (uint64_t)H_MB4);
	close(fd);
	char *line = h_log_wait(&p, 5000, "event=drain", NULL);
	assert_non_null(line);
	free(line);
	assert_int_equal(h_log_count(&p, "event=close", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=drain", NULL), 1);
	h_exit_ok(&p);
}

static void test_program_shutdown_then_graceful(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - action: graceful\n", NULL, "reply_server", "-n", "5", "-s", "-x",
		NULL);
	int fd = connect_and_request(&p);
	struct h_read r = h_read_to_end(fd, 20000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, (uint64_t)H_MB4);
	close(fd);
	char *line = h_log_wait(&p, 5000, "event=drain", "outcome=eof", NULL);
	assert_non_null(line);
	free(line);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 0);
	h_exit_ok(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_silent_peer_cut_at_drain_timeout),
		cmocka_unit_test(test_talkative_peer_cut_at_drain_max),
		cmocka_unit_test(test_max_draining_drains_synchronously),
		cmocka_unit_test(test_dup_acts_once_at_last_close),
		cmocka_unit_test(test_program_shutdown_then_graceful),
	};
	return cmocka_run_group_tests_name("drain", tests, NULL, NULL);
}
