/* Programs that make their socket calls through syscall() (libuv closes with
 * syscall(SYS_close)): the shim sees them as it sees the C library's functions. A client makes
 * every call that way (raw_calls) and the test, as the server, asserts what the wire showed; a
 * real libuv server (uv_server) is closed under graceful and reset. A close the shim cannot see
 * (fclose of an fdopen'd socket, inside the C library) leaves a stale entry: at exit it is
 * dropped with a debug line, never reported as a close. Before this, each of these closes went
 * unseen: reset gave the peer EOF, graceful left the kernel's RST, and the exit path reported
 * closes of descriptors that were no longer open. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *policy(const char *action, const char *level)
{
	static char buf[512];
	snprintf(buf, sizeof buf,
		 "version: 1\nlog: {level: %s}\nrules:\n  - name: raw\n    action: %s\n    on_exit: %s\n",
		 level, action, action);
	return buf;
}

struct client {
	struct h_proc p;
	int lfd, fd;
};

static void start(struct client *c, const char *action, const char *level, const char *mode)
{
	int port;
	c->lfd = h_listen(&port);
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	h_spawn(&c->p, policy(action, level), NULL, "raw_calls", portstr, mode, NULL);
	c->fd = accept(c->lfd, NULL, NULL);
	assert_true(c->fd >= 0);
}

/* The program's exit status; the log stays until h_finish. */
static void finish(struct client *c, int want_status)
{
	if (want_status == 0)
		h_say(&c->p, "exit");
	int st = h_wait(&c->p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), want_status);
	assert_int_equal(h_log_count(&c->p, "event=error", NULL), 0);
	close(c->fd);
	close(c->lfd);
}

/* dup then close through syscall(): the first close leaves the copy alone, the copy's close is
 * the socket's last and resets it; nothing more at exit */
static void test_dup_and_close(void **state)
{
	(void)state;
	struct client c;
	start(&c, "reset", "info", "dupclose");
	h_expect(&c.p, "first closed ", 5000);
	assert_int_equal(h_log_count(&c.p, "event=close", NULL), 0);
	h_say(&c.p, "next");
	long copy = h_expect(&c.p, "closed ", 5000);
	struct h_read r = h_read_to_end(c.fd, 10000);
	assert_int_equal(r.err, ECONNRESET);
	finish(&c, 0);
	char fd_field[32];
	snprintf(fd_field, sizeof fd_field, "fd=%ld ", copy);
	assert_int_equal(h_log_count(&c.p, "event=close", "action=reset", fd_field, NULL), 1);
	assert_int_equal(h_log_count(&c.p, "event=close", NULL), 1);
	h_finish(&c.p);
}

/* shutdown through syscall() reaches the peer; the close through syscall() is graceful with
 * the peer's bytes unread: drained, so the peer sees EOF, not RST */
static void test_shutdown_and_graceful_close(void **state)
{
	(void)state;
	struct client c;
	start(&c, "graceful", "info", "shutdown");
	h_expect(&c.p, "shut", 5000);
	struct h_read eof = h_read_to_end(c.fd, 10000);
	assert_int_equal(eof.err, 0);
	assert_int_equal(eof.bytes, 0);
	char data[1000];
	memset(data, 'd', sizeof data);
	h_send_all(c.fd, data, sizeof data); /* never read by the program */
	shutdown(c.fd, SHUT_WR);
	h_say(&c.p, "next");
	h_expect(&c.p, "closed ", 5000);
	char *line = h_log_wait(&c.p, 10000, "event=drain", "outcome=eof", NULL);
	assert_non_null(line);
	assert_int_equal(h_field(line, "bytes"), 1000);
	free(line);
	char probe;
	assert_int_equal(recv(c.fd, &probe, 1, 0), 0); /* EOF, not ECONNRESET */
	finish(&c, 0);
	assert_int_equal(h_log_count(&c.p, "event=close", "action=graceful", NULL), 1);
	h_finish(&c.p);
}

