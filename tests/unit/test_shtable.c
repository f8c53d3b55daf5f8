/* The cross-process reference table (shim/shtable.c) on its own: slots taken lowest first and
 * reused once freed, a slot taken without its cookie and named later, a table of another layout
 * refused at attach, and what a forked child's release of its slot costs: one page of the
 * table (each page of a shared mapping is a fault in a child, on first touch). */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "shim/ownfd.h"
#include "shim/real.h"
#include "shim/shtable.h"

/* The shim's descriptor bookkeeping, which the table calls, reduced to what it does here. */
int cp_ownfd_move_high(int fd)
{
	(void)fd;
	errno = EMFILE;
	return -1; /* the table keeps the number it has */
}

void cp_ownfd_mark(int fd)
{
	(void)fd;
}

void cp_ownfd_close(int fd)
{
	close(fd);
}

int cp_real_close(int fd)
{
	return close(fd);
}

/* A description of fd in this process, as an exec'd image is told it. */
static void describe(int fd, char *buf, size_t size)
{
	struct stat st;
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(buf, size, "%llu:%llu+%d/%d", (unsigned long long)st.st_ino, (unsigned long long)st.st_dev,
		 (int)getpid(), fd);
}

/* Before this process has a table of its own: images of another layout are refused. */
static void test_attach_refuses_another_layout(void **state)
{
	(void)state;
	char desc[128];
	/* big enough for this layout, with the magic of the one before ("clp3") */
	int fd = memfd_create("test-refs", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 2 << 20), 0);
	uint32_t old_magic[2] = { 0x636c7033u, 65536 };
	assert_int_equal(pwrite(fd, old_magic, sizeof old_magic, 0), (ssize_t)sizeof old_magic);
	describe(fd, desc, sizeof desc);
	assert_int_equal(cp_sht_attach(desc), -1);
	assert_false(cp_sht_present());
	close(fd);
	/* the old layout's size: too small to be this one */
	fd = memfd_create("test-refs", MFD_CLOEXEC);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, 790528), 0);
	describe(fd, desc, sizeof desc);
	assert_int_equal(cp_sht_attach(desc), -1);
	assert_false(cp_sht_present());
	close(fd);
	/* bad descriptions */
	assert_int_equal(cp_sht_attach(""), -1);
	assert_int_equal(cp_sht_attach("12:34+x/1"), -1);
	assert_int_equal(cp_sht_attach("12:34+1"), -1);
	assert_false(cp_sht_present());
}

static void test_slots_lowest_first_and_reused(void **state)
{
	(void)state;
	assert_int_equal(cp_sht_ensure(), 0);
	assert_true(cp_sht_present());
	int a = cp_sht_insert(1001, 2), b = cp_sht_insert(1002, 2);
	assert_int_equal(a, 0);
	assert_int_equal(b, 1);
	assert_int_equal(cp_sht_find(1001), a);
	assert_int_equal(cp_sht_find(1002), b);
	assert_int_equal(cp_sht_add(a, 1), 3);
	assert_int_equal(cp_sht_add(a, -1), 2);
	assert_true(cp_sht_release_if_held(a)); /* 2 -> 1 */
	assert_false(cp_sht_release_if_held(a)); /* the last holder: left as it was */
	assert_int_equal(cp_sht_add(a, -1), 0); /* freed */
	assert_int_equal(cp_sht_find(1001), -1);
	assert_int_equal(cp_sht_insert(1003, 2), a); /* the lowest free one again */
	assert_int_equal(cp_sht_add(a, -2), 0);
	assert_int_equal(cp_sht_add(b, -2), 0);
	/* bad input */
	assert_int_equal(cp_sht_insert(UINT64_MAX, 2), -1);
	assert_int_equal(cp_sht_find(0), -1);
	assert_int_equal(cp_sht_find(UINT64_MAX), -1);
	assert_int_equal(cp_sht_add(-1, 1), 0);
	assert_int_equal(cp_sht_add(CP_SHT_SLOTS, 1), 0);
	assert_false(cp_sht_release_if_held(-1));
}

/* A fork takes a slot without asking the socket's cookie: found by number only, until named. */
static void test_slot_named_later(void **state)
{
	(void)state;
	assert_int_equal(cp_sht_ensure(), 0);
	int s = cp_sht_insert(0, 2);
	assert_true(s >= 0);
	assert_int_equal(cp_sht_find(2001), -1);
	cp_sht_name(s, 2001);
	assert_int_equal(cp_sht_find(2001), s);
	cp_sht_name(s, 2002); /* named already: kept */
	assert_int_equal(cp_sht_find(2002), -1);
	assert_int_equal(cp_sht_find(2001), s);
	cp_sht_name(-1, 2003);
	cp_sht_name(s, 0);
	assert_int_equal(cp_sht_add(s, -2), 0);
	assert_int_equal(cp_sht_find(2001), -1);
}

/* busybox httpd's child: the parent took the slot at the fork and closed its copy; the child,
 * the last holder, frees the slot at exit. Its first touch of each page of the table is a
 * fault: one page, the slot's (cookie and count together, the first slots on the header's page,
 * where the hint of the lowest free slot is). */
static void test_child_frees_its_slot_touching_one_page(void **state)
{
	(void)state;
	assert_int_equal(cp_sht_ensure(), 0);
	int s = cp_sht_insert(3001, 2);
	assert_true(s >= 0);
	assert_int_equal(cp_sht_add(s, -1), 1); /* the parent's close */
	int pipefd[2];
	assert_int_equal(pipe(pipefd), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct rusage before, after;
		memset(&before, 0, sizeof before); /* the stack's page copied now, not in between */
		memset(&after, 0, sizeof after);
		(void)cp_sht_add(-1, 0); /* the function's code faulted in, no page of the table */
		getrusage(RUSAGE_SELF, &before);
		long left = cp_sht_add(s, -1);
		getrusage(RUSAGE_SELF, &after);
		long faults[2] = { after.ru_minflt - before.ru_minflt, left };
		_exit(write(pipefd[1], faults, sizeof faults) == (ssize_t)sizeof faults ? 0 : 1);
	}
	long faults[2];
	assert_int_equal(read(pipefd[0], faults, sizeof faults), (ssize_t)sizeof faults);
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	assert_int_equal(faults[1], 0); /* freed */
#if defined(__SANITIZE_ADDRESS__)
	assert_true(faults[0] >= 1 && faults[0] <= 2); /* and the slot's shadow page, first read */
#else
	assert_int_equal(faults[0], 1);
#endif
	assert_int_equal(cp_sht_find(3001), -1);
	close(pipefd[0]);
	close(pipefd[1]);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_attach_refuses_another_layout), /* first: no table of its own yet */
		cmocka_unit_test(test_slots_lowest_first_and_reused),
		cmocka_unit_test(test_slot_named_later),
		cmocka_unit_test(test_child_frees_its_slot_touching_one_page),
	};
	return cmocka_run_group_tests_name("shtable", tests, NULL, NULL);
}
