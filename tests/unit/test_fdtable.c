/* The descriptor table (shim/fdtable.c) on its own: a walk visits exactly the entries that hold
 * something, in increasing order, within the range asked, in the first chunk (walked by its bit
 * per descriptor ever stored) and above it (by groups of 64); cp_fd_any sees what a walk sees. */
#include <stdbool.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "shim/fdtable.h"

/* Distinct non-NULL objects the table only stores (never reads through). */
static struct cp_sock *obj(int n)
{
	return (struct cp_sock *)(uintptr_t)(0x1000 + 16 * (unsigned)n);
}

struct seen {
	int fds[64];
	int n;
};

static void record(int fd, struct cp_sock *s, void *arg)
{
	struct seen *v = arg;
	assert_non_null(s);
	if (v->n < 64)
		v->fds[v->n] = fd;
	v->n++;
}

static void put(int fd, struct cp_sock *s)
{
	struct cp_sock *old;
	assert_int_equal(cp_fd_put(fd, s, &old), 0);
}

static void clear_all(void)
{
	struct seen v = { .n = 0 };
	cp_fd_foreach(0, ~0U, record, &v);
	for (int i = 0; i < v.n && i < 64; i++)
		(void)cp_fd_take(v.fds[i]);
}

/* Entries stored and cleared (a negative number clears), then the walk over [first, last]. */
struct walk_case {
	const char *name;
	int n_ops, ops[12];
	unsigned first, last;
	int want[12]; /* -1 ends */
};

static const struct walk_case walk_cases[] = {
	{ "empty table", 0, { 0 }, 0, ~0U, { -1 } },
	{ "one low entry", 1, { 5 }, 0, ~0U, { 5, -1 } },
	{ "fd 0 itself", 2, { 0, 3 }, 0, ~0U, { 0, 3, -1 } },
	{ "cleared entries are not visited", 4, { 3, 4, 5, -4 }, 0, ~0U, { 3, 5, -1 } },
	{ "word edges (63, 64, 127, 128)", 4, { 128, 63, 127, 64 }, 0, ~0U, { 63, 64, 127, 128, -1 } },
	{ "the last of the first chunk and the first above it", 3, { 1024, 1023, 2048 }, 0, ~0U,
	  { 1023, 1024, 2048, -1 } },
	{ "range inside a word", 5, { 1, 2, 3, 4, 5 }, 2, 4, { 2, 3, 4, -1 } },
	{ "range across the chunk edge", 4, { 10, 1000, 1030, 5000 }, 1000, 1030, { 1000, 1030, -1 } },
	{ "range above the first chunk only", 3, { 7, 1500, 70000 }, 1024, ~0U, { 1500, 70000, -1 } },
	{ "stored again after a clear", 3, { 9, -9, 9 }, 0, ~0U, { 9, -1 } },
	{ "a range with nothing in it", 2, { 1, 900 }, 2, 899, { -1 } },
	{ "every entry of a word cleared", 3, { 200, 201, -200 }, 0, ~0U, { 201, -1 } },
};

static void test_walk_cases(void **state)
{
	(void)state;
	for (size_t c = 0; c < sizeof walk_cases / sizeof *walk_cases; c++) {
		const struct walk_case *k = &walk_cases[c];
		clear_all();
		for (int i = 0; i < k->n_ops; i++) {
			if (k->ops[i] < 0)
				assert_ptr_equal(cp_fd_take(-k->ops[i]), obj(-k->ops[i]));
			else
				put(k->ops[i], obj(k->ops[i]));
		}
		struct seen v = { .n = 0 };
		cp_fd_foreach(k->first, k->last, record, &v);
		int n = 0;
		while (k->want[n] != -1)
			n++;
		if (v.n != n)
			fail_msg("%s: %d entries visited, %d expected", k->name, v.n, n);
		for (int i = 0; i < n; i++)
			if (v.fds[i] != k->want[i])
				fail_msg("%s: visit %d was fd %d, expected %d", k->name, i, v.fds[i], k->want[i]);
	}
	clear_all();
}

static bool any_object(const struct cp_sock *s)
{
	return s != NULL;
}

static void test_any_sees_low_and_high(void **state)
{
	(void)state;
	clear_all();
	assert_false(cp_fd_any(any_object));
	put(700, obj(700));
	assert_true(cp_fd_any(any_object));
	(void)cp_fd_take(700);
	assert_false(cp_fd_any(any_object));
	put(3000, obj(3000));
	assert_true(cp_fd_any(any_object));
	(void)cp_fd_take(3000);
	put(4, CP_SOCK_SHIM); /* the shim's own: not a socket of the program's */
	assert_false(cp_fd_any(any_object));
	(void)cp_fd_take(4);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_walk_cases),
		cmocka_unit_test(test_any_sees_low_and_high),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
