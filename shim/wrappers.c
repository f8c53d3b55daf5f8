/* closepolicy — the interposed entry points: the only exported functions of the object.
 * Each is thin: the real call, and a cp_ function (track.c, close.c, refs.c, inherit.c) that
 * follows or decides.
 * Calls on the shim's own descriptors get EBADF, as they would without the shim. */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "shim/close.h"
#include "shim/exitpath.h"
#include "shim/inherit.h"
#include "shim/real.h"
#include "shim/refs.h"
#include "shim/track.h"

extern char **environ;

#define EXPORT __attribute__((visibility("default")))

/* Declared here for C libraries whose headers lack them. */
EXPORT int close_range(unsigned int first, unsigned int last, int flags);
EXPORT void closefrom(int lowfd);
EXPORT int fcntl64(int fd, int cmd, ...);
EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags);

static int ebadf(void)
{
	errno = EBADF;
	return -1;
}

/* fork: the counting itself runs in the atfork handlers (refs.c), which also cover
 * glibc-internal forks; the wrapper sees the return value, to undo the counts if it failed. */
EXPORT pid_t fork(void)
{
	return cp_fork();
}

/* A vfork child runs in the parent's memory until it execs, so its close() would change the
 * parent's tables, and no fork handler runs for it. fork is a valid vfork (the child may only
 * exec or _exit either way) and keeps both processes' state their own. */
EXPORT pid_t vfork(void)
{
	return cp_fork();
}

/* ---- exec and spawn: the new image learns which sockets it inherits (inherit.h) ---- */

EXPORT int execve(const char *path, char *const argv[], char *const envp[])
{
	struct cp_handover h;
	char *const *env = cp_handover_begin(&h, envp, false);
	int ret = cp_real_execve(path, argv, env);
	cp_handover_end(&h, false);
	return ret;
}

EXPORT int execvpe(const char *file, char *const argv[], char *const envp[])
{
	struct cp_handover h;
	char *const *env = cp_handover_begin(&h, envp, false);
	int ret = cp_real_execvpe(file, argv, env);
	cp_handover_end(&h, false);
	return ret;
}

EXPORT int fexecve(int fd, char *const argv[], char *const envp[])
{
	struct cp_handover h;
	char *const *env = cp_handover_begin(&h, envp, false);
	int ret = cp_real_fexecve(fd, argv, env);
	cp_handover_end(&h, false);
	return ret;
}

EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	struct cp_handover h;
	char *const *env = cp_handover_begin(&h, envp, false);
	int ret = cp_real_execveat(dirfd, path, argv, env, flags);
	cp_handover_end(&h, false);
	return ret;
}

EXPORT int execv(const char *path, char *const argv[])
{
	return execve(path, argv, environ);
}

EXPORT int execvp(const char *file, char *const argv[])
{
	return execvpe(file, argv, environ);
}

/* execl's arguments as an argv array, in a mapping: no malloc between fork and exec. execle's
 * environment follows the terminating NULL. */
static char **args_array(const char *arg0, va_list ap, size_t *size, char *const **envp)
{
	va_list count;
	va_copy(count, ap);
	size_t n = 0;
	if (arg0 != NULL)
		for (n = 1; va_arg(count, const char *) != NULL; n++)
			;
	va_end(count);
	*size = (n + 1) * sizeof(char *);
	char **argv = mmap(NULL, *size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (argv == MAP_FAILED)
		return NULL;
	argv[0] = (char *)arg0;
	for (size_t i = 1; i < n; i++)
		argv[i] = va_arg(ap, char *);
	if (n > 0)
		(void)va_arg(ap, char *); /* the NULL */
	argv[n] = NULL;
	if (envp != NULL)
		*envp = va_arg(ap, char *const *);
	return argv;
}

enum exec_kind { EXEC_PATH, EXEC_SEARCH };

static int exec_list(enum exec_kind kind, const char *file, const char *arg0, va_list ap, bool with_env)
{
	size_t size;
	char *const *envp = environ;
	char **argv = args_array(arg0, ap, &size, with_env ? &envp : NULL);
	if (argv == NULL)
		return -1; /* errno from mmap: ENOMEM, as execl itself could fail */
	int ret = kind == EXEC_PATH ? execve(file, argv, envp) : execvpe(file, argv, envp);
	int saved = errno;
	munmap(argv, size);
	errno = saved;
	return ret;
}

EXPORT int execl(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	int ret = exec_list(EXEC_PATH, path, arg, ap, false);
	va_end(ap);
	return ret;
}

EXPORT int execle(const char *path, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	int ret = exec_list(EXEC_PATH, path, arg, ap, true);
	va_end(ap);
	return ret;
}

EXPORT int execlp(const char *file, const char *arg, ...)
{
	va_list ap;
	va_start(ap, arg);
	int ret = exec_list(EXEC_SEARCH, file, arg, ap, false);
	va_end(ap);
	return ret;
}

/* posix_spawn runs no atfork handler: the child's references are counted here. */
EXPORT int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
		       const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct cp_handover h;
	char *const *env = cp_handover_begin(&h, envp, true);
	int ret = cp_real_posix_spawn(pid, path, fa, attr, argv, env);
	cp_handover_end(&h, ret == 0);
	return ret;
}

EXPORT int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	struct cp_handover h;
	char *const *env = cp_handover_begin(&h, envp, true);
	int ret = cp_real_posix_spawnp(pid, file, fa, attr, argv, env);
	cp_handover_end(&h, ret == 0);
	return ret;
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
