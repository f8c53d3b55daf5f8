/* An epoll server under graceful: once close() returned, the program's epoll set neither holds
 * the socket (checked in /proc/PID/fdinfo while the shim still drains it) nor reports events
 * for it (the program counts stray events and exits 3 if it saw any). */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Does the epoll set epfd of pid watch descriptor number fd? */
static bool epoll_watches(pid_t pid, long epfd, long fd)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/fdinfo/%ld", (int)pid, epfd);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	bool found = false;
	while (fgets(line, sizeof line, f) != NULL) {
		long tfd;
		if (sscanf(line, "tfd: %ld", &tfd) == 1 && tfd == fd)
			found = true;
	}
	fclose(f);
	return found;
}

static void test_epoll_forgets_closed_socket(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - action: graceful\n    drain_timeout: 10s\n", NULL,
		"epoll_server", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	long epfd = h_expect(&p, "epfd ", 5000);

	int c1 = h_connect(port, 0);
	char req[100];
	memset(req, 'r', sizeof req);
	h_send_all(c1, req, sizeof req); /* 95 bytes stay unread at close */
	long fd = h_expect(&p, "closed ", 5000);

	/* the drain is in progress (c1 is open and silent) and the set no longer has the socket */
	assert_int_equal(h_log_count(&p, "event=drain", NULL), 0);
	assert_false(epoll_watches(p.pid, epfd, fd));

	struct h_read r = h_read_to_end(c1, 5000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, 6);
	h_send_all(c1, "more data while draining", 24); /* readable again: an event if registered */
	close(c1);
	char *line = h_log_wait(&p, 5000, "event=drain", "outcome=eof", NULL);
	assert_non_null(line);
	free(line);

	int c2 = h_connect(port, 0);
	h_send_all(c2, "QUIT", 4);
	int st = h_wait(&p, 10000);
	close(c2);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0); /* 3 = stray events */
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_epoll_forgets_closed_socket),
	};
	return cmocka_run_group_tests_name("epoll", tests, NULL, NULL);
}
