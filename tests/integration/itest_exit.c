/* Exit paths: exit(), return from main, _exit() and _Exit() with a socket still open that holds
 * unread data and has a 4 MiB reply in flight. on_exit graceful: the peer gets everything, then
 * EOF; on_exit passthrough: RST (the test is meaningful). Background drains finish at exit; a
 * peer that never closes cannot hold the process past exit_wait. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static const char *const ENDS[] = {"exit", "return", "_exit", "_Exit"};

static int port_of(struct h_proc *p)
{
	char line[64];
	h_line(p, line, sizeof line, 5000);
	return atoi(line);
}

/* Read all but the reply's last 256 KiB, wait until the exit path has logged the close (and,
 * with until_exit, until the process has ended: a socket left as it is is closed by the kernel's
 * close at exit, as without the shim), then read the rest: the tail is still queued at the
 * server when the process ends. */
static struct h_read request(struct h_proc *p, int fd, bool until_exit)
{
	char req[100];
	memset(req, 'r', sizeof req);
	h_send_all(fd, req, sizeof req);
	struct h_read head = h_read_upto(fd, H_MB4 - 256 * 1024, 20000);
	if (head.err == 0)
		free(h_log_wait(p, 10000, "event=close", "process exit", NULL));
	if (head.err == 0 && until_exit)
		(void)h_wait(p, 10000);
	struct h_read r = h_read_to_end(fd, 20000);
	r.bytes += head.bytes;
	r.err = head.err ? head.err : r.err;
	return r;
}

static void run_end(const char *end, const char *on_exit, struct h_read *r, int *status, struct h_proc *p)
{
	char policy[256];
	snprintf(policy, sizeof policy,
		 "version: 1\nrules:\n  - name: web\n    match: {role: server}\n"
		 "    action: passthrough\n    on_exit: %s\n", on_exit);
	h_spawn(p, policy, NULL, "demo_server", "--read", "5", "--end", end, "--status", "3", NULL);
	int fd = h_connect(port_of(p), 65536);
	*r = request(p, fd, strcmp(on_exit, "passthrough") == 0);
	close(fd);
	*status = h_wait(p, 10000);
}

static void test_on_exit_graceful_delivers(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof ENDS / sizeof *ENDS; i++) {
		struct h_proc p;
		struct h_read r;
		int st;
		run_end(ENDS[i], "graceful", &r, &st, &p);
		if (r.err != 0 || r.bytes != (uint64_t)H_MB4)
			fail_msg("%s: peer got %llu bytes, error %s", ENDS[i], (unsigned long long)r.bytes,
				 strerror(r.err));
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 3); /* the program's own status */
		assert_int_equal(h_log_count(&p, "event=close", "action=graceful", "process exit", NULL), 1);
		assert_int_equal(h_log_count(&p, "event=drain", "outcome=eof", "bytes=95", NULL), 1);
		h_finish(&p);
	}
}

static void test_on_exit_passthrough_resets(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof ENDS / sizeof *ENDS; i++) {
		struct h_proc p;
		struct h_read r;
		int st;
		run_end(ENDS[i], "passthrough", &r, &st, &p);
		if (r.err != ECONNRESET || r.bytes >= (uint64_t)H_MB4)
			fail_msg("%s: peer got %llu bytes, error %s; want RST and a lost tail", ENDS[i],
				 (unsigned long long)r.bytes, strerror(r.err));
		assert_true(WIFEXITED(st));
		assert_int_equal(WEXITSTATUS(st), 3);
		assert_int_equal(h_log_count(&p, "event=risk", "unread=95", NULL), 1);
		h_finish(&p);
	}
}

/* The program closes (graceful, handed to the drainer thread) and returns from main at once;
 * the peer closes only after that: the drain still ends with the peer's EOF. */
