/* A policy file rewritten in place while it is being read. The loader's reads are wrapped
 * (-Wl,--wrap=pread): after a chosen read, the file changes under it, as a writer in another
 * process would change it. Whatever happens, the loader returns one whole version of the file
 * — never a mix of two, never a prefix it did not find twice — or a clear error. */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy/policy.h"

/* Two versions of the same length (so a size check alone cannot tell them apart), and a prefix
 * of the first that is a valid policy on its own (one rule instead of two). */
static const char VERSION_A[] = "version: 1\nrules:\n  - name: first\n    drain_timeout: 1s\n"
				"  - name: second\n    action: reset\n";
static const char VERSION_B[] = "version: 1\nrules:\n  - name: first\n    drain_timeout: 7s\n"
				"  - name: second\n    action: reset\n";
static const char PREFIX_A[] = "version: 1\nrules:\n  - name: first\n    drain_timeout: 1s\n";

static char path[64];

enum change { NONE, ONCE_TO_B, EVERY_READ, TRUNCATE_ONCE };
static enum change change;
static int preads;

static void rewrite(const char *text, bool truncate)
{
	int fd = open(path, O_WRONLY | (truncate ? O_TRUNC : 0));
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, text, strlen(text), 0), (ssize_t)strlen(text));
	close(fd);
}

ssize_t __real_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off);
ssize_t __wrap_pread(int fd, void *buf, size_t n, off_t off)
{
	ssize_t got = __real_pread(fd, buf, n, off);
	preads++;
	if (change == ONCE_TO_B && preads == 1)
		rewrite(VERSION_B, false);
	else if (change == TRUNCATE_ONCE && preads == 1)
		rewrite(PREFIX_A, true);
	else if (change == EVERY_READ)
		rewrite(preads % 2 ? VERSION_B : VERSION_A, false);
	return got;
}

static int setup(void **state)
{
	(void)state;
	strcpy(path, "/tmp/cp-changing-XXXXXX");
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	rewrite(VERSION_A, true);
	change = NONE;
	preads = 0;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	unlink(path);
	return 0;
}

static struct cp_policy *load_ok(void)
{
	struct cp_diag d;
	struct cp_policy *p = cp_policy_load_file(path, &d);
	if (p == NULL) {
		cp_diag_print(&d, stderr);
		fail_msg("policy rejected");
	}
	return p;
}

static void test_unchanged_file_loads(void **state)
{
	(void)state;
	struct cp_policy *p = load_ok();
	assert_int_equal(p->n_rules, 2);
	assert_int_equal(p->rules[0].drain_timeout_ms, 1000);
	cp_policy_free(p);
}

static void test_rewritten_during_the_read_gives_the_new_version_whole(void **state)
{
	(void)state;
	change = ONCE_TO_B;
	struct cp_policy *p = load_ok();
	assert_int_equal(p->n_rules, 2);
	assert_int_equal(p->rules[0].drain_timeout_ms, 7000);
	assert_int_equal(p->rules[1].action, CP_ACTION_RESET);
	assert_true(preads > 2); /* it did read again */
	cp_policy_free(p);
}

static void test_truncated_during_the_read_gives_what_the_file_now_holds(void **state)
{
	(void)state;
	change = TRUNCATE_ONCE;
	struct cp_policy *p = load_ok();
	assert_int_equal(p->n_rules, 1);
	assert_int_equal(p->rules[0].drain_timeout_ms, 1000);
	cp_policy_free(p);
}

static void test_never_still_is_an_error(void **state)
{
	(void)state;
	change = EVERY_READ;
	struct cp_diag d;
	struct cp_policy *p = cp_policy_load_file(path, &d);
	assert_null(p);
	assert_int_equal(d.count, 1);
	assert_int_equal(d.entries[0].line, 0);
	assert_non_null(strstr(d.entries[0].message, "kept changing while it was read"));
	assert_non_null(strstr(d.entries[0].message, "rename()"));
	assert_string_equal(d.file, path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_unchanged_file_loads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewritten_during_the_read_gives_the_new_version_whole,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_during_the_read_gives_what_the_file_now_holds,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_never_still_is_an_error, setup, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
