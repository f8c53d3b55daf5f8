/* Each close action on the server side, asserted from the peer: a server under the shim reads 5
 * of a 100-byte request, writes 4 MiB and closes. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* Connect, send the 100-byte request, read all but the last 256 KiB of the reply, wait until
 * the server is in close() (`event`: a log line written before the real close, for linger,
 * which blocks until the peer acknowledges) or past it (event NULL: its "closed" line), then
 * read the rest. The tail cannot fit the small receive buffer, so at close() it is still queued
 * at the server: a reset loses it every time, and a graceful close must deliver it. The
 * program is left running (-x). */
static struct h_read request(struct h_proc *p, const char *event)
{
	int port = (int)h_expect(p, "port ", 5000);
	int fd = h_connect(port, 65536);
	char req[100];
	memset(req, 'r', sizeof req);
	h_send_all(fd, req, sizeof req);
	struct h_read head = h_read_upto(fd, H_MB4 - 256 * 1024, 20000);
	if (head.err == 0 && head.bytes == H_MB4 - 256 * 1024) {
		if (event)
			free(h_log_wait(p, 10000, event, NULL));
		else
			h_expect(p, "closed ", 10000);
	}
	struct h_read r = h_read_to_end(fd, 20000);
	r.bytes += head.bytes;
	r.err = head.err ? head.err : r.err;
	close(fd);
	return r;
}

static const char *policy(const char *action_lines)
{
	static char buf[1024];
	snprintf(buf, sizeof buf,
		 "version: 1\nrules:\n  - name: web\n    match:\n      role: server\n%s", action_lines);
	return buf;
}

/* Without any action the kernel resets: the test is meaningful. */
static void test_passthrough_loses_data(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, policy("    action: passthrough\n"), NULL, "reply_server", "-n", "5", "-x", NULL);
	struct h_read r = request(&p, NULL);
	assert_int_equal(r.err, ECONNRESET);
	assert_true(r.bytes < (uint64_t)H_MB4);
	char *line = h_log_wait(&p, 5000, "event=close", "action=passthrough", "rule=web", NULL);
	assert_non_null(line);
	assert_int_equal(h_field(line, "unread"), 95);
	assert_true(strstr(line, "role=server") && strstr(line, "peer=127.0.0.1:"));
	free(line);
	assert_int_equal(h_log_count(&p, "event=risk", "unread=95", NULL), 1);
	h_exit_ok(&p);
}

static void test_graceful_delivers_everything(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, policy("    action: graceful\n    drain_timeout: 5s\n"), NULL, "reply_server", "-n",
		"5", "-x", NULL);
	struct h_read r = request(&p, NULL);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, (uint64_t)H_MB4);
	char *line = h_log_wait(&p, 5000, "event=drain", "outcome=eof", NULL);
	assert_non_null(line);
	assert_int_equal(h_field(line, "bytes"), 95);
	free(line);
	assert_int_equal(h_log_count(&p, "event=close", "action=graceful", "unread=95", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=risk", NULL), 0);
	h_exit_ok(&p);
}

static void test_reset_sends_rst(void **state)
{
	(void)state;
	struct h_proc p;
	/* reading all of the request: the RST comes from the policy, not from unread data */
	h_spawn(&p, policy("    action: reset\n"), NULL, "reply_server", "-n", "100", "-x", NULL);
	struct h_read r = request(&p, NULL);
	assert_int_equal(r.err, ECONNRESET);
	assert_true(r.bytes < (uint64_t)H_MB4);
	assert_int_equal(h_log_count(&p, "event=close", "action=reset", "unread=0", NULL), 1);
	h_exit_ok(&p);
}

static void test_linger_delivers_when_nothing_unread(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, policy("    action: linger\n    linger: 10s\n"), NULL, "reply_server", "-n", "100",
		"-x", NULL);
	struct h_read r = request(&p, "event=close");
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, (uint64_t)H_MB4);
	assert_int_equal(h_log_count(&p, "event=close", "action=linger", "unread=0", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=risk", NULL), 0);
	h_exit_ok(&p);
}

/* linger cannot help with unread data: the kernel still resets, and the log says so. */
static void test_linger_with_unread_data_is_a_risk(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, policy("    action: linger\n    linger: 2s\n"), NULL, "reply_server", "-n", "5", "-x",
		NULL);
	struct h_read r = request(&p, "event=close");
	assert_int_equal(r.err, ECONNRESET);
	assert_int_equal(h_log_count(&p, "event=risk", "action=linger", "unread=95", NULL), 1);
	h_exit_ok(&p);
}

/* No policy file: behaviour unchanged, the risky close logged. */
static void test_default_policy_logs_risk_only(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, NULL, NULL, "reply_server", "-n", "5", "-x", NULL);
	struct h_read r = request(&p, NULL);
	assert_int_equal(r.err, ECONNRESET);
	char *line = h_log_wait(&p, 5000, "event=risk", NULL);
	assert_non_null(line);
	assert_int_equal(h_field(line, "unread"), 95);
	assert_true(strstr(line, "action=passthrough") && strstr(line, "local=127.0.0.1:"));
	free(line);
	assert_int_equal(h_log_count(&p, "event=close", NULL), 0);
	assert_int_equal(h_log_count(&p, "event=policy", NULL), 0);
	h_exit_ok(&p);
}

/* A bad policy: one `policy` event per error, and the program runs as without the shim. */
static void test_bad_policy_is_rejected_whole(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p,
		"version: 1\nrules:\n  - action: graceful\n    drian_timeout: 5s\n  - action: linger\n",
		NULL, "reply_server", "-n", "5", "-x", NULL);
	struct h_read r = request(&p, NULL);
	assert_int_equal(r.err, ECONNRESET); /* no graceful close: the policy was not used */
	assert_true(h_log_count(&p, "event=policy", "outcome=rejected", "policy.yaml:4:", NULL) == 1);
	assert_true(h_log_count(&p, "event=policy", "outcome=rejected", NULL) >= 2);
	assert_int_equal(h_log_count(&p, "event=close", NULL), 0);
	h_exit_ok(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_passthrough_loses_data),
		cmocka_unit_test(test_graceful_delivers_everything),
		cmocka_unit_test(test_reset_sends_rst),
		cmocka_unit_test(test_linger_delivers_when_nothing_unread),
		cmocka_unit_test(test_linger_with_unread_data_is_a_risk),
		cmocka_unit_test(test_default_policy_logs_risk_only),
		cmocka_unit_test(test_bad_policy_is_rejected_whole),
	};
	return cmocka_run_group_tests_name("actions", tests, NULL, NULL);
}
