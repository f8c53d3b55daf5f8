/* closepolicy — the interposed entry points: the only exported functions of the object.
 * Each is thin: the real call, and a cp_ function (track.c, close.c, refs.c, inherit.c,
 * writes.c, sigdisp.c) that follows or decides.
 * Calls on the shim's own descriptors get EBADF, as they would without the shim. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdbool.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim/close.h"
#include "shim/drainnow.h"
#include "shim/exitpath.h"
#include "shim/hot.h"
#include "shim/inherit.h"
#include "shim/rawsys.h"
#include "shim/real.h"
#include "shim/refs.h"
#include "shim/reload.h"
#include "shim/sigdisp.h"
#include "shim/track.h"
#include "shim/writes.h"
#include "shim/errsave.h"

extern char **environ;

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
EXPORT int execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags);
EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout);

static int ebadf(void)
{
	errno = EBADF;
	return -1;
}

/* fork: the counting itself runs in the atfork handlers (refs.c), which also cover
 * glibc-internal forks; the wrapper sees the return value, to undo the counts if it failed. */
CP_CHILD EXPORT pid_t fork(void)
{
	cp_drain_before_fork();
	return cp_fork();
}

/* A vfork child runs in the parent's memory until it execs, so its close() would change the
 * parent's tables, and no fork handler runs for it. fork is a valid vfork (the child may only
 * exec or _exit either way) and keeps both processes' state their own. */
EXPORT pid_t vfork(void)
{
	cp_drain_before_fork();
	return cp_fork();
}

/* main() leaving by pthread_exit: the shim's reload thread leaves too (reload.h). */
EXPORT void pthread_exit(void *ret)
{
	cp_reload_pthread_exit(ret);
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
	cp_errno_restore(saved);
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
CP_CHILD EXPORT void _exit(int status)
{
	cp_exit_run();
	cp_real__exit(status);
}

CP_CHILD EXPORT void _Exit(int status)
{
	cp_exit_run();
	cp_real__exit(status);
}

CP_HOT EXPORT int close(int fd)
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

CP_CHILD EXPORT int shutdown(int fd, int how)
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
	cp_drain_service();
	int fd = cp_real_socket(domain, type, protocol);
	if (fd >= 0)
		cp_track_socket(fd, domain, type, protocol);
	return fd;
}

/* accept() into the program's buffer, or into the shim's when it passed none: the peer's
 * address comes with the call (no system call added) and the epipe event needs it later, when
 * getpeername() no longer answers. */
struct peer_buf {
	struct sockaddr_storage ss;
	socklen_t len, asked;
};

static struct sockaddr *peer_addr(struct peer_buf *b, struct sockaddr *addr, socklen_t *len)
{
	b->len = sizeof b->ss;
	b->asked = addr != NULL && len != NULL ? *len : 0;
	return addr != NULL ? addr : (struct sockaddr *)&b->ss;
}

/* The new socket s is followed, with its peer (as much of it as the buffer held). */
static void accepted(int fd, int s, struct peer_buf *b, struct sockaddr *addr, socklen_t *len)
{
	const struct sockaddr *peer = addr != NULL ? addr : (struct sockaddr *)&b->ss;
	socklen_t peer_len = addr == NULL ? b->len : len != NULL && *len < b->asked ? *len : b->asked;
	cp_track_accept(fd, s, peer, peer_len);
}

EXPORT int accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	if (cp_track_is_shim_fd(fd))
		return ebadf();
	cp_drain_service(); /* before it waits: a forking server's parent spends its idle time here */
	struct peer_buf b;
	struct sockaddr *a = peer_addr(&b, addr, len);
	int s = cp_real_accept(fd, a, addr != NULL ? len : &b.len);
	if (s >= 0)
		accepted(fd, s, &b, addr, len);
	return s;
}

EXPORT int accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	if (cp_track_is_shim_fd(fd))
		return ebadf();
	cp_drain_service(); /* before it waits: a forking server's parent spends its idle time here */
	struct peer_buf b;
	struct sockaddr *a = peer_addr(&b, addr, len);
	int s = cp_real_accept4(fd, a, addr != NULL ? len : &b.len, flags);
	if (s >= 0)
		accepted(fd, s, &b, addr, len);
	return s;
}

EXPORT int connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	if (cp_track_is_shim_fd(fd))
		return ebadf();
	cp_drain_service();
	int ret = cp_real_connect(fd, addr, len);
	int err = ret < 0 ? errno : 0;
	cp_track_connect(fd, addr, len, ret, err);
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

CP_CHILD EXPORT int dup2(int oldfd, int newfd)
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

CP_HOT EXPORT int epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
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

CP_HOT EXPORT ssize_t send(int fd, const void *buf, size_t n, int flags)
{
	return cp_send(fd, buf, n, flags);
}

CP_HOT EXPORT ssize_t sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		      socklen_t tolen)
{
	return cp_sendto(fd, buf, n, flags, to, tolen);
}