/* a close no wrapper sees, and the number taken by /dev/null: at exit the entry is stale */
static void test_unseen_close_is_not_reported_at_exit(void **state)
{
	(void)state;
	struct client c;
	start(&c, "reset", "debug", "fclose");
	long fd = h_expect(&c.p, "reused ", 5000);
	struct h_read r = h_read_to_end(c.fd, 10000); /* fclose's own close: FIN */
	assert_int_equal(r.err, 0);
	finish(&c, 0);
	char fd_field[32];
	snprintf(fd_field, sizeof fd_field, "fd=%ld ", fd);
	assert_int_equal(h_log_count(&c.p, "event=close", NULL), 0);
	assert_int_equal(h_log_count(&c.p, "event=stale", fd_field, "rule=raw", NULL), 1);
	h_finish(&c.p);
}

/* exit_group and exit (from the only thread) through syscall() are exit paths: on_exit */
static void test_exit_group(void **state)
{
	(void)state;
	struct client c;
	start(&c, "reset", "info", "exit_group");
	struct h_read r = h_read_to_end(c.fd, 10000);
	assert_int_equal(r.err, ECONNRESET);
	finish(&c, 3);
	assert_int_equal(h_log_count(&c.p, "event=close", "action=reset", "on_exit", NULL), 1);
	h_finish(&c.p);
}

static void test_exit_of_the_only_thread(void **state)
{
	(void)state;
	struct client c;
	start(&c, "reset", "info", "exit");
	struct h_read r = h_read_to_end(c.fd, 10000);
	assert_int_equal(r.err, ECONNRESET);
	finish(&c, 4);
	assert_int_equal(h_log_count(&c.p, "event=close", "action=reset", "on_exit", NULL), 1);
	h_finish(&c.p);
}

/* A libuv server: a request (it reads 16 bytes of it), a 200 000-byte reply, uv_close. */
static struct h_read uv_request(struct h_proc *p, int port, size_t req_len)
{
	int fd = h_connect(port, 0);
	char req[100];
	memset(req, 'q', sizeof req);
	h_send_all(fd, req, req_len);
	struct h_read r = h_read_to_end(fd, 10000);
	close(fd);
	h_expect(p, "closed ", 5000);
	return r;
}

static void test_libuv_server_graceful(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, policy("graceful", "info"), NULL, "uv_server", "3", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	for (int i = 0; i < 3; i++) {
		struct h_read r = uv_request(&p, port, 100); /* 84 bytes left unread */
		assert_int_equal(r.err, 0); /* EOF: the unread request did not turn into RST */
		assert_int_equal(r.bytes, 200000);
	}
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(h_log_count(&p, "event=close", "action=graceful", NULL), 3);
	assert_int_equal(h_log_count(&p, "event=drain", "outcome=eof", NULL), 3);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 0);
	h_finish(&p);
}

static void test_libuv_server_reset(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, policy("reset", "info"), NULL, "uv_server", "1", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	struct h_read r = uv_request(&p, port, 16); /* read whole: a plain close sends FIN */
	assert_int_equal(r.err, ECONNRESET);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(h_log_count(&p, "event=close", "action=reset", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=close", NULL), 1);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dup_and_close),
		cmocka_unit_test(test_shutdown_and_graceful_close),
		cmocka_unit_test(test_unseen_close_is_not_reported_at_exit),
		cmocka_unit_test(test_exit_group),
		cmocka_unit_test(test_exit_of_the_only_thread),
		cmocka_unit_test(test_libuv_server_graceful),
		cmocka_unit_test(test_libuv_server_reset),
	};
	/* Under ThreadSanitizer the runtime starts a thread of its own with the first thread the
	 * program or the shim creates (the shim's reload thread, at the first TCP socket), and that
	 * one never leaves: a process can no longer end by a raw exit of its main thread there. The
	 * plain and AddressSanitizer runs cover that exit. */
	const char *san = getenv("SAN");
	if (san != NULL && strcmp(san, "thread") == 0) {
		const struct CMUnitTest under_tsan[] = {
			cmocka_unit_test(test_dup_and_close),
			cmocka_unit_test(test_shutdown_and_graceful_close),
			cmocka_unit_test(test_unseen_close_is_not_reported_at_exit),
			cmocka_unit_test(test_exit_group),
			cmocka_unit_test(test_libuv_server_graceful),
			cmocka_unit_test(test_libuv_server_reset),
		};
		return cmocka_run_group_tests(under_tsan, NULL, NULL);
	}
	return cmocka_run_group_tests(tests, NULL, NULL);
}
