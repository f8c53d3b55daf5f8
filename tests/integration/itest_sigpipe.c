/* SIGPIPE with `sigpipe: log` (the default): every program behaves exactly as without the shim —
 * killed by SIGPIPE where it would have been (exit status 141 in a shell), EPIPE where it ignores
 * SIGPIPE, its handler called once, in the writing thread, with the kernel's siginfo — and the
 * log has one `sigpipe` event per SIGPIPE and one `epipe` event per failed call. The program
 * reads back its own disposition, never the shim's handler. */
#include "harness.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* "peer 127.0.0.1:PORT" -> the log's "peer=127.0.0.1:PORT " */
static void expect_peer(struct h_proc *p, char *needle, size_t size)
{
	char line[128];
	h_expect_line(p, "peer ", line, sizeof line);
	snprintf(needle, size, "peer=%.40s ", line + 5);
}

static void expect_killed_by_sigpipe(struct h_proc *p)
{
	int st = h_wait(p, 10000);
	if (!WIFSIGNALED(st) || WTERMSIG(st) != SIGPIPE)
		fail_msg("wanted death by SIGPIPE, got wait status %#x; log:\n%s", st, h_log(p));
}

static void test_program_writing_to_a_pipe_still_dies(void **state)
{
	(void)state;
	struct h_proc p;
	char out[64];
	h_shell(&p, "\"$CP\" run -l \"$LOG\" -- \"$PROG\" -t stdout -c writev | head -c 1 >/dev/null;"
		     " echo ${PIPESTATUS[0]}",
		 out, sizeof out);
	assert_string_equal(out, "141\n");
	assert_int_equal(h_log_count(&p, "event=epipe", "fd=1 ", "call=writev", "bytes=100 ", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=default", "call=writev", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=", NULL), 2);
	h_finish(&p);
}

/* SIG_IGN: EPIPE returned, the program lives on, one epipe event naming the call and the peer. */
static void test_ignoring_program_gets_epipe(void **state)
{
	(void)state;
	static const char *const calls[] = { "send", "write" };
	for (size_t i = 0; i < 2; i++) {
		struct h_proc p;
		char peer[64], want[64];
		h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "ignore", "-t", "socket", "-c", calls[i], NULL);
		expect_peer(&p, peer, sizeof peer);
		snprintf(want, sizeof want, "call %s result -1 errno EPIPE", calls[i]);
		h_expect_exact(&p, want);
		h_expect_exact(&p, "handler calls 0 signo 0 code 0 pid_ok 0 tid_ok 0");
		h_expect_done_exit_0(&p);
		char call[32];
		snprintf(call, sizeof call, "call=%s ", calls[i]);
		assert_int_equal(h_log_count(&p, "event=epipe", NULL), 1);
		assert_int_equal(h_log_count(&p, "event=epipe", "fd=", call, peer, "errno=EPIPE", NULL), 1);
		/* the kernel's SIGPIPE was sent and ignored: said once */
		assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=ignore", call, NULL), 1);
		h_finish(&p);
	}
}

/* An SA_SIGINFO handler: called once, in the writing thread, with SIGPIPE and the kernel's
 * siginfo (SI_USER, this process) — for a socket (re-delivered by the shim) and a pipe (the
 * kernel's own, through the shim's handler). */
static void test_siginfo_handler_called_once(void **state)
{
	(void)state;
	static const char *const targets[] = { "socket", "pipe" };
	for (size_t i = 0; i < 2; i++) {
		for (int threaded = 0; threaded < 2; threaded++) {
			struct h_proc p;
			/* (without -T, the NULL ends the argument list there) */
			h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "siginfo", "-t", targets[i], "-c", "write",
				threaded ? "-T" : NULL, NULL);
			h_expect_exact(&p, "call write result -1 errno EPIPE");
			h_expect_exact(&p, "handler calls 1 signo 13 code 0 pid_ok 1 tid_ok 1");
			h_expect_done_exit_0(&p);
			assert_int_equal(h_log_count(&p, "event=epipe", "call=write", NULL), 1);
			assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=handler", "call=write",
						     NULL),
					 1);
			assert_int_equal(h_log_count(&p, "event=", NULL), 2);
			h_finish(&p);
		}
	}
}

/* Installed after the shim loaded, read back, replaced and restored: always the program's own. */
static void test_program_reads_back_its_own_disposition(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "readback", "-t", "pipe", NULL);
	h_expect_exact(&p, "readback checked");
	h_expect_exact(&p, "call write result -1 errno EPIPE");
	h_expect_exact(&p, "handler calls 1 signo 13 code 0 pid_ok 1 tid_ok 1");
	h_expect_done_exit_0(&p);
	h_finish(&p);
}

static void test_signal_installed_handler_works(void **state)
{
	(void)state;
	static const char *const targets[] = { "socket", "pipe" };
	for (size_t i = 0; i < 2; i++) {
		struct h_proc p;
		h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "signal", "-t", targets[i], NULL);
		h_expect_exact(&p, "call write result -1 errno EPIPE");
		h_expect_exact(&p, "handler calls 1 signo 13 code 0 pid_ok 0 tid_ok 1");
		h_expect_done_exit_0(&p);
		assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=handler", NULL), 1);
		h_finish(&p);
	}
}

