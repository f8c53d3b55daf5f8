/* keepalive and user_timeout are applied at accept (and connect) and read back from the
 * socket: the `options` event (debug level) carries what the kernel has. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static void test_server_options_read_back(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p,
		"version: 1\nlog: {level: debug}\nrules:\n  - name: ka\n    action: passthrough\n"
		"    keepalive: {idle: 61s, interval: 11s, count: 4}\n    user_timeout: 2500ms\n",
		NULL, "reply_server", "-n", "100", "-w", "10", "-x", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	int fd = h_connect(port, 0);
	char req[100] = { 0 };
	h_send_all(fd, req, sizeof req);
	struct h_read r = h_read_to_end(fd, 5000);
	assert_int_equal(r.err, 0);
	close(fd);
	char *line = h_log_wait(&p, 5000, "event=options", NULL);
	assert_non_null(line);
	assert_int_equal(h_field(line, "keepalive"), 1);
	assert_int_equal(h_field(line, "keepidle"), 61);
	assert_int_equal(h_field(line, "keepintvl"), 11);
	assert_int_equal(h_field(line, "keepcnt"), 4);
	assert_int_equal(h_field(line, "user_timeout_ms"), 2500);
	assert_non_null(strstr(line, "rule=ka"));
	free(line);
	h_say(&p, "exit");
	assert_int_equal(WEXITSTATUS(h_wait(&p, 10000)), 0);
	h_finish(&p);
}

static void test_client_options_read_back(void **state)
{
	(void)state;
	int port;
	int lfd = h_listen(&port);
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	struct h_proc p;
	h_spawn(&p,
		"version: 1\nlog: {level: debug}\nrules:\n  - match: {role: client}\n"
		"    keepalive: {idle: 30s}\n    user_timeout: 3s\n",
		NULL, "reply_client", portstr, "-n", "1", "-w", "1", "-x", NULL);
	int fd = accept(lfd, NULL, NULL);
	h_send_all(fd, "h", 1);
	struct h_read r = h_read_to_end(fd, 5000);
	assert_int_equal(r.err, 0);
	close(fd);
	close(lfd);
	char *line = h_log_wait(&p, 5000, "event=options", "role=client", NULL);
	assert_non_null(line);
	assert_int_equal(h_field(line, "keepalive"), 1);
	assert_int_equal(h_field(line, "keepidle"), 30);
	assert_int_equal(h_field(line, "user_timeout_ms"), 3000);
	free(line);
	h_say(&p, "exit");
	assert_int_equal(WEXITSTATUS(h_wait(&p, 10000)), 0);
	h_finish(&p);
}

/* At the default info level the options event is not written. */
static void test_options_hidden_at_info(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - keepalive: {idle: 61s}\n", NULL, "reply_server", "-n", "100",
		"-w", "10", "-x", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	int fd = h_connect(port, 0);
	char req[100] = { 0 };
	h_send_all(fd, req, sizeof req);
	h_read_to_end(fd, 5000);
	close(fd);
	h_expect(&p, "closed ", 5000);
	h_say(&p, "exit");
	assert_int_equal(WEXITSTATUS(h_wait(&p, 10000)), 0);
	assert_int_equal(h_log_count(&p, "event=options", NULL), 0);
	assert_int_equal(h_log_count(&p, "event=close", NULL), 1);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_options_read_back),
		cmocka_unit_test(test_client_options_read_back),
		cmocka_unit_test(test_options_hidden_at_info),
	};
	return cmocka_run_group_tests_name("options", tests, NULL, NULL);
}
