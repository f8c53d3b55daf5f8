/* closepolicy — the C library's syscall() for the numbers the shim follows (see rawsys.h).
 *
 * Programs that bypass the C library's wrappers for a reason of their own (libuv closes through
 * syscall(SYS_close) to avoid a cancellation point) would otherwise close, copy and give away
 * sockets the shim never sees: the policy skipped, the table left stale. Each followed number
 * goes to the exported function of the same name, as if the program had called it; every other
 * number reaches the kernel untouched, with the six words it was given. */
#include "shim/rawsys.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "shim/exitpath.h"
#include "shim/real.h"
#include "shim/reload.h"

int close_range(unsigned int first, unsigned int last, int flags);

#define INT(i) ((int)a[i])
#define PTR(i) ((void *)a[i])

/* exit() of one thread ends the process only when no other thread is left: /proc/self/task
 * holds one entry per thread, and its link count is two more. */
static bool only_thread(void)
{
	struct stat st;
	return stat("/proc/self/task", &st) == 0 && st.st_nlink == 3;
}

static long fcntl_call(const long a[6])
{
	if (INT(1) == F_DUPFD || INT(1) == F_DUPFD_CLOEXEC)
		return fcntl(INT(0), INT(1), INT(2));
	return cp_real_syscall6(SYS_fcntl, a);
}

long cp_syscall(long number, const long a[6])
{
	switch (number) {
	case SYS_close:
		return close(INT(0));
	case SYS_close_range:
		return close_range((unsigned)a[0], (unsigned)a[1], INT(2));
	case SYS_dup:
		return dup(INT(0));
#ifdef SYS_dup2
	case SYS_dup2:
		return dup2(INT(0), INT(1));
#endif
	case SYS_dup3:
		return dup3(INT(0), INT(1), INT(2));
	case SYS_fcntl:
		return fcntl_call(a);
	case SYS_shutdown:
		return shutdown(INT(0), INT(1));
	case SYS_socket:
		return socket(INT(0), INT(1), INT(2));
#ifdef SYS_accept
	case SYS_accept:
		return accept(INT(0), PTR(1), PTR(2));
#endif
	case SYS_accept4:
		return accept4(INT(0), PTR(1), PTR(2), INT(3));
	case SYS_connect:
		return connect(INT(0), PTR(1), (socklen_t)a[2]);
	case SYS_setsockopt:
		return setsockopt(INT(0), INT(1), INT(2), PTR(3), (socklen_t)a[4]);
	case SYS_epoll_ctl:
		return epoll_ctl(INT(0), INT(1), INT(2), PTR(3));
	case SYS_sendto:
		return sendto(INT(0), PTR(1), (size_t)a[2], INT(3), PTR(4), (socklen_t)a[5]);
	case SYS_sendmsg:
		return sendmsg(INT(0), PTR(1), INT(2));
	case SYS_sendmmsg:
		return sendmmsg(INT(0), PTR(1), (unsigned)a[2], INT(3));
	case SYS_recvmsg:
		return recvmsg(INT(0), PTR(1), INT(2));
	case SYS_recvmmsg:
		return recvmmsg(INT(0), PTR(1), (unsigned)a[2], INT(3), PTR(4));
	case SYS_write:
		return write(INT(0), PTR(1), (size_t)a[2]);
	case SYS_writev:
		return writev(INT(0), PTR(1), INT(2));
	case SYS_exit_group:
		_exit(INT(0));
	case SYS_exit:
		cp_reload_main_leaving();
		if (only_thread())
			cp_exit_run();
		return cp_real_syscall6(number, a);
	default:
		return cp_real_syscall6(number, a);
	}
}
