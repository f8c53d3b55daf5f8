/* closepolicy — the real libc functions behind the wrappers.
 * Resolved with dlsym(RTLD_NEXT) on first use (lock-free, idempotent), so they work before the
 * constructor runs and from any thread; a raw syscall stands in where the symbol is missing. */
#ifndef CLOSEPOLICY_REAL_H
#define CLOSEPOLICY_REAL_H

#include <signal.h>
#include <stdarg.h>
#include <sys/epoll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

/* The ThreadSanitizer runtime installs its handlers while it starts, through the sigaction()
 * that follows its own in the lookup order: the shim's. What it reaches (the signal installers'
 * wrappers and the look-up of the real function) carries no instrumentation, which would run
 * before that runtime exists. Elsewhere the attribute changes nothing. */
#if defined(__clang__) && defined(__has_attribute)
#if __has_attribute(disable_sanitizer_instrumentation)
/* clang's no_sanitize("thread") still calls the runtime at function entry and exit */
#define CP_UNINSTRUMENTED __attribute__((disable_sanitizer_instrumentation))
#endif
#endif
#ifndef CP_UNINSTRUMENTED
#define CP_UNINSTRUMENTED __attribute__((no_sanitize("thread")))
#endif

/* Before a fork: what a child calls first (close, dup2, execve, _exit), resolved here. */
void cp_real_resolve_for_child(void);

int cp_real_close(int fd);
int cp_real_shutdown(int fd, int how);
int cp_real_socket(int domain, int type, int protocol);
int cp_real_accept(int fd, struct sockaddr *addr, socklen_t *len);
int cp_real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int cp_real_connect(int fd, const struct sockaddr *addr, socklen_t len);
int cp_real_dup(int fd);
int cp_real_dup2(int oldfd, int newfd);
int cp_real_dup3(int oldfd, int newfd, int flags);
int cp_real_fcntl(int fd, int cmd, void *arg);
int cp_real_fcntl64(int fd, int cmd, void *arg);
int cp_real_close_range(unsigned int first, unsigned int last, int flags);
void cp_real_closefrom(int lowfd);
int cp_real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int cp_real_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
pid_t cp_real_fork(void);
int cp_real_execve(const char *path, char *const argv[], char *const envp[]);
int cp_real_execvpe(const char *file, char *const argv[], char *const envp[]);
int cp_real_fexecve(int fd, char *const argv[], char *const envp[]);
int cp_real_execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags);
int cp_real_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
int cp_real_posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);

__attribute__((noreturn)) void cp_real__exit(int status);

ssize_t cp_real_send(int fd, const void *buf, size_t n, int flags);
ssize_t cp_real_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		       socklen_t tolen);
ssize_t cp_real_sendmsg(int fd, const struct msghdr *msg, int flags);
int cp_real_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags);
ssize_t cp_real_write(int fd, const void *buf, size_t n);
ssize_t cp_real_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t cp_real_sendfile(int out, int in, off_t *offset, size_t count);
ssize_t cp_real_sendfile64(int out, int in, off64_t *offset, size_t count);
ssize_t cp_real_splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len, unsigned flags);

ssize_t cp_real_recvmsg(int fd, struct msghdr *msg, int flags);
int cp_real_recvmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags, struct timespec *timeout);

/* The C library's syscall(), never the shim's own exported one (rawsys.c): the shim's raw calls
 * (futex, gettid, the log's writes) are its own business. */
long cp_real_syscall(long number, ...);
/* In a function declared (long number, ...): the six argument words after number, as the C
 * library's syscall() reads them (on x86-64 and aarch64 each is a register or a word of the
 * caller's stack, whether or not the call uses it; the kernel reads the ones it takes). */
#define CP_SYSCALL_WORDS(a, number)                   \
	do {                                          \
		va_list ap_;                          \
		va_start(ap_, number);                \
		for (int i_ = 0; i_ < 6; i_++)        \
			(a)[i_] = va_arg(ap_, long);  \
		va_end(ap_);                          \
	} while (0)
long cp_real_syscall6(long number, const long a[6]);

int cp_real_sigaction(int sig, const struct sigaction *act, struct sigaction *old);
/* The other signal installers of the C library, for signals other than SIGPIPE (the symbol, or
 * NULL when the C library lacks it). Resolved once: signal() may be called in a signal handler. */
enum cp_sigfn {
	CP_SIGFN_SIGACTION_, /* __sigaction */
	CP_SIGFN_SIGNAL,
	CP_SIGFN_BSD_SIGNAL,
	CP_SIGFN_SSIGNAL,
	CP_SIGFN_SYSV_SIGNAL,
	CP_SIGFN_SYSV_SIGNAL_, /* __sysv_signal */
	CP_SIGFN_SIGSET,
	CP_SIGFN_SIGIGNORE,
	CP_SIGFN_SIGINTERRUPT,
	CP_SIGFN_COUNT
};
void *cp_real_sigfn(enum cp_sigfn which);

/* At start-up: bind what a signal handler may need first (dlsym is no async-signal-safe call). */
void cp_real_bind_early(void);

#endif
