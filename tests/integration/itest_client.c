/* Client-role rules: the program under the shim connects; the test is the server. The program
 * reads 5 of the 100 bytes the test sends, writes 4 MiB and closes. Rules that do not match
 * leave the socket alone. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

struct outcome {
	struct h_read r;
	struct h_proc p;
};

static void run_client(struct outcome *o, const char *policy)
{
	int port, rcvbuf = 65536;
	int lfd = h_listen(&port);
	/* set on the listener, so the accepted socket has it from its handshake (window scale):
	 * most of the program's reply then stays queued on its side when it closes */
	setsockopt(lfd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	char portstr[16];
	snprintf(portstr, sizeof portstr, "%d", port);
	h_spawn(&o->p, policy, NULL, "reply_client", portstr, "-x", NULL);
	int fd = accept(lfd, NULL, NULL);
	assert_true(fd >= 0);
	char hello[100];
	memset(hello, 'h', sizeof hello);
	h_send_all(fd, hello, sizeof hello);
	/* the reply's last 256 KiB stays unread until the program's close() has returned: it is
	 * then still queued on the program's side, lost for certain to a reset, and a graceful
	 * close must deliver it */
	struct h_read head = h_read_upto(fd, H_MB4 - 256 * 1024, 20000);
	if (head.err == 0 && head.bytes == H_MB4 - 256 * 1024)
		h_expect(&o->p, "closed", 10000);
	o->r = h_read_to_end(fd, 20000);
	o->r.bytes += head.bytes;
	o->r.err = head.err ? head.err : o->r.err;
	close(fd);
	close(lfd);
}

static void test_client_graceful(void **state)
{
	(void)state;
	struct outcome o;
	run_client(&o, "version: 1\nrules:\n  - name: out\n    match: {role: client, peer: 127.0.0.0/8}\n"
		       "    action: graceful\n");
	assert_int_equal(o.r.err, 0);
	assert_int_equal(o.r.bytes, (uint64_t)H_MB4);
	char *line = h_log_wait(&o.p, 5000, "event=drain", "rule=out", "role=client", NULL);
	assert_non_null(line);
	assert_non_null(strstr(line, "outcome=eof"));
	free(line);
	h_exit_ok(&o.p);
}

static void test_client_passthrough_loses_data(void **state)
{
	(void)state;
	struct outcome o;
	run_client(&o, "version: 1\nrules:\n  - match: {role: client}\n    action: passthrough\n");
	assert_int_equal(o.r.err, ECONNRESET);
	assert_true(o.r.bytes < (uint64_t)H_MB4);
	assert_int_equal(h_log_count(&o.p, "event=close", "role=client", "action=passthrough", NULL), 1);
	h_exit_ok(&o.p);
}

static void test_client_reset(void **state)
{
	(void)state;
	struct outcome o;
	run_client(&o, "version: 1\nrules:\n  - match: {role: client}\n    action: reset\n");
	assert_int_equal(o.r.err, ECONNRESET);
	assert_int_equal(h_log_count(&o.p, "event=close", "role=client", "action=reset", NULL), 1);
	h_exit_ok(&o.p);
}

/* A server-role rule never applies to a connection the program made. */
static void test_role_mismatch_leaves_socket_alone(void **state)
{
	(void)state;
	struct outcome o;
	run_client(&o, "version: 1\nrules:\n  - match: {role: server}\n    action: graceful\n");
	assert_int_equal(o.r.err, ECONNRESET);
	assert_int_equal(h_log_count(&o.p, "event=close", NULL), 0);
	assert_int_equal(h_log_count(&o.p, "event=drain", NULL), 0);
	assert_int_equal(h_log_count(&o.p, "event=risk", "unread=95", NULL), 1);
	h_exit_ok(&o.p);
}

static void test_port_mismatch_leaves_socket_alone(void **state)
{
	(void)state;
	struct outcome o;
	run_client(&o, "version: 1\nrules:\n  - match: {peer_port: 1}\n    action: graceful\n"
		       "  - match: {peer: 10.0.0.0/8}\n    action: graceful\n");
	assert_int_equal(o.r.err, ECONNRESET);
	assert_int_equal(h_log_count(&o.p, "event=close", NULL), 0);
	h_exit_ok(&o.p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client_graceful),
		cmocka_unit_test(test_client_passthrough_loses_data),
		cmocka_unit_test(test_client_reset),
		cmocka_unit_test(test_role_mismatch_leaves_socket_alone),
		cmocka_unit_test(test_port_mismatch_leaves_socket_alone),
	};
	return cmocka_run_group_tests_name("client", tests, NULL, NULL);
}