/* sysv_signal (SA_RESETHAND): the handler once, then SIG_DFL: the second SIGPIPE kills. */
static void test_resethand_second_sigpipe_kills(void **state)
{
	(void)state;
	static const char *const targets[] = { "socket", "pipe" };
	for (size_t i = 0; i < 2; i++) {
		struct h_proc p;
		h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "sysv", "-t", targets[i], "-n", "2", NULL);
		h_expect_exact(&p, "call write result -1 errno EPIPE");
		expect_killed_by_sigpipe(&p);
		assert_int_equal(h_log_count(&p, "event=epipe", "call=write", NULL), 2);
		assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=handler", NULL), 1);
		assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=default", NULL), 1);
		h_finish(&p);
	}
}

/* kill(): logged with the sender, then the program's disposition: death by SIGPIPE... */
static void test_kill_default_logged_then_dies(void **state)
{
	(void)state;
	struct h_proc p;
	char sender[32];
	h_spawn(&p, NULL, NULL, "sigpipe_prog", "-t", "wait", NULL);
	h_expect_exact(&p, "ready");
	assert_int_equal(kill(p.pid, SIGPIPE), 0);
	expect_killed_by_sigpipe(&p);
	snprintf(sender, sizeof sender, "sender_pid=%d ", (int)getpid());
	assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=default", sender, NULL), 1);
	assert_int_equal(h_log_count(&p, "event=", NULL), 1);
	h_finish(&p);
}

/* ... or its handler, with the sender's siginfo. */
static void test_kill_handler_called(void **state)
{
	(void)state;
	struct h_proc p;
	char sender[32];
	h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "siginfo", "-t", "wait", NULL);
	h_expect_exact(&p, "ready");
	snprintf(sender, sizeof sender, "sender_pid=%d ", (int)getpid());
	assert_int_equal(kill(p.pid, SIGPIPE), 0);
	char *line = h_log_wait(&p, 10000, "event=sigpipe", NULL);
	assert_non_null(line);
	free(line);
	h_say(&p, "report");
	h_expect_exact(&p, "handler calls 1 signo 13 code 0 pid_ok 0");
	close(p.in);
	p.in = -1;
	h_expect_done_exit_0(&p);
	assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=handler", sender, NULL), 1);
	h_finish(&p);
}

/* SIGPIPE blocked by the program: it stays pending as without the shim, and is logged once. */
static void test_blocked_sigpipe_pending_and_logged_once(void **state)
{
	(void)state;
	static const char *const targets[] = { "socket", "pipe" };
	for (size_t i = 0; i < 2; i++) {
		struct h_proc p;
		h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "siginfo", "-t", targets[i], "-b", NULL);
		h_expect_exact(&p, "call write result -1 errno EPIPE");
		h_expect_exact(&p, "pending 1");
		h_expect_exact(&p, "handler calls 1 signo 13 code 0 pid_ok 1 tid_ok 1");
		h_expect_done_exit_0(&p);
		assert_int_equal(h_log_count(&p, "event=epipe", "call=write", NULL), 1);
		assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=handler", NULL), 1);
		h_finish(&p);
	}
	struct h_proc p; /* and SIG_DFL: death when the thread unblocks it */
	h_spawn(&p, NULL, NULL, "sigpipe_prog", "-t", "pipe", "-b", NULL);
	h_expect_exact(&p, "pending 1");
	expect_killed_by_sigpipe(&p);
	assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=default", NULL), 1);
	h_finish(&p);
}

/* Writes the shim does not see (stdio's internal write, a raw syscall): the handler logs them. */
static void test_unwrapped_writes_logged_by_the_handler(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, NULL, NULL, "sigpipe_prog", "-c", "stdio", NULL);
	expect_killed_by_sigpipe(&p);
	assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=default", "message=", NULL), 1);
	h_finish(&p);

	h_spawn(&p, NULL, NULL, "sigpipe_prog", "-d", "siginfo", "-c", "raw", NULL);
	h_expect_exact(&p, "call raw result -1 errno EPIPE");
	h_expect_exact(&p, "handler calls 1 signo 13 code 0 pid_ok 1 tid_ok 1");
	h_expect_done_exit_0(&p);
	assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=handler", NULL), 1);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_program_writing_to_a_pipe_still_dies),
		cmocka_unit_test(test_ignoring_program_gets_epipe),
		cmocka_unit_test(test_siginfo_handler_called_once),
		cmocka_unit_test(test_program_reads_back_its_own_disposition),
		cmocka_unit_test(test_signal_installed_handler_works),
		cmocka_unit_test(test_resethand_second_sigpipe_kills),
		cmocka_unit_test(test_kill_default_logged_then_dies),
		cmocka_unit_test(test_kill_handler_called),
		cmocka_unit_test(test_blocked_sigpipe_pending_and_logged_once),
		cmocka_unit_test(test_unwrapped_writes_logged_by_the_handler),
	};
	return cmocka_run_group_tests_name("sigpipe", tests, NULL, NULL);
}
