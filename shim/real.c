/* closepolicy — resolving the real functions (see real.h).
 * Each symbol has one atomic slot. Two threads racing on the first call both call dlsym and store
 * the same pointer: harmless, and no lock means no deadlock when a wrapper runs inside dlsym's
 * own allocations or inside another library's constructor. */
#include "shim/real.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdarg.h>
#include <stddef.h>
#include <sys/sendfile.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "shim/hot.h"

CP_HOT CP_UNINSTRUMENTED static void *resolve(_Atomic(void *) *cell, const char *name)
{
	void *f = atomic_load_explicit(cell, memory_order_acquire);
	if (f == NULL) {
		f = dlsym(RTLD_NEXT, name);
		if (f != NULL)
			atomic_store_explicit(cell, f, memory_order_release);
	}
	return f;
}

#define REAL(name, type) ((type)resolve(&slot.name, #name))

/* One struct, page-aligned, in the hot data section (hot.h): the first page holds these and
 * the descriptor table's first entries. */
#define REAL_SYMBOLS(X) X(close) X(shutdown) X(socket) X(accept) X(accept4) X(connect) X(dup) \
	X(dup2) X(dup3) X(fcntl) X(fcntl64) X(close_range) X(closefrom) X(epoll_ctl) X(setsockopt) \
	X(_exit) X(fork) X(execve) X(execvpe) X(fexecve) X(execveat) X(posix_spawn) X(posix_spawnp) \
	X(send) X(sendto) X(sendmsg) X(sendmmsg) X(write) X(writev) X(sendfile) X(sendfile64) \
	X(splice) X(sigaction) X(recvmsg) X(recvmmsg) X(syscall)
#define SLOT(name) _Atomic(void *) name;
static struct {
	REAL_SYMBOLS(SLOT)
} slot CP_HOT_DATA(0) __attribute__((aligned(4096)));
#undef SLOT
/* The fallbacks below never go through the shim's exported syscall() (rawsys.c), which would
 * call their wrapper again. */
#define syscall cp_real_syscall

/* A child resolving a function for itself runs the dynamic linker's look-up over the hash
 * tables of every object, a page fault on each page it reads and one on the slot's page: the
 * parent resolves every slot before its first fork, so that no child of its ever does (busybox
 * httpd's children call shutdown and sendfile, which the parent never does). Once per process,
 * never from a signal handler (dlsym is not async-signal-safe; a fork from a handler finds them
 * resolved by the fork before it, or resolves them as a first call would). */
#define SLOT_NAME(name) #name,
static const char *const slot_names[] = { REAL_SYMBOLS(SLOT_NAME) };
#undef SLOT_NAME

void cp_real_resolve_for_child(void)
{
	static atomic_bool done;
	if (atomic_load_explicit(&done, memory_order_relaxed))
		return;
	_Atomic(void *) *cells = (_Atomic(void *) *)&slot;
	_Static_assert(sizeof slot == sizeof slot_names / sizeof slot_names[0] * sizeof(void *),
		       "one name per slot");
	for (size_t i = 0; i < sizeof slot_names / sizeof slot_names[0]; i++)
		(void)resolve(&cells[i], slot_names[i]);
	atomic_store_explicit(&done, true, memory_order_relaxed);
}

CP_HOT int cp_real_close(int fd)
{
	int (*f)(int) = REAL(close, int (*)(int));
	return f ? f(fd) : (int)syscall(SYS_close, fd);
}

CP_CHILD int cp_real_shutdown(int fd, int how)
{
	int (*f)(int, int) = REAL(shutdown, int (*)(int, int));
	return f ? f(fd, how) : (int)syscall(SYS_shutdown, fd, how);
}

int cp_real_socket(int domain, int type, int protocol)
{
	int (*f)(int, int, int) = REAL(socket, int (*)(int, int, int));
	return f ? f(domain, type, protocol) : (int)syscall(SYS_socket, domain, type, protocol);
}

