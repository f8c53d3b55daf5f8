/* The log: JSON lines with the fields of libclosepolicy(7), the file created 0600 and appended to,
 * CLOSEPOLICY_FORMAT overriding the policy, the TCP_INFO summary on close. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static void serve_one(struct h_proc *p)
{
	int port = (int)h_expect(p, "port ", 5000);
	int fd = h_connect(port, 0);
	char req[100] = { 0 };
	h_send_all(fd, req, sizeof req);
	struct h_read r = h_read_to_end(fd, 20000);
	assert_int_equal(r.err, 0);
	close(fd);
	char *line = h_log_wait(p, 5000, "\"event\":\"drain\"", NULL);
	assert_non_null(line);
	free(line);
	h_say(p, "exit");
	assert_int_equal(WEXITSTATUS(h_wait(p, 10000)), 0);
}

static void test_json_lines(void **state)
{
	(void)state;
	struct h_proc p;
	const char *env[] = { "CLOSEPOLICY_FORMAT=json", NULL };
	h_spawn(&p, "version: 1\nlog: {format: text}\nrules:\n  - name: web\n    action: graceful\n", env,
		"reply_server", "-n", "100", "-w", "100000", "-x", NULL);
	serve_one(&p);

	struct stat st;
	assert_int_equal(stat(p.log, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	char *log = h_log(&p);
	int lines = 0;
	for (char *l = strtok(log, "\n"); l != NULL; l = strtok(NULL, "\n")) {
		lines++;
		size_t n = strlen(l);
		assert_true(n > 2 && l[0] == '{' && l[n - 1] == '}');
		assert_non_null(strstr(l, "{\"ts\":"));
		assert_non_null(strstr(l, "\"pid\":"));
		assert_non_null(strstr(l, "\"program\":\"reply_server\""));
		if (strstr(l, "\"event\":\"close\"")) {
			const char *fields[] = { "\"fd\":", "\"rule\":\"web\"", "\"action\":\"graceful\"",
						 "\"role\":\"server\"", "\"local\":\"127.0.0.1:",
						 "\"peer\":\"127.0.0.1:", "\"unread\":0", "\"unsent\":",
						 "\"state\":\"ESTABLISHED\"", "\"bytes_out\":", "\"bytes_in\":100",
						 "\"rtt_ms\":", "\"retrans\":", "\"age_ms\":" };
			for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
				if (strstr(l, fields[i]) == NULL)
					fail_msg("close event lacks %s: %s", fields[i], l);
		}
	}
	assert_int_equal(lines, 3); /* policy, close, drain */
	free(log);
	h_finish(&p);
}

static void test_text_lines(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - action: graceful\n", NULL, "reply_server", "-n", "100", "-w",
		"10", "-x", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	int fd = h_connect(port, 0);
	char req[100] = { 0 };
	h_send_all(fd, req, sizeof req);
	h_read_to_end(fd, 5000);
	close(fd);
	char *line = h_log_wait(&p, 5000, "event=drain", NULL);
	assert_non_null(line);
	char prefix[64];
	snprintf(prefix, sizeof prefix, "closepolicy[%d]: event=drain ", (int)p.pid);
	assert_int_equal(strncmp(line, prefix, strlen(prefix)), 0);
	free(line);
	h_say(&p, "exit");
	assert_int_equal(WEXITSTATUS(h_wait(&p, 10000)), 0);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_json_lines),
		cmocka_unit_test(test_text_lines),
	};
	return cmocka_run_group_tests_name("log", tests, NULL, NULL);
}
