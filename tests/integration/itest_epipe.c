/* epipe and econnreset events: every call of the write family, on sockets and pipes, names the
 * descriptor, the call, the bytes attempted and, for sockets, the peer; one event per failed call
 * and one sigpipe event per SIGPIPE, never two. `closepolicy report` counts what was written. */
#include "harness.h"

#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

/* Every call on a socket whose peer is gone: EPIPE, one event with call, bytes and peer. */
static void test_every_call_on_a_socket(void **state)
{
	(void)state;
	static const char *const calls[] = { "write", "writev", "send", "sendto", "sendmsg", "sendmmsg",
					     "sendfile", "splice" };
	for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
		struct h_proc p;
		char line[128], peer[64], want[64], call[32];
		h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "ignore", "-t", "socket", "-c", calls[i], NULL);
		h_expect_line(&p, "peer ", line, sizeof line);
		snprintf(peer, sizeof peer, "peer=%.40s ", line + 5);
		snprintf(want, sizeof want, "call %s result -1 errno EPIPE", calls[i]);
		h_expect_exact(&p, want);
		h_expect_done_exit_0(&p);
		snprintf(call, sizeof call, "call=%s ", calls[i]);
		if (h_log_count(&p, "event=epipe", "fd=", call, "bytes=100 ", "local=127.0.0.1:", peer,
				"errno=EPIPE", "program=sigpipe_prog", NULL) != 1)
			fail_msg("%s: no epipe event with fd, call, bytes, peer; log:\n%s", calls[i], h_log(&p));
		assert_int_equal(h_log_count(&p, "event=epipe", NULL), 1);
		h_finish(&p);
	}
}

/* Every call that can write to a pipe, with a handler: the call's SIGPIPE and its EPIPE. */
static void test_every_call_on_a_pipe(void **state)
{
	(void)state;
	static const char *const calls[] = { "write", "writev", "sendfile", "splice" };
	for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
		struct h_proc p;
		char want[64], call[32];
		h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "handler", "-t", "pipe", "-c", calls[i], NULL);
		snprintf(want, sizeof want, "call %s result -1 errno EPIPE", calls[i]);
		h_expect_exact(&p, want);
		h_expect_exact(&p, "handler calls 1 signo 13 code 0 pid_ok 0 tid_ok 1");
		h_expect_done_exit_0(&p);
		snprintf(call, sizeof call, "call=%s ", calls[i]);
		assert_int_equal(h_log_count(&p, "event=epipe", "fd=", call, "bytes=100 ", NULL), 1);
		assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=handler", call, NULL), 1);
		assert_int_equal(h_log_count(&p, "event=", NULL), 2);
		h_finish(&p);
	}
	/* send() on a pipe is ENOTSOCK, as without the shim, and nothing to log */
	struct h_proc p;
	h_spawn(&p, NULL, NULL, "sigpipe_prog", "-t", "pipe", "-c", "send", NULL);
	h_expect_exact(&p, "call send result -1 errno ENOTSOCK");
	h_expect_done_exit_0(&p);
	assert_int_equal(h_log_count(&p, "event=", NULL), 0);
	h_finish(&p);
}