int cp_real_accept(int fd, struct sockaddr *addr, socklen_t *len)
{
	int (*f)(int, struct sockaddr *, socklen_t *) =
		REAL(accept, int (*)(int, struct sockaddr *, socklen_t *));
	return f ? f(fd, addr, len) : (int)syscall(SYS_accept4, fd, addr, len, 0);
}

int cp_real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags)
{
	int (*f)(int, struct sockaddr *, socklen_t *, int) =
		REAL(accept4, int (*)(int, struct sockaddr *, socklen_t *, int));
	return f ? f(fd, addr, len, flags) : (int)syscall(SYS_accept4, fd, addr, len, flags);
}

int cp_real_connect(int fd, const struct sockaddr *addr, socklen_t len)
{
	int (*f)(int, const struct sockaddr *, socklen_t) =
		REAL(connect, int (*)(int, const struct sockaddr *, socklen_t));
	return f ? f(fd, addr, len) : (int)syscall(SYS_connect, fd, addr, len);
}

int cp_real_dup(int fd)
{
	int (*f)(int) = REAL(dup, int (*)(int));
	return f ? f(fd) : (int)syscall(SYS_dup, fd);
}

CP_CHILD int cp_real_dup2(int oldfd, int newfd)
{
	int (*f)(int, int) = REAL(dup2, int (*)(int, int));
	if (f)
		return f(oldfd, newfd);
	if (oldfd == newfd) /* dup3 refuses equal numbers; dup2 checks validity and returns it */
		return syscall(SYS_fcntl, oldfd, F_GETFD) < 0 ? -1 : newfd;
	return (int)syscall(SYS_dup3, oldfd, newfd, 0);
}

int cp_real_dup3(int oldfd, int newfd, int flags)
{
	int (*f)(int, int, int) = REAL(dup3, int (*)(int, int, int));
	return f ? f(oldfd, newfd, flags) : (int)syscall(SYS_dup3, oldfd, newfd, flags);
}

/* fcntl's third argument is passed as a pointer-sized value, exactly as glibc itself does. */
int cp_real_fcntl(int fd, int cmd, void *arg)
{
	int (*f)(int, int, ...) = REAL(fcntl, int (*)(int, int, ...));
	return f ? f(fd, cmd, arg) : (int)syscall(SYS_fcntl, fd, cmd, arg);
}

int cp_real_fcntl64(int fd, int cmd, void *arg)
{
	int (*f)(int, int, ...) = REAL(fcntl64, int (*)(int, int, ...));
	return f ? f(fd, cmd, arg) : cp_real_fcntl(fd, cmd, arg);
}

int cp_real_close_range(unsigned int first, unsigned int last, int flags)
{
	int (*f)(unsigned int, unsigned int, int) =
		REAL(close_range, int (*)(unsigned int, unsigned int, int));
	return f ? f(first, last, flags) : (int)syscall(SYS_close_range, first, last, flags);
}

void cp_real_closefrom(int lowfd)
{
	void (*f)(int) = REAL(closefrom, void (*)(int));
	if (f)
		f(lowfd);
	else
		(void)syscall(SYS_close_range, (unsigned int)lowfd, ~0U, 0);
}

CP_HOT int cp_real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev)
{
	int (*f)(int, int, int, struct epoll_event *) =
		REAL(epoll_ctl, int (*)(int, int, int, struct epoll_event *));
	return f ? f(epfd, op, fd, ev) : (int)syscall(SYS_epoll_ctl, epfd, op, fd, ev);
}

int cp_real_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	int (*f)(int, int, int, const void *, socklen_t) =
		REAL(setsockopt, int (*)(int, int, int, const void *, socklen_t));
	return f ? f(fd, level, name, val, len) : (int)syscall(SYS_setsockopt, fd, level, name, val, len);
}

CP_CHILD void cp_real__exit(int status)
{
	void (*f)(int) = REAL(_exit, void (*)(int));
	if (f)
		f(status);
	for (;;) /* no libc _exit found: the system call, which does not return */
		syscall(SYS_exit_group, status);
}

CP_CHILD pid_t cp_real_fork(void)
{
	pid_t (*f)(void) = REAL(fork, pid_t (*)(void));
	return f ? f() : (pid_t)syscall(SYS_clone, SIGCHLD, 0, NULL, NULL, 0);
}

