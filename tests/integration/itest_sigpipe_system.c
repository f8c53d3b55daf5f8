/* SIGPIPE in real programs the shim is preloaded into: `yes | head -1` still dies of SIGPIPE
 * (exit status 141), and the log says which call on which descriptor broke the pipe.
 * Left out of the ThreadSanitizer run: an uninstrumented program cannot load that build. */
#include "harness.h"

#include <string.h>

static void test_yes_head_still_dies_of_sigpipe(void **state)
{
	(void)state;
	struct h_proc p;
	char out[64];
	h_shell(&p, "\"$CP\" run -l \"$LOG\" -- yes | head -1 >/dev/null; echo ${PIPESTATUS[0]}", out,
		 sizeof out);
	assert_string_equal(out, "141\n");
	assert_int_equal(h_log_count(&p, "event=epipe", "program=yes", "fd=1 ", "call=write", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=sigpipe", "program=yes", "disposition=default",
				     "fd=1 ", "call=write", NULL),
			 1);
	assert_int_equal(h_log_count(&p, "event=", NULL), 2);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_yes_head_still_dies_of_sigpipe),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
