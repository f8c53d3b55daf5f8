/* A graceful close in a single-threaded process that forks drains without a thread
 * (libclosepolicy(7), GRACEFUL CLOSE): progs/fork_parent_last forks a child per connection that
 * writes the reply and exits with the connection open, so the parent's close is the last. The
 * peer gets every byte then EOF, its late bytes are read (the drain line's bytes, outcome eof),
 * no RST ever comes, and the server still has one thread after many connections. A silent peer
 * is cut after drain_timeout by the server's next call (outcome idle, never before that call);
 * a drain still on at exit is finished by the exit. */
#include "harness.h"

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLY 100000
#define LATE "the peer's late bytes, after the server's FIN"

static const char *const GRACEFUL = "version: 1\nrules:\n  - action: graceful\n    drain_timeout: 10s\n"
				    "    drain_max: 20s\n";

static int start(struct h_proc *p, const char *policy, const char *count)
{
	h_spawn(p, policy, NULL, "fork_parent_last", count, "100000", NULL);
	return (int)h_expect(p, "port ", 5000);
}

/* "peer=127.0.0.1:PORT " of the peer end fd, as the server's log names it. */
static const char *peer_of(int fd, char *buf, size_t size)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	assert_int_equal(getsockname(fd, (struct sockaddr *)&a, &len), 0);
	snprintf(buf, size, "peer=127.0.0.1:%d ", ntohs(a.sin_port));
	return buf;
}

/* One connection: the whole reply, then EOF (the server's FIN). */
static int served(int port)
{
	int fd = h_connect(port, 0);
	struct h_read r = h_read_to_end(fd, 10000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, REPLY);
	return fd;
}

static void send_late_and_finish(int fd)
{
	h_send_all(fd, LATE, strlen(LATE));
	assert_int_equal(shutdown(fd, SHUT_WR), 0);
}

/* No RST ever reached fd: no pending error, and a read still finds the plain EOF. */
static void never_reset(int fd)
{
	int err = -1;
	socklen_t len = sizeof err;
	assert_int_equal(getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len), 0);
	assert_int_equal(err, 0);
	char c;
	assert_int_equal(recv(fd, &c, 1, MSG_DONTWAIT), 0);
}

/* The drain line of the connection whose peer end is fd, with the outcome and the late bytes. */
static char *drain_line(struct h_proc *p, int fd, const char *outcome)
{
	char peer[64];
	char *line = h_log_wait(p, 10000, "event=drain", peer_of(fd, peer, sizeof peer), NULL);
	assert_non_null(line);
	if (strstr(line, outcome) == NULL)
		fail_msg("expected %s: %s", outcome, line);
	return line;
}

static void expect_one_thread_and_exit_0(struct h_proc *p)
{
	assert_int_equal(h_expect(p, "threads ", 10000), 1);
	int st = h_wait(p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

static void test_parent_last_drains_without_thread(void **state)
{
	(void)state;
	enum { N = 30 };
	struct h_proc p;
	int port = start(&p, GRACEFUL, "30");
	int fd[N];
	for (int i = 0; i < N; i++) {
		fd[i] = served(port);
		send_late_and_finish(fd[i]);
		if (i == 0)
			continue;
		/* read by the server's next calls: this connection's accept and fork at the latest */
		char *line = drain_line(&p, fd[i - 1], "outcome=eof");
		assert_int_equal(h_field(line, "bytes"), (long)strlen(LATE));
		free(line);
		never_reset(fd[i - 1]);
	}
	expect_one_thread_and_exit_0(&p);
	/* the last one, by the exit */
	free(drain_line(&p, fd[N - 1], "outcome=eof"));
	never_reset(fd[N - 1]);
	assert_int_equal(h_log_count(&p, "event=drain", "outcome=eof", NULL), N);
	assert_int_equal(h_log_count(&p, "event=close", "action=graceful", NULL), N);
	for (int i = 0; i < N; i++)
		close(fd[i]);
	h_finish(&p);
}

static void test_silent_peer_cut_by_a_later_call(void **state)
{
	(void)state;
	struct h_proc p;
	int port = start(&p, "version: 1\nrules:\n  - action: graceful\n    drain_timeout: 200ms\n"
			     "    drain_max: 20s\n", "3");
	int silent = served(port); /* stays open and silent */
	int second = served(port);
	send_late_and_finish(second);
	/* the server now waits in accept: past drain_timeout, nothing reaches the silent peer (no
	 * RST, no hang-up) and no call of the server's has come to end the drain */
	struct pollfd pf = { .fd = silent, .events = 0 };
	assert_int_equal(poll(&pf, 1, 500), 0);
	char peer[64];
	assert_int_equal(h_log_count(&p, "event=drain", peer_of(silent, peer, sizeof peer), NULL), 0);
	int third = served(port); /* its accept and fork end both drains */
	free(drain_line(&p, second, "outcome=eof"));
	char *line = drain_line(&p, silent, "outcome=idle");
	assert_true(h_field(line, "ms") >= 500);
	assert_int_equal(h_field(line, "bytes"), 0);
	free(line);
	never_reset(silent);
	send_late_and_finish(third);
	expect_one_thread_and_exit_0(&p);
	free(drain_line(&p, third, "outcome=eof"));
	close(silent);
	close(second);
	close(third);
	h_finish(&p);
}

static void test_exit_finishes_the_drain(void **state)
{
	(void)state;
	struct h_proc p;
	int port = start(&p, GRACEFUL, "1");
	int fd = served(port);
	/* the server has returned from main: its exit waits for this peer */
	assert_int_equal(h_expect(&p, "threads ", 10000), 1);
	assert_int_equal(waitpid(p.pid, NULL, WNOHANG), 0);
	send_late_and_finish(fd);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	char *line = drain_line(&p, fd, "outcome=eof");
	assert_int_equal(h_field(line, "bytes"), (long)strlen(LATE));
	free(line);
	never_reset(fd);
	close(fd);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parent_last_drains_without_thread),
		cmocka_unit_test(test_silent_peer_cut_by_a_later_call),
		cmocka_unit_test(test_exit_finishes_the_drain),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
