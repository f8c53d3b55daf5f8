/* The drainer thread cannot be created: a graceful close then drains in the program's close()
 * (one `error` event each time it tried), the peer gets every byte and EOF, and the shim's copy
 * of the socket is not left behind. Once threads can be made again, the next graceful close is a
 * background one.
 *
 * How the failure is made: step_server defines and exports pthread_create (linked -rdynamic), so
 * the shim's call reaches it first; "nothreads 1" makes it return EAGAIN. (RLIMIT_NPROC does not
 * bind root, and a tiny RLIMIT_AS would make malloc fail as well.) */
#include "harness.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLICY "version: 1\nrules:\n  - name: web\n    action: graceful\n    drain_timeout: 20s\n"
#define REQUEST 100
#define UNREAD 1000 /* left unread by the server: the close must drain, not just close */
#define REPLY 65536

static int request(int port)
{
	int fd = h_connect(port, 0);
	char req[REQUEST + UNREAD];
	memset(req, 'r', sizeof req);
	h_send_all(fd, req, sizeof req);
	return fd;
}

/* Sockets among the program's descriptors (its listener is one). */
static int count_sockets(pid_t pid)
{
	char dir[64], path[400], target[128];
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(dir);
	int n = 0;
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		ssize_t len = readlink(path, target, sizeof target - 1);
		if (len > 0 && strncmp(target, "socket:", 7) == 0)
			n++;
	}
	if (d != NULL)
		closedir(d);
	return n;
}

/* One connection served and closed; the peer reads to the end, then closes. Returns the line
 * the program printed for its close(). */
static void serve_and_close(struct h_proc *p, int port, char *answer, size_t size)
{
	int peer = request(port);
	h_sayf(p, "serve %d %d", REQUEST, REPLY);
	long fd = h_expect(p, "served ", 5000);
	h_sayf(p, "close %ld", fd);
	struct h_read r = h_read_to_end(peer, 10000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, REPLY);
	close(peer);
	h_line(p, answer, size, 10000);
}

static void test_no_thread_drains_in_close(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, POLICY, NULL, "step_server", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	h_say(&p, "nothreads 1");
	h_expect(&p, "nothreads 1", 5000);

	char tid[32], line[128];
	snprintf(tid, sizeof tid, "tid=%d ", (int)p.pid);
	for (int i = 1; i <= 2; i++) {
		serve_and_close(&p, port, line, sizeof line);
		assert_non_null(strstr(line, " = 0 0"));
		/* inside close(), on the program's thread */
		assert_int_equal(h_log_count(&p, "event=drain", "outcome=eof", tid, NULL), i);
		assert_int_equal(h_log_count(&p, "event=error", "errno=EAGAIN", "cannot start the drainer thread",
					     NULL),
				 i);
	}
	assert_int_equal(h_log_count(&p, "event=error", NULL), 2);
	assert_int_equal(count_sockets(p.pid), 1); /* the listener: no copy left behind */

	/* threads again: the next graceful close is handed to the drainer */
	h_say(&p, "nothreads 0");
	h_expect(&p, "nothreads 0", 5000);
	serve_and_close(&p, port, line, sizeof line);
	assert_non_null(strstr(line, " = 0 0"));
	assert_int_equal(h_log_wait_lines(&p, 3, 5000, "event=drain", "outcome=eof", "bytes=1000", NULL), 3);
	assert_int_equal(h_log_count(&p, "event=drain", NULL), 3);
	assert_int_equal(h_log_count(&p, "event=drain", tid, NULL), 2); /* the third on the drainer */
	assert_int_equal(h_log_count(&p, "event=error", NULL), 2);

	h_say(&p, "exit");
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_thread_drains_in_close),
	};
	return cmocka_run_group_tests_name("nothread", tests, NULL, NULL);
}
