/* Shared sockets (libclosepolicy(7), LAST-REFERENCE SEMANTICS): a policy acts once, at the socket's last close in any process.
 * A fork-per-connection server whose parent closes its copy right after fork: the child (or a
 * program it execs, or one spawned with posix_spawn) still delivers everything, then EOF. With
 * the cross-process counting switched off (the test-only CLOSEPOLICY_TEST_NO_SHARED_REFS=1) the
 * parent's close shuts the connection under the child: the peer gets EOF before any data, so
 * the test is known to be meaningful. dup'd copies closed in either order: one close, one
 * drain. Threads closing while another forks: every close acts, once, and nothing hangs. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define BYTES 200000
#define CONNS 5
static const char *const GRACEFUL = "version: 1\nrules:\n  - action: graceful\n";
static const char *const NO_REFS[] = { "CLOSEPOLICY_TEST_NO_SHARED_REFS=1", NULL };

/* Serve CONNS connections; each peer waits for the parent's close, then lets the child write. */
static void fork_server_delivers_all(const char *mode, const char *writer)
{
	struct h_proc p;
	char count[16];
	snprintf(count, sizeof count, "%d", CONNS);
	h_spawn(&p, GRACEFUL, NULL, "fork_server", "-k", count, mode, NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	for (int i = 0; i < CONNS; i++) {
		int fd = h_connect(port, 0);
		h_expect(&p, "closed ", 5000); /* the parent has closed its copy */
		h_send_all(fd, "go\n", 3);
		struct h_read r = h_read_to_end(fd, 10000);
		assert_int_equal(r.err, 0);
		assert_int_equal(r.bytes, BYTES); /* everything, then EOF */
		close(fd);
	}
	for (int i = 0; i < CONNS; i++)
		assert_int_equal(h_expect(&p, "child ", 5000), 0);
	h_expect(&p, "done", 5000);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	/* one close event per connection, each by the process that held the last reference */
	char parent[48], program[48];
	snprintf(parent, sizeof parent, "closepolicy[%d]", (int)p.pid);
	snprintf(program, sizeof program, "program=%s ", writer);
	assert_int_equal(h_log_count(&p, "event=close", NULL), CONNS);
	assert_int_equal(h_log_count(&p, "event=close", "action=graceful", program, NULL), CONNS);
	assert_int_equal(h_log_count(&p, "event=close", parent, NULL), 0);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 0);
	h_finish(&p);
}

/* The parent's close leaves the socket to its child: no action, and at debug level a close line
 * that says so, with the rule that did not act. */
static void test_held_elsewhere_is_logged_at_debug(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nlog: {level: debug}\nrules:\n  - name: web\n    action: graceful\n", NULL,
		"fork_server", "-k", "1", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	int fd = h_connect(port, 0);
	h_expect(&p, "closed ", 5000);
	h_send_all(fd, "go\n", 3);
	struct h_read r = h_read_to_end(fd, 10000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, BYTES);
	close(fd);
	assert_int_equal(h_expect(&p, "child ", 5000), 0);
	h_expect(&p, "done", 5000);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char parent[48];
	snprintf(parent, sizeof parent, "closepolicy[%d]", (int)p.pid);
	char *line = h_log_wait(&p, 5000, parent, "event=close", "held elsewhere", NULL);
	assert_non_null(line);
	assert_non_null(strstr(line, "rule=web"));
	assert_non_null(strstr(line, "another process"));
	free(line);
	/* the child's close acts: one close with the action, one drain */
	assert_int_equal(h_log_count(&p, "event=close", "action=graceful", "held elsewhere", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=drain", NULL), 1);
	h_finish(&p);
}

static void test_fork_child_delivers_all(void **state)
{
	(void)state;
	fork_server_delivers_all("-w200000", "fork_server");
}

static void test_exec_helper_delivers_all(void **state)
{
	(void)state;
	fork_server_delivers_all("-e", "fork_helper");
}

static void test_posix_spawn_helper_delivers_all(void **state)
{
	(void)state;
	fork_server_delivers_all("-p", "fork_helper");
}

/* The same server and policy, without the counting: the parent's close is taken for the last
 * one. The peer sees what that did (EOF before any data), then lets the child write: nothing of
 * the 200 000 bytes arrives. */
static void without_tracking_data_is_lost(const char *mode)
{
	struct h_proc p;
	h_spawn(&p, GRACEFUL, NO_REFS, "fork_server", "-k", "1", mode, NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	int fd = h_connect(port, 0);
	h_expect(&p, "closed ", 5000);
	struct h_read r = h_read_to_end(fd, 5000); /* the parent's graceful close: FIN now */
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, 0);
	if (send(fd, "go\n", 3, MSG_NOSIGNAL) == 3) {
		r = h_read_to_end(fd, 5000);
		assert_true(r.bytes < BYTES);
	}
	close(fd);
	long child = h_expect(&p, "child ", 5000);
	assert_true(child != 0); /* its writes failed (EPIPE / SIGPIPE) */
	h_wait(&p, 10000);
	char parent[48];
	snprintf(parent, sizeof parent, "closepolicy[%d]", (int)p.pid);
	assert_int_equal(h_log_count(&p, "event=close", parent, "action=graceful", NULL), 1);
	h_finish(&p);
}

static void test_fork_without_tracking_loses_data(void **state)
{
	(void)state;
	without_tracking_data_is_lost("-w200000");
}

static void test_exec_without_tracking_loses_data(void **state)
{
	(void)state;
	without_tracking_data_is_lost("-e");
}

static void dup_acts_once(const char *order)
{
	struct h_proc p;
	h_spawn(&p, GRACEFUL, NULL, "reply_server", "-n", "5", order, "-x", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	int fd = h_connect(port, 0);
	h_send_all(fd, "hello", 5);
	struct h_read r = h_read_to_end(fd, 20000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, (uint64_t)H_MB4);
	close(fd);
	char *line = h_log_wait(&p, 5000, "event=drain", "outcome=eof", NULL);
	assert_non_null(line);
	free(line);
	h_expect(&p, "closed ", 5000);
	assert_int_equal(h_log_count(&p, "event=close", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=drain", NULL), 1);
	h_say(&p, "exit");
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	h_finish(&p);
}

static void test_dup_copy_closed_first(void **state)
{
	(void)state;
	dup_acts_once("-d");
}

static void test_dup_original_closed_first(void **state)
{
	(void)state;
	dup_acts_once("-D");
}

/* 2000 connections reset by the server side while a third thread forks 100 times; each child
 * closes all it inherited. A close whose action was lost would give the client EOF. */
static void test_fork_under_load(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - {match: {role: server}, action: reset}\n", NULL, "fork_churn",
		"2000", "2", "100", NULL);
	assert_int_equal(h_expect(&p, "resets ", 60000), 2000);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(h_log_count(&p, "event=close", "role=server", "action=reset", NULL), 2000);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 0);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_fork_child_delivers_all),
		cmocka_unit_test(test_held_elsewhere_is_logged_at_debug),
		cmocka_unit_test(test_exec_helper_delivers_all),
		cmocka_unit_test(test_posix_spawn_helper_delivers_all),
		cmocka_unit_test(test_fork_without_tracking_loses_data),
		cmocka_unit_test(test_exec_without_tracking_loses_data),
		cmocka_unit_test(test_dup_copy_closed_first),
		cmocka_unit_test(test_dup_original_closed_first),
		cmocka_unit_test(test_fork_under_load),
	};
	return cmocka_run_group_tests_name("shared", tests, NULL, NULL);
}
