/* A socket given away over a UNIX socket (SCM_RIGHTS) is its receiver's: the sender's close —
 * of every copy, at exit too, by sendmsg or through syscall() — is a plain close. The test plays
 * the server: it waits for the receiver's "go", replies with REPLY bytes and its FIN, and reads
 * until the receiver has closed: every byte must reach the receiver, then EOF, and the server must see EOF
 * (an RST from a reset left on the shared socket would show as ECONNRESET). Without the rule
 * (before this fix) a graceful sender shut the sending side under the receiver (its "go" failed
 * with EPIPE) and a reset one left SO_LINGER {1, 0} for the receiver's close. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLY 300000

static const char *policy(const char *action)
{
	static char buf[512];
	snprintf(buf, sizeof buf,
		 "version: 1\nlog: {level: debug}\nrules:\n  - name: out\n    match: {role: client}\n"
		 "    action: %s\n    on_exit: %s\n    linger: 1s\n",
		 action, action);
	return buf;
}

static void serve_receiver(const char *action, const char *mode, const char *route)
{
	int port;
	int lfd = h_listen(&port);
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	struct h_proc p;
	h_spawn(&p, policy(action), NULL, "rights_pass", portstr, mode, route, NULL);
	int fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	char line[64];
	h_line(&p, line, sizeof line, 10000); /* "closed" or "exiting": the sender's copies go */
	assert_true(strcmp(line, "closed") == 0 || strcmp(line, "exiting") == 0);
	struct h_read go = h_read_upto(fd, 3, 10000); /* the receiver's "go\n" */
	assert_int_equal(go.err, 0);
	assert_int_equal(go.bytes, 3);
	static char reply[REPLY];
	memset(reply, 'r', sizeof reply);
	h_send_all(fd, reply, sizeof reply);
	shutdown(fd, SHUT_WR); /* the reply's end */
	struct h_read end = h_read_to_end(fd, 10000); /* the receiver read all, then closed */
	assert_int_equal(end.err, 0);
	assert_int_equal(end.bytes, 0);
	h_line(&p, line, sizeof line, 10000);
	char want[64];
	snprintf(want, sizeof want, "received %d eof", REPLY);
	assert_string_equal(line, want);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);

	/* the sender's last close says what it did; nothing drained, nothing reset, no error */
	char sender[48];
	snprintf(sender, sizeof sender, "closepolicy[%d]", (int)p.pid);
	char *close_line = h_log_wait(&p, 5000, sender, "event=close", "given away", NULL);
	assert_non_null(close_line);
	assert_non_null(strstr(close_line, "action=passthrough"));
	assert_non_null(strstr(close_line, "rule=out"));
	free(close_line);
	assert_int_equal(h_log_count(&p, "event=close", "given away", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=drain", NULL), 0);
	assert_int_equal(h_log_count(&p, "event=risk", NULL), 0);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 0);
	assert_int_equal(h_log_count(&p, "event=epipe", NULL), 0);
	if (strcmp(mode, "dup") == 0) /* the first copy's close: held by the other, at debug */
		assert_int_equal(h_log_count(&p, sender, "event=close", "another descriptor of this process",
					     NULL), 1);
	close(fd);
	close(lfd);
	h_finish(&p);
}

static void test_graceful_sender(void **state)
{
	(void)state;
	serve_receiver("graceful", "close", NULL);
}

static void test_reset_sender(void **state)
{
	(void)state;
	serve_receiver("reset", "close", NULL);
}

static void test_linger_sender(void **state)
{
	(void)state;
	serve_receiver("linger", "close", NULL);
}

static void test_dup_copies_given_away_too(void **state)
{
	(void)state;
	serve_receiver("reset", "dup", NULL);
}

static void test_exit_with_copy_open(void **state)
{
	(void)state;
	serve_receiver("reset", "exit", NULL);
}

/* sendmsg, dup and close through syscall(), as libuv makes them; sendmmsg */
static void test_syscall_route(void **state)
{
	(void)state;
	serve_receiver("graceful", "dup", "raw");
	serve_receiver("reset", "close", "raw");
}

static void test_sendmmsg(void **state)
{
	(void)state;
	serve_receiver("graceful", "close", "mmsg");
}

/* The receiver's write fails after the server's reset: its epipe event names the peer, which the
 * shim noted when the socket arrived (getpeername no longer answers by then). */
static void test_epipe_on_received_socket_names_peer(void **state)
{
	(void)state;
	int port;
	int lfd = h_listen(&port);
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	struct h_proc p;
	h_spawn(&p, policy("graceful"), NULL, "rights_pass", portstr, "epipe", NULL);
	int fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	struct h_read go = h_read_upto(fd, 3, 10000);
	assert_int_equal(go.bytes, 3);
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd); /* RST */
	char line[64];
	h_line(&p, line, sizeof line, 10000);
	assert_string_equal(line, "closed");
	h_line(&p, line, sizeof line, 10000);
	assert_string_equal(line, "received 0 ECONNRESET");
	h_line(&p, line, sizeof line, 10000);
	assert_string_equal(line, "write EPIPE");
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char peer[48];
	snprintf(peer, sizeof peer, "peer=127.0.0.1:%d", port);
	char *ev = h_log_wait(&p, 5000, "event=epipe", "call=write", NULL);
	assert_non_null(ev);
	assert_non_null(strstr(ev, peer));
	assert_non_null(strstr(ev, "local=127.0.0.1:"));
	free(ev);
	close(lfd);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_graceful_sender),
		cmocka_unit_test(test_reset_sender),
		cmocka_unit_test(test_linger_sender),
		cmocka_unit_test(test_dup_copies_given_away_too),
		cmocka_unit_test(test_exit_with_copy_open),
		cmocka_unit_test(test_syscall_route),
		cmocka_unit_test(test_sendmmsg),
		cmocka_unit_test(test_epipe_on_received_socket_names_peer),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
