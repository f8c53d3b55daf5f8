/* closepolicy — the shim's own descriptors (see ownfd.h). */
#include "shim/ownfd.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <sys/resource.h>

#include "shim/fdtable.h"
#include "shim/real.h"
#include "shim/errsave.h"

static atomic_int base; /* 0 = not computed yet */

int cp_ownfd_base(void)
{
	int b = atomic_load_explicit(&base, memory_order_relaxed);
	if (b == 0) {
		/* Above the numbers most programs use, and low: the kernel's descriptor table is
		 * sized by the highest number in use, and every fork copies it and every exit walks
		 * it (a number at 4096 made each fork allocate and copy a 64 KiB table: 25 us of a
		 * 110 us fork here; at 128, a 2 KiB table, nothing measurable). */
		struct rlimit rl;
		rlim_t soft = getrlimit(RLIMIT_NOFILE, &rl) == 0 ? rl.rlim_cur : 1024;
		if (soft == RLIM_INFINITY || soft > 1u << 20)
			soft = 1u << 20;
		rlim_t want = soft / 4 * 3;
		b = want > 128 ? 128 : want < 3 ? 3 : (int)want;
		atomic_store_explicit(&base, b, memory_order_relaxed);
	}
	return b;
}

void cp_ownfd_mark(int fd)
{
	struct cp_sock *old;
	if (cp_fd_put(fd, CP_SOCK_SHIM, &old) == 0 && old != NULL && old != CP_SOCK_SHIM)
		cp_sock_release(old); /* a stale entry left by a close the shim did not see */
}

int cp_ownfd_dup_high(int fd)
{
	int copy = cp_real_fcntl(fd, F_DUPFD_CLOEXEC, (void *)(long)cp_ownfd_base());
	if (copy < 0 && errno == EINVAL) /* base above the limit: take any number */
		copy = cp_real_fcntl(fd, F_DUPFD_CLOEXEC, (void *)0L);
	if (copy >= 0)
		cp_ownfd_mark(copy);
	return copy;
}

int cp_ownfd_move_high(int fd)
{
	int copy = cp_ownfd_dup_high(fd);
	if (copy >= 0)
		cp_real_close(fd);
	return copy;
}

void cp_ownfd_close(int fd)
{
	int saved = errno;
	/* unmark first: the number is free once close() returns. An entry that is no longer the
	 * shim's means the descriptor was closed behind the shim's back (a raw syscall) and the
	 * number now belongs to the program: leave it alone. */
	struct cp_sock *s = cp_fd_take(fd);
	if (s == CP_SOCK_SHIM)
		cp_real_close(fd);
	else if (s != NULL)
		cp_fd_put(fd, s, &s);
	cp_errno_restore(saved);
}
