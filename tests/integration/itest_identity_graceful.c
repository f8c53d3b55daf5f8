/* A number reused after a close the shim did not see, under a graceful policy (itest_identity
 * covers reset, which checks who the number is first). */
#include "harness.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define REPLY 1000

/* Graceful sends the FIN from close() itself, without asking who the number is first (a system
 * call on every close): a stale entry must still end as the program asked. Another kind of file
 * on the number is only closed (shutdown says ENOTSOCK: no drain, nothing left open); another
 * connection on it ends gracefully, as its close asked: every byte, then EOF. */
static void test_graceful_on_a_number_reused_unseen(void **state)
{
	(void)state;
	struct h_proc p;
	int port = h_step_server(&p, "version: 1\nrules:\n  - name: soft\n    action: graceful\n");

	/* accepted and followed, closed unseen; a file takes the number; close() of the file */
	int old_peer = h_connect(port, 0);
	h_say(&p, "serve 0 0");
	long old = h_expect(&p, "served ", 5000);
	h_sayf(&p, "rawclose %ld", old);
	h_answer(&p, "rawclose %ld = 0 0", old);
	h_expect_all_then_eof(old_peer, 0);
	char path[128];
	snprintf(path, sizeof path, "%s/file", p.dir);
	h_sayf(&p, "open %s", path);
	h_answer(&p, "open = %ld", old);
	h_sayf(&p, "close %ld", old);
	h_answer(&p, "close %ld = 0 0", old);
	h_sayf(&p, "check %ld", old);
	h_answer(&p, "check %ld closed", old);

	/* followed again, closed unseen; a connection accepted unseen takes the number */
	old_peer = h_connect(port, 0);
	h_say(&p, "serve 0 0");
	old = h_expect(&p, "served ", 5000);
	h_sayf(&p, "rawclose %ld", old);
	h_answer(&p, "rawclose %ld = 0 0", old);
	h_expect_all_then_eof(old_peer, 0);
	int new_peer = h_connect(port, 0);
	h_sayf(&p, "rawserve %d", REPLY);
	h_answer(&p, "rawserved %ld", old);
	h_sayf(&p, "close %ld", old);
	h_answer(&p, "close %ld = 0 0", old);
	h_expect_all_then_eof(new_peer, REPLY);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 0);
	h_exit_ok(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_graceful_on_a_number_reused_unseen),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
