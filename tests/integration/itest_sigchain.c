/* The SIGPIPE chain under threads (also run under ThreadSanitizer): four threads make failing
 * writes on broken pipes (the kernel's SIGPIPE, through the shim's handler) and reset sockets
 * (the shim's MSG_NOSIGNAL send and its re-delivered SIGPIPE) while the main thread swaps the
 * program's handler back and forth. Every write fails with EPIPE and brings exactly one call of
 * the program's handler, in the writing thread; the program always reads back the handler it
 * set; the log has one `epipe` and one `sigpipe` event per write. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define THREADS "4"
#define COUNT "200"
#define WRITES 800

static void test_handlers_swapped_while_threads_write(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, NULL, NULL, "sigchain_threads", THREADS, COUNT, NULL);
	char line[160], want[160];
	h_expect_line(&p, "writes ", line, sizeof line);
	snprintf(want, sizeof want, "writes %d epipe %d handled %d wrong_thread 0 readback_bad 0 swaps",
		 WRITES, WRITES, WRITES);
	if (strncmp(line, want, strlen(want)) != 0)
		fail_msg("wanted \"%s N\", got \"%s\"", want, line);
	h_expect_done_exit_0(&p);
	assert_int_equal(h_log_count(&p, "event=epipe", NULL), WRITES);
	assert_int_equal(h_log_count(&p, "event=sigpipe", "disposition=handler", "call=write", NULL),
			 WRITES);
	assert_int_equal(h_log_count(&p, "event=sigpipe", NULL), WRITES);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_handlers_swapped_while_threads_write),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
