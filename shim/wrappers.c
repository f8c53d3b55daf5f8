/* closepolicy — the interposed entry points: the only exported functions of the object.
 * Each is thin: the real call, and a cp_ function (track.c, close.c) that follows or decides.
 * Calls on the shim's own descriptors get EBADF, as they would without the shim. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shim/close.h"
#include "shim/exitpath.h"
#include "shim/real.h"
#include "shim/track.h"

#define EXPORT __attribute__((visibility("default")))

/* Declared here for C libraries whose headers lack them. */
EXPORT int close_range(unsigned int first, unsigned int last, int flags);
EXPORT void closefrom(int lowfd);
EXPORT int fcntl64(int fd, int cmd, ...);

static int ebadf(void)
{
	errno = EBADF;
	return -1;
}

/* A vfork child runs in the parent's memory until it execs, so its close() would change the
 * parent's tables, and no fork handler runs for it. fork is a valid vfork (the child may only
 * exec or _exit either way) and keeps both processes' state their own. */
EXPORT pid_t vfork(void)
{
	return fork();
}

/* _exit and _Exit skip destructors: the exit work runs here (exit() reaches it through the
 * destructor in exitpath.c, and its own final _exit call is internal to libc). */
EXPORT void _exit(int status)
{
	cp_exit_run();
	cp_real__exit(status);
}

EXPORT void _Exit(int status)
{
	cp_exit_run();
	cp_real__exit(status);
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
	if (cp_track_before_dup2(oldfd, newfd) < 0) /* errno set */
		return -1;
	int n = cp_real_dup2(oldfd, newfd);
	if (n >= 0 && oldfd != newfd)
		cp_track_dup(oldfd, n);
	return n;
}

EXPORT int dup3(int oldfd, int newfd, int flags)
{
	if (cp_track_is_shim_fd(oldfd))
		return ebadf();
	if (oldfd != newfd && cp_track_before_dup2(oldfd, newfd) < 0) /* errno set */
		return -1;
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
