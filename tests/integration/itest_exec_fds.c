/* No descriptor of the shim survives exec: a program under the shim, with a log file open and a
 * graceful drain in progress, execs a program without the shim that lists its descriptors. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_exec_child_sees_no_shim_descriptor(void **state)
{
	(void)state;
	int port;
	int lfd = h_listen(&port);
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	struct h_proc p;
	h_spawn(&p, "version: 1\nlog: {level: debug}\nrules:\n  - {match: {role: client}, action: graceful}\n",
		NULL, "exec_lister", portstr, NULL);
	int fd = accept(lfd, NULL, NULL); /* held open: the drain cannot end before the exec */
	assert_true(fd >= 0);
	char line[64], listed[256] = "";
	for (;;) {
		h_line(&p, line, sizeof line, 5000);
		if (strcmp(line, "3") == 0) /* ls's own directory stream is the last */
			break;
		strcat(listed, line);
		strcat(listed, " ");
		if (strlen(listed) > 200)
			break;
	}
	/* 0, 1, 2 from the harness, 3 from ls itself: nothing else */
	assert_string_equal(listed, "0 1 2 ");
	int st = h_wait(&p, 5000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(h_log_count(&p, "event=close", "action=graceful", NULL), 1);
	close(fd);
	close(lfd);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_exec_child_sees_no_shim_descriptor),
	};
	return cmocka_run_group_tests_name("exec fds", tests, NULL, NULL);
}
