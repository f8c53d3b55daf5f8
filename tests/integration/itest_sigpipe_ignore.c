/* `sigpipe: ignore`: no SIGPIPE for writes to sockets and pipes — the writer survives and the call
 * returns -1/EPIPE (logged) — whatever the program's disposition or signal mask. A SIGPIPE that
 * is no write's (kill() by another process) still meets the program's own disposition. */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *const POLICY = "version: 1\nsigpipe: ignore\n";

/* The writer survives, gets EPIPE, its handler is never called; one epipe event says why. */
static void survives(const char *disp, const char *target, const char *call, const char *extra)
{
	struct h_proc p;
	char want[128], needle[64];
	h_spawn(&p, POLICY, NULL, "sigpipe_prog", "-d", disp, "-t", target, "-c", call, "-n", "2", extra,
		NULL);
	snprintf(want, sizeof want, "call %s result -1 errno EPIPE", call);
	h_expect_exact(&p, want);
	h_expect_exact(&p, want);
	if (extra != NULL && strcmp(extra, "-b") == 0)
		h_expect_exact(&p, "pending 0");
	h_expect_exact(&p, "handler calls 0 signo 0 code 0 pid_ok 0 tid_ok 0");
	h_expect_done_exit_0(&p);
	snprintf(needle, sizeof needle, "call=%s ", call);
	assert_int_equal(h_log_count(&p, "event=epipe", needle, "errno=EPIPE",
				     "message=\"no SIGPIPE delivered (sigpipe: ignore)\"", NULL),
			 2);
	assert_int_equal(h_log_count(&p, "event=sigpipe", NULL), 0);
	h_finish(&p);
}

static void test_socket_writer_survives(void **state)
{
	(void)state;
	survives("default", "socket", "write", NULL);
	survives("default", "socket", "send", NULL);
	survives("siginfo", "socket", "writev", NULL);
	survives("handler", "socket", "sendmmsg", NULL);
	survives("default", "socket", "sendfile", "-T");
}

static void test_pipe_writer_survives(void **state)
{
	(void)state;
	survives("default", "pipe", "write", NULL);
	survives("siginfo", "pipe", "writev", NULL);
	survives("handler", "pipe", "splice", "-T");
	survives("default", "pipe", "sendfile", NULL);
}

/* A thread that blocks SIGPIPE: none is left pending for it. */
static void test_blocked_nothing_pending(void **state)
{
	(void)state;
	survives("default", "pipe", "write", "-b");
	survives("siginfo", "socket", "write", "-b");
}

/* stdio's writes do not go through the wrappers: their SIGPIPE is dropped by the handler. */
static void test_stdio_writer_survives(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, POLICY, NULL, "sigpipe_prog", "-c", "stdio", NULL);
	h_expect_exact(&p, "call stdio result -1 errno EPIPE");
	h_expect_done_exit_0(&p);
	assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=ignore", "message=\"dropped", NULL),
			 1);
	h_finish(&p);
}

/* kill() by another process is no write: the program's SIG_DFL still kills it, after the log. */
static void test_kill_still_kills(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, POLICY, NULL, "sigpipe_prog", "-t", "wait", NULL);
	h_expect_exact(&p, "ready");
	assert_int_equal(kill(p.pid, SIGPIPE), 0);
	int st = h_wait(&p, 10000);
	assert_true(WIFSIGNALED(st));
	assert_int_equal(WTERMSIG(st), SIGPIPE);
	assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=default", "sender_pid=", NULL), 1);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socket_writer_survives),
		cmocka_unit_test(test_pipe_writer_survives),
		cmocka_unit_test(test_blocked_nothing_pending),
		cmocka_unit_test(test_stdio_writer_survives),
		cmocka_unit_test(test_kill_still_kills),
	};
	return cmocka_run_group_tests_name("sigpipe_ignore", tests, NULL, NULL);
}
