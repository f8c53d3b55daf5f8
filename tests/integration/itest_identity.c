/* A number reused after a close the shim did not see (a raw system call, fclose of an fdopen'd
 * socket, io_uring) still carries the shim's entry for the old socket. Before anything
 * destructive the shim checks that the number is still that socket — by the peer accept()
 * returned for a server socket, by SO_COOKIE for a client one — so the new socket ends as it
 * would without the shim: its peer reads every byte, then EOF. The policy resets both roles, so
 * a missed check shows on the wire as ECONNRESET; each case first shows the reset happening to
 * the socket the policy is for. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLICY "version: 1\nrules:\n  - name: cut\n    action: reset\n"
#define REPLY 1000

static void expect_reset(int peer)
{
	struct h_read r = h_read_to_end(peer, 10000);
	assert_int_equal(r.err, ECONNRESET);
	close(peer);
}

static void test_server_socket_reused_unseen_is_left_alone(void **state)
{
	(void)state;
	struct h_proc p;
	int port = h_step_server(&p, POLICY);

	/* the policy at work: an accepted socket closed by close() is reset */
	int first = h_connect(port, 0);
	h_sayf(&p, "serve 0 %d", REPLY);
	long fd = h_expect(&p, "served ", 5000);
	h_sayf(&p, "close %ld", fd);
	h_answer(&p, "close %ld = 0 0", fd);
	expect_reset(first);

	/* accepted and followed, then closed behind the shim's back: a plain close */
	int old_peer = h_connect(port, 0);
	h_say(&p, "serve 0 0");
	long old = h_expect(&p, "served ", 5000);
	h_sayf(&p, "rawclose %ld", old);
	h_answer(&p, "rawclose %ld = 0 0", old);
	h_expect_all_then_eof(old_peer, 0);

	/* a connection accepted unseen takes the number; close() finds the stale entry */
	int new_peer = h_connect(port, 0);
	h_sayf(&p, "rawserve %d", REPLY);
	h_answer(&p, "rawserved %ld", old);
	h_sayf(&p, "close %ld", old);
	h_answer(&p, "close %ld = 0 0", old);
	h_expect_all_then_eof(new_peer, REPLY);
	h_exit_ok(&p);
}

static void test_client_socket_reused_unseen_is_left_alone(void **state)
{
	(void)state;
	struct h_proc p;
	h_step_server(&p, POLICY);
	int lport = 0, lfd = h_listen(&lport);

	/* the policy at work: a connected socket closed by close() is reset */
	h_sayf(&p, "connect %d", lport);
	long fd = h_expect(&p, "connected ", 5000);
	int first = accept(lfd, NULL, NULL);
	assert_true(first >= 0);
	h_sayf(&p, "close %ld", fd);
	h_answer(&p, "close %ld = 0 0", fd);
	expect_reset(first);

	h_sayf(&p, "connect %d", lport);
	long old = h_expect(&p, "connected ", 5000);
	int old_peer = accept(lfd, NULL, NULL);
	assert_true(old_peer >= 0);
	h_sayf(&p, "rawclose %ld", old);
	h_answer(&p, "rawclose %ld = 0 0", old);
	h_expect_all_then_eof(old_peer, 0);

	h_sayf(&p, "rawconnect %d", lport);
	h_answer(&p, "rawconnected %ld", old);
	int new_peer = accept(lfd, NULL, NULL);
	assert_true(new_peer >= 0);
	h_sayf(&p, "write %ld hello", old);
	h_answer(&p, "write %ld = 6", old);
	h_sayf(&p, "close %ld", old);
	h_answer(&p, "close %ld = 0 0", old);
	h_expect_all_then_eof(new_peer, 6);
	close(lfd);
	h_exit_ok(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_server_socket_reused_unseen_is_left_alone),
		cmocka_unit_test(test_client_socket_reused_unseen_is_left_alone),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