static void test_background_drain_finishes_at_exit(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - {name: web, match: {role: server}, action: graceful}\n",
		NULL, "demo_server", "--read", "5", "--write", "100000", "--end", "close", NULL);
	int fd = h_connect(port_of(&p), 0);
	char req[100];
	memset(req, 'r', sizeof req);
	h_send_all(fd, req, sizeof req);
	struct h_read r = h_read_to_end(fd, 10000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, 100000);
	close(fd); /* only now can the drain see EOF */
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(h_log_count(&p, "event=drain", "outcome=eof", "bytes=95", NULL), 1);
	h_finish(&p);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* A peer that reads everything and never closes: the process ends after exit_wait (1 s), with
 * its own status, and the log says the drain was cut by the exit. */
static void test_peer_never_closes(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p,
		"version: 1\nexit_wait: 1s\nrules:\n  - name: web\n    match: {role: server}\n"
		"    action: passthrough\n    on_exit: graceful\n    drain_timeout: 30s\n",
		NULL, "demo_server", "--read", "100", "--write", "1000", "--end", "_exit", "--status", "7", NULL);
	int fd = h_connect(port_of(&p), 0);
	char req[100];
	memset(req, 'r', sizeof req);
	h_send_all(fd, req, sizeof req);
	struct h_read r = h_read_to_end(fd, 10000); /* EOF: the exit path shut the sending side */
	double t0 = now_s();
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, 1000);
	int st = h_wait(&p, 10000);
	double waited = now_s() - t0;
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 7);
	if (waited > 1.0 + 1.5)
		fail_msg("the process took %.2f s to exit after the EOF; exit_wait is 1 s", waited);
	assert_int_equal(h_log_count(&p, "event=drain", "outcome=exit", NULL), 1);
	close(fd);
	h_finish(&p);
}

/* At exit, a socket left as it is (passthrough) is closed by the kernel's close at exit, not by
 * the shim (a system call less in every forked child); but never held behind a drain that makes
 * the process wait: here the client socket's peer sees EOF while the server socket's graceful
 * on_exit still waits for its peer, which closes only after that. */
static void test_passthrough_not_held_behind_exit_drain(void **state)
{
	(void)state;
	int lport = 0;
	int lst = h_listen(&lport);
	struct h_proc p;
	int port = h_step_server(&p, "version: 1\nexit_wait: 20s\nrules:\n"
				     "  - {name: web, match: {role: server}, action: passthrough, on_exit: graceful,"
				     " drain_timeout: 20s}\n"
				     "  - {name: out, match: {role: client}, action: passthrough}\n");
	int a = h_connect(port, 0);
	char line[64];
	h_say(&p, "serve 5 1000");
	h_send_all(a, "hello", 5);
	h_expect_line(&p, "served ", line, sizeof line);
	h_sayf(&p, "connect %d", lport);
	h_expect_line(&p, "connected ", line, sizeof line);
	int b = accept(lst, NULL, NULL);
	assert_true(b >= 0);
	h_say(&p, "exit");
	struct h_read rb = h_read_to_end(b, 10000); /* the client socket: closed before the wait */
	assert_int_equal(rb.err, 0);
	assert_int_equal(rb.bytes, 0);
	assert_int_equal(waitpid(p.pid, NULL, WNOHANG), 0); /* still draining the server socket */
	struct h_read ra = h_read_to_end(a, 10000); /* the reply, then the exit path's FIN */
	assert_int_equal(ra.err, 0);
	assert_int_equal(ra.bytes, 1000);
	close(a);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(h_log_count(&p, "event=drain", "outcome=eof", NULL), 1);
	close(b);
	close(lst);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_on_exit_graceful_delivers),
		cmocka_unit_test(test_on_exit_passthrough_resets),
		cmocka_unit_test(test_background_drain_finishes_at_exit),
		cmocka_unit_test(test_peer_never_closes),
		cmocka_unit_test(test_passthrough_not_held_behind_exit_drain),
	};
	return cmocka_run_group_tests_name("exit", tests, NULL, NULL);
}
