/* closepolicy — the interposed entry points: the only exported functions of the object.
 * Each is thin: the real call, and a cp_ function (track.c, close.c, writes.c, sigdisp.c) that
 * follows or decides.
 * Calls on the shim's own descriptors get EBADF, as they would without the shim. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim/close.h"
#include "shim/real.h"
#include "shim/sigdisp.h"
#include "shim/track.h"
#include "shim/writes.h"

#define EXPORT __attribute__((visibility("default")))

/* Declared here for C libraries whose headers lack them. */
EXPORT int close_range(unsigned int first, unsigned int last, int flags);
EXPORT void closefrom(int lowfd);
EXPORT int fcntl64(int fd, int cmd, ...);
EXPORT ssize_t sendfile64(int out, int in, off64_t *offset, size_t count);
EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *old);
EXPORT cp_handler_t bsd_signal(int sig, cp_handler_t handler);
EXPORT cp_handler_t ssignal(int sig, cp_handler_t handler);
EXPORT cp_handler_t sysv_signal(int sig, cp_handler_t handler);
EXPORT cp_handler_t __sysv_signal(int sig, cp_handler_t handler);
EXPORT cp_handler_t sigset(int sig, cp_handler_t disp);
EXPORT int sigignore(int sig);

static int ebadf(void)
{
	errno = EBADF;
	return -1;
}

EXPORT int close(int fd)
{
	return cp_close(fd);
}

EXPORT int close_range(unsigned int first, unsigned int last, int flags)
{
	return cp_close_range(first, last, flags);
}

EXPORT void closefrom(int lowfd)
{
	cp_closefrom(lowfd);
}

EXPORT int shutdown(int fd, int how)
{
	if (cp_track_is_shim_fd(fd))
		return ebadf();
	int ret = cp_real_shutdown(fd, how);
	if (ret == 0)
		cp_track_shutdown(fd, how);
	return ret;
}

EXPORT int socket(int domain, int type, int protocol)
{
	int fd = cp_real_socket(domain, type, protocol);
	if (fd >= 0)
		cp_track_socket(fd, domain, type, protocol);
	return fd;
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (cp_track_is_shim_fd(fd))
		return ebadf();
	int s = cp_real_accept(fd, addr, len);
	if (s >= 0)
		cp_track_accept(fd, s);
	return s;
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	if (cp_track_is_shim_fd(fd))
		return ebadf();
	int s = cp_real_accept4(fd, addr, len, flags);
	if (s >= 0)
		cp_track_accept(fd, s);
	return s;
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (cp_track_is_shim_fd(fd))
		return ebadf();
	int ret = cp_real_connect(fd, addr, len);
	cp_track_connect(fd, addr, len, ret, ret < 0 ? errno : 0);
	return ret;
}

EXPORT int dup(int fd)
{
	if (cp_track_is_shim_fd(fd))
		return ebadf();
	int n = cp_real_dup(fd);
	if (n >= 0)
		cp_track_dup(fd, n);
	return n;
}

EXPORT int dup2(int oldfd, int newfd)
{
	if (cp_track_is_shim_fd(oldfd))
		return ebadf();
	if (cp_track_before_dup2(oldfd, newfd) < 0)
		return ebadf();
	int n = cp_real_dup2(oldfd, newfd);
	if (n >= 0 && oldfd != newfd)
		cp_track_dup(oldfd, n);
	return n;
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (cp_track_is_shim_fd(oldfd))
		return ebadf();
	if (oldfd != newfd && cp_track_before_dup2(oldfd, newfd) < 0)
		return ebadf();
	int n = cp_real_dup3(oldfd, newfd, flags);
	if (n >= 0)
		cp_track_dup(oldfd, n);
	return n;
}

/* F_DUPFD and F_DUPFD_CLOEXEC make copies; every other command passes straight through. */
static int fcntl_common(int (*real)(int, int, void *), int fd, int cmd, void *arg)
{
	if (cmd != F_DUPFD && cmd != F_DUPFD_CLOEXEC)
		return real(fd, cmd, arg);
	if (cp_track_is_shim_fd(fd))
		return ebadf();
	int n = real(fd, cmd, arg);
	if (n >= 0)
		cp_track_dup(fd, n);
	return n;
}

EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(cp_real_fcntl, fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	va_start(ap, cmd);
	void *arg = va_arg(ap, void *);
	va_end(ap);
	return fcntl_common(cp_real_fcntl64, fd, cmd, arg);
}

EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	if (cp_track_is_shim_fd(fd) || cp_track_is_shim_fd(epfd))
		return ebadf();
	int ret = cp_real_epoll_ctl(epfd, op, fd, ev);
	if (ret == 0)
		cp_track_epoll_ctl(epfd, op, fd);
	return ret;
}

EXPORT int setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	int ret = cp_real_setsockopt(fd, level, name, val, len);
	if (ret == 0)
		cp_track_setsockopt(fd, level, name, val, len);
	return ret;
}

/* ---- the write family (writes.c): EPIPE, ECONNRESET and the SIGPIPE they bring ---- */

EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	return cp_send(fd, buf, n, flags);
}

EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		      socklen_t tolen)
{
	return cp_sendto(fd, buf, n, flags, to, tolen);
}

EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return cp_sendmsg(fd, msg, flags);
}

EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	return cp_sendmmsg(fd, vec, vlen, flags);
}

EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	return cp_write(fd, buf, n);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	return cp_writev(fd, iov, iovcnt);
}

EXPORT ssize_t sendfile(int out, int in, off_t *offset, size_t count)
{
	return cp_sendfile(out, in, offset, count);
}

EXPORT ssize_t sendfile64(int out, int in, off64_t *offset, size_t count)
{
	return cp_sendfile64(out, in, offset, count);
}

EXPORT ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len, unsigned int flags)
{
	return cp_splice(in, off_in, out, off_out, len, flags);
}

/* ---- SIGPIPE's installers (sigdisp.c); every other signal goes straight to the C library ---- */

static cp_handler_t other_signal(enum cp_sigfn which, int sig, cp_handler_t handler)
{
	cp_handler_t (*f)(int, cp_handler_t) = (cp_handler_t(*)(int, cp_handler_t))cp_real_sigfn(which);
	if (f == NULL) {
		errno = ENOSYS;
		return SIG_ERR;
	}
	return f(sig, handler);
}

EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sig != SIGPIPE)
		return cp_real_sigaction(sig, act, old);
	return cp_sigdisp_sigaction(act, old);
}

EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sig != SIGPIPE) {
		int (*f)(int, const struct sigaction *, struct sigaction *) =
			(int (*)(int, const struct sigaction *, struct sigaction *))cp_real_sigfn(
				CP_SIGFN_SIGACTION_);
		return f ? f(sig, act, old) : cp_real_sigaction(sig, act, old);
	}
	return cp_sigdisp_sigaction(act, old);
}

EXPORT cp_handler_t signal(int sig, cp_handler_t handler)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_SIGNAL, sig, handler);
	return cp_sigdisp_signal(handler, false);
}

EXPORT cp_handler_t bsd_signal(int sig, cp_handler_t handler)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_BSD_SIGNAL, sig, handler);
	return cp_sigdisp_signal(handler, false);
}

EXPORT cp_handler_t ssignal(int sig, cp_handler_t handler)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_SSIGNAL, sig, handler);
	return cp_sigdisp_signal(handler, false);
}

EXPORT cp_handler_t sysv_signal(int sig, cp_handler_t handler)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_SYSV_SIGNAL, sig, handler);
	return cp_sigdisp_signal(handler, true);
}

EXPORT cp_handler_t __sysv_signal(int sig, cp_handler_t handler)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_SYSV_SIGNAL_, sig, handler);
	return cp_sigdisp_signal(handler, true);
}

EXPORT cp_handler_t sigset(int sig, cp_handler_t disp)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_SIGSET, sig, disp);
	return cp_sigdisp_sigset(disp);
}

EXPORT int sigignore(int sig)
{
	if (sig != SIGPIPE) {
		int (*f)(int) = (int (*)(int))cp_real_sigfn(CP_SIGFN_SIGIGNORE);
		if (f == NULL) {
			errno = ENOSYS;
			return -1;
		}
		return f(sig);
	}
	return cp_sigdisp_sigignore();
}

EXPORT int siginterrupt(int sig, int interrupt)
{
	if (sig != SIGPIPE) {
		int (*f)(int, int) = (int (*)(int, int))cp_real_sigfn(CP_SIGFN_SIGINTERRUPT);
		if (f == NULL) {
			errno = ENOSYS;
			return -1;
		}
		return f(sig, interrupt);
	}
	return cp_sigdisp_siginterrupt(interrupt);
}