typedef int (*exec_fn)(const char *, char *const[], char *const[]);

int cp_real_execve(const char *path, char *const argv[], char *const envp[])
{
	exec_fn f = REAL(execve, exec_fn);
	return f ? f(path, argv, envp) : (int)syscall(SYS_execve, path, argv, envp);
}

int cp_real_execvpe(const char *file, char *const argv[], char *const envp[])
{
	exec_fn f = REAL(execvpe, exec_fn);
	if (f)
		return f(file, argv, envp);
	errno = ENOSYS;
	return -1;
}

int cp_real_fexecve(int fd, char *const argv[], char *const envp[])
{
	int (*f)(int, char *const[], char *const[]) = REAL(fexecve, int (*)(int, char *const[], char *const[]));
	return f ? f(fd, argv, envp) : (int)syscall(SYS_execveat, fd, "", argv, envp, AT_EMPTY_PATH);
}

int cp_real_execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags)
{
	int (*f)(int, const char *, char *const[], char *const[], int) =
		REAL(execveat, int (*)(int, const char *, char *const[], char *const[], int));
	return f ? f(dirfd, path, argv, envp, flags) : (int)syscall(SYS_execveat, dirfd, path, argv, envp, flags);
}

typedef int (*spawn_fn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
			const posix_spawnattr_t *, char *const[], char *const[]);

int cp_real_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	spawn_fn f = REAL(posix_spawn, spawn_fn);
	return f ? f(pid, path, fa, attr, argv, envp) : ENOSYS;
}

int cp_real_posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			 const posix_spawnattr_t *attr, char *const argv[], char *const envp[])
{
	spawn_fn f = REAL(posix_spawnp, spawn_fn);
	return f ? f(pid, file, fa, attr, argv, envp) : ENOSYS;
}

/* ---- the write family ---- */

CP_HOT ssize_t cp_real_send(int fd, const void *buf, size_t n, int flags)
{
	ssize_t (*f)(int, const void *, size_t, int) =
		REAL(send, ssize_t (*)(int, const void *, size_t, int));
	return f ? f(fd, buf, n, flags) : syscall(SYS_sendto, fd, buf, n, flags, NULL, 0);
}

CP_HOT ssize_t cp_real_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		       socklen_t tolen)
{
	ssize_t (*f)(int, const void *, size_t, int, const struct sockaddr *, socklen_t) =
		REAL(sendto, ssize_t (*)(int, const void *, size_t, int, const struct sockaddr *, socklen_t));
	return f ? f(fd, buf, n, flags, to, tolen) : syscall(SYS_sendto, fd, buf, n, flags, to, tolen);
}

CP_HOT ssize_t cp_real_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	ssize_t (*f)(int, const struct msghdr *, int) =
		REAL(sendmsg, ssize_t (*)(int, const struct msghdr *, int));
	return f ? f(fd, msg, flags) : syscall(SYS_sendmsg, fd, msg, flags);
}

int cp_real_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	int (*f)(int, struct mmsghdr *, unsigned int, int) =
		REAL(sendmmsg, int (*)(int, struct mmsghdr *, unsigned int, int));
	return f ? f(fd, vec, vlen, flags) : (int)syscall(SYS_sendmmsg, fd, vec, vlen, flags);
}

CP_HOT ssize_t cp_real_write(int fd, const void *buf, size_t n)
{
	ssize_t (*f)(int, const void *, size_t) = REAL(write, ssize_t (*)(int, const void *, size_t));
	return f ? f(fd, buf, n) : syscall(SYS_write, fd, buf, n);
}

CP_HOT ssize_t cp_real_writev(int fd, const struct iovec *iov, int iovcnt)
{
	ssize_t (*f)(int, const struct iovec *, int) =
		REAL(writev, ssize_t (*)(int, const struct iovec *, int));
	return f ? f(fd, iov, iovcnt) : syscall(SYS_writev, fd, iov, iovcnt);
}