/* The peer resets an established connection: ECONNRESET once, then EPIPE. */
static void test_econnreset(void **state)
{
	(void)state;
	int port, lfd = h_listen(&port);
	char target[32], peer[40];
	snprintf(target, sizeof target, "reset:%d", port);
	snprintf(peer, sizeof peer, "peer=127.0.0.1:%d ", port);
	struct h_proc p;
	h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "ignore", "-t", target, "-c", "send", "-n", "2", NULL);
	struct pollfd pf = { .fd = lfd, .events = POLLIN };
	assert_int_equal(poll(&pf, 1, 10000), 1);
	int s = accept(lfd, NULL, NULL);
	assert_true(s >= 0);
	struct linger lg = { 1, 0 };
	setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(s);
	h_expect_exact(&p, "call send result -1 errno ECONNRESET");
	h_expect_exact(&p, "call send result -1 errno EPIPE");
	h_expect_done_exit_0(&p);
	assert_int_equal(h_log_count(&p, "event=econnreset", "call=send ", peer, "errno=ECONNRESET", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=epipe", "call=send ", peer, NULL), 1);
	h_finish(&p);
	close(lfd);
}

/* Three failed calls: three epipe events and three sigpipe events, whichever path. */
static void test_one_event_per_occurrence(void **state)
{
	(void)state;
	static const char *const targets[] = { "socket", "pipe" };
	for (size_t i = 0; i < 2; i++) {
		struct h_proc p;
		h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "siginfo", "-t", targets[i], "-n", "3", NULL);
		h_expect_exact(&p, "handler calls 3 signo 13 code 0 pid_ok 1 tid_ok 1");
		h_expect_done_exit_0(&p);
		assert_int_equal(h_log_count(&p, "event=epipe", NULL), 3);
		assert_int_equal(h_log_count(&p, "event=sigpipe", NULL), 3);
		h_finish(&p);
	}
}

/* The JSON log of a run, and `closepolicy report` on it: its counts are the events written. */
static int count_json(const char *log, const char *event)
{
	char needle[64];
	snprintf(needle, sizeof needle, "\"event\":\"%s\"", event);
	int n = 0;
	for (const char *at = log; (at = strstr(at, needle)) != NULL; at++)
		n++;
	return n;
}

/* The count on the line of `name` in the section titled `title` of the report; -1 if absent. */
static long report_count(const char *report, const char *title, const char *name)
{
	const char *sec = strstr(report, title);
	if (sec == NULL)
		return -1;
	const char *end = strstr(sec, "\n\n");
	for (const char *l = strchr(sec, '\n'); l != NULL && (end == NULL || l < end); l = strchr(l + 1, '\n')) {
		const char *s = l + 1;
		while (*s == ' ')
			s++;
		size_t n = strlen(name);
		if (strncmp(s, name, n) == 0 && s[n] == ' ')
			return atol(s + n);
	}
	return -1;
}

static void test_report_counts_match(void **state)
{
	(void)state;
	struct h_proc p;
	const char *env[] = { "CLOSEPOLICY_FORMAT=json", NULL };
	h_spawn(&p, "version: 1\nlog: {level: info}\n", env, "sigpipe_prog", "-d", "handler", "-t",
		"socket", "-c", "send", "-n", "3", NULL);
	h_expect_exact(&p, "handler calls 3 signo 13 code 0 pid_ok 0 tid_ok 1");
	h_expect_done_exit_0(&p);
	char *log = h_log(&p);
	int epipe = count_json(log, "epipe"), sigpipe = count_json(log, "sigpipe"),
	    policy = count_json(log, "policy");
	free(log);
	assert_int_equal(epipe, 3);
	assert_int_equal(sigpipe, 3);
	assert_int_equal(policy, 1);

	char out[8192];
	int st = h_run((const char *[]){ h_build_path("closepolicy"), "report", p.log, NULL }, NULL, out,
		       sizeof out, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	char total[32];
	snprintf(total, sizeof total, ": %d events\n", epipe + sigpipe + policy);
	if (strstr(out, total) == NULL)
		fail_msg("report: no \"%s\" in:\n%s", total, out);
	assert_int_equal(report_count(out, "\nevents:", "epipe"), epipe);
	assert_int_equal(report_count(out, "\nevents:", "sigpipe"), sigpipe);
	assert_int_equal(report_count(out, "\nevents:", "policy"), policy);
	/* the hot spot: this program, this call, this peer (host): epipe and sigpipe together */
	assert_int_equal(report_count(out, "hot spots", "sigpipe_prog, send, 127.0.0.1"), epipe + sigpipe);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_call_on_a_socket),
		cmocka_unit_test(test_every_call_on_a_pipe),
		cmocka_unit_test(test_econnreset),
		cmocka_unit_test(test_one_event_per_occurrence),
		cmocka_unit_test(test_report_counts_match),
	};
	return cmocka_run_group_tests_name("epipe", tests, NULL, NULL);
}