CP_HOT EXPORT ssize_t sendmsg(int fd, const struct msghdr *msg, int flags)
{
	return cp_sendmsg(fd, msg, flags);
}

EXPORT int sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	return cp_sendmmsg(fd, vec, vlen, flags);
}

CP_HOT EXPORT ssize_t write(int fd, const void *buf, size_t n)
{
	return cp_write(fd, buf, n);
}

CP_HOT EXPORT ssize_t writev(int fd, const struct iovec *iov, int iovcnt)
{
	return cp_writev(fd, iov, iovcnt);
}

EXPORT ssize_t sendfile(int out, int in, off_t *offset, size_t count)
{
	return cp_sendfile(out, in, offset, count);
}

CP_CHILD EXPORT ssize_t sendfile64(int out, int in, off64_t *offset, size_t count)
{
	return cp_sendfile64(out, in, offset, count);
}

EXPORT ssize_t splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len, unsigned int flags)
{
	return cp_splice(in, off_in, out, off_out, len, flags);
}

/* ---- receiving: a socket that arrives in SCM_RIGHTS is noted, never acted on (track.h) ---- */

CP_HOT EXPORT ssize_t recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t r = cp_real_recvmsg(fd, msg, flags);
	if (r >= 0 && __builtin_expect(msg->msg_controllen != 0, 0))
		cp_track_rights_received(msg);
	return r;
}

EXPORT int recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout)
{
	int r = cp_real_recvmmsg(fd, vec, vlen, flags, timeout);
	for (int i = 0; i < r; i++)
		if (vec[i].msg_hdr.msg_controllen != 0)
			cp_track_rights_received(&vec[i].msg_hdr);
	return r;
}

/* ---- syscall(): the numbers above take the same paths (rawsys.c) ---- */

EXPORT long syscall(long number, ...)
{
	long a[6];
	CP_SYSCALL_WORDS(a, number);
	return cp_syscall(number, a);
}

/* ---- SIGPIPE's installers (sigdisp.c); every other signal goes straight to the C library ---- */

/* Uninstrumented: ThreadSanitizer's runtime calls sigaction() before it exists (real.h). */

CP_UNINSTRUMENTED static cp_handler_t other_signal(enum cp_sigfn which, int sig, cp_handler_t handler)
{
	cp_handler_t (*f)(int, cp_handler_t) = (cp_handler_t(*)(int, cp_handler_t))cp_real_sigfn(which);
	if (f == NULL) {
		errno = ENOSYS;
		return SIG_ERR;
	}
	return f(sig, handler);
}

CP_UNINSTRUMENTED EXPORT int sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sig != SIGPIPE)
		return cp_real_sigaction(sig, act, old);
	return cp_sigdisp_sigaction(act, old);
}

CP_UNINSTRUMENTED EXPORT int __sigaction(int sig, const struct sigaction *act, struct sigaction *old)
{
	if (sig != SIGPIPE) {
		int (*f)(int, const struct sigaction *, struct sigaction *) =
			(int (*)(int, const struct sigaction *, struct sigaction *))cp_real_sigfn(
				CP_SIGFN_SIGACTION_);
		return f ? f(sig, act, old) : cp_real_sigaction(sig, act, old);
	}
	return cp_sigdisp_sigaction(act, old);
}

CP_CHILD CP_UNINSTRUMENTED EXPORT cp_handler_t signal(int sig, cp_handler_t handler)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_SIGNAL, sig, handler);
	return cp_sigdisp_signal(handler, false);
}

CP_UNINSTRUMENTED EXPORT cp_handler_t bsd_signal(int sig, cp_handler_t handler)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_BSD_SIGNAL, sig, handler);
	return cp_sigdisp_signal(handler, false);
}

CP_UNINSTRUMENTED EXPORT cp_handler_t ssignal(int sig, cp_handler_t handler)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_SSIGNAL, sig, handler);
	return cp_sigdisp_signal(handler, false);
}

CP_UNINSTRUMENTED EXPORT cp_handler_t sysv_signal(int sig, cp_handler_t handler)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_SYSV_SIGNAL, sig, handler);
	return cp_sigdisp_signal(handler, true);
}

CP_UNINSTRUMENTED EXPORT cp_handler_t __sysv_signal(int sig, cp_handler_t handler)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_SYSV_SIGNAL_, sig, handler);
	return cp_sigdisp_signal(handler, true);
}

CP_UNINSTRUMENTED EXPORT cp_handler_t sigset(int sig, cp_handler_t disp)
{
	if (sig != SIGPIPE)
		return other_signal(CP_SIGFN_SIGSET, sig, disp);
	return cp_sigdisp_sigset(disp);
}

CP_UNINSTRUMENTED EXPORT int sigignore(int sig)
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

CP_UNINSTRUMENTED EXPORT int siginterrupt(int sig, int interrupt)
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