ssize_t cp_real_sendfile(int out, int in, off_t *offset, size_t count)
{
	ssize_t (*f)(int, int, off_t *, size_t) = REAL(sendfile, ssize_t (*)(int, int, off_t *, size_t));
	return f ? f(out, in, offset, count) : syscall(SYS_sendfile, out, in, offset, count);
}

/* sendfile64 takes a 64-bit offset on every ABI; on 64-bit ones it is sendfile itself. */
CP_CHILD ssize_t cp_real_sendfile64(int out, int in, off64_t *offset, size_t count)
{
	ssize_t (*f)(int, int, off64_t *, size_t) = REAL(sendfile64, ssize_t (*)(int, int, off64_t *, size_t));
	return f ? f(out, in, offset, count) : syscall(SYS_sendfile, out, in, offset, count);
}

ssize_t cp_real_splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len, unsigned flags)
{
	ssize_t (*f)(int, loff_t *, int, loff_t *, size_t, unsigned) =
		REAL(splice, ssize_t (*)(int, loff_t *, int, loff_t *, size_t, unsigned));
	return f ? f(in, off_in, out, off_out, len, flags)
		 : syscall(SYS_splice, in, off_in, out, off_out, len, flags);
}

/* ---- signals ---- */

CP_CHILD CP_UNINSTRUMENTED int cp_real_sigaction(int sig, const struct sigaction *act,
						  struct sigaction *old)
{
	int (*f)(int, const struct sigaction *, struct sigaction *) =
		REAL(sigaction, int (*)(int, const struct sigaction *, struct sigaction *));
	if (f)
		return f(sig, act, old);
	errno = ENOSYS; /* glibc's sigaction is always there; the kernel's needs a restorer */
	return -1;
}

/* The other installers, for every signal but SIGPIPE: the C library's own (see real.h). */
static const char *const sigfn_names[CP_SIGFN_COUNT] = {
	[CP_SIGFN_SIGACTION_] = "__sigaction", [CP_SIGFN_SIGNAL] = "signal",
	[CP_SIGFN_BSD_SIGNAL] = "bsd_signal",  [CP_SIGFN_SSIGNAL] = "ssignal",
	[CP_SIGFN_SYSV_SIGNAL] = "sysv_signal", [CP_SIGFN_SYSV_SIGNAL_] = "__sysv_signal",
	[CP_SIGFN_SIGSET] = "sigset",          [CP_SIGFN_SIGIGNORE] = "sigignore",
	[CP_SIGFN_SIGINTERRUPT] = "siginterrupt",
};
static _Atomic(void *) sigfn_slots[CP_SIGFN_COUNT] CP_HOT_DATA(00); /* resolved at every start */

CP_CHILD CP_UNINSTRUMENTED void *cp_real_sigfn(enum cp_sigfn which)
{
	return resolve(&sigfn_slots[which], sigfn_names[which]);
}

ssize_t cp_real_recvmsg(int fd, struct msghdr *msg, int flags)
{
	ssize_t (*f)(int, struct msghdr *, int) = REAL(recvmsg, ssize_t (*)(int, struct msghdr *, int));
	return f ? f(fd, msg, flags) : syscall(SYS_recvmsg, fd, msg, flags);
}

int cp_real_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout)
{
	int (*f)(int, struct mmsghdr *, unsigned int, int, struct timespec *) =
		REAL(recvmmsg, int (*)(int, struct mmsghdr *, unsigned int, int, struct timespec *));
	return f ? f(fd, vec, vlen, flags, timeout) : (int)syscall(SYS_recvmmsg, fd, vec, vlen, flags, timeout);
}

#undef syscall
long cp_real_syscall(long number, ...)
{
	long a[6];
	CP_SYSCALL_WORDS(a, number);
	return cp_real_syscall6(number, a);
}

long cp_real_syscall6(long number, const long a[6])
{
	long (*f)(long, ...) = REAL(syscall, long (*)(long, ...));
	if (f == NULL) {
		errno = ENOSYS;
		return -1;
	}
	return f(number, a[0], a[1], a[2], a[3], a[4], a[5]);
}

void cp_real_bind_early(void)
{
	(void)REAL(syscall, void *);
}
