/* The least an object preloaded into a forking server must do to keep closepolicy's promise on
 * its closes, written for bench_httpd as the floor under the shim's figures: what a server like
 * busybox httpd (accept, fork, the parent closes its copy, the child dup2s the socket onto 0 and
 * 1 and exits with it open) costs with no more than that. Not a product: one pattern, no policy,
 * no log but a line on stderr, no threads, no exec, descriptors below 1024.
 *
 *  - last reference: a count per socket on a shared page, raised before every fork for each
 *    socket the process holds (before, so a child can never take it to zero first), lowered at
 *    each release; only the release that takes it to zero is the connection's close;
 *  - observe only (the default): that close asks the kernel how much is unread (FIONREAD), the
 *    bytes an RST would lose, and says so when there are any;
 *  - graceful (CP_FLOOR_GRACEFUL=1 in the environment): that close sends the FIN and reads
 *    until the peer's EOF, synchronously, in the closing process: a blocking read on a blocking
 *    socket (busybox's), which a real drain could not afford (no bound on a silent peer: a bound
 *    costs a call more), so this floor is if anything lower than the least a drain can cost;
 *    a non-blocking socket waits in poll, 5 s of silence at most.
 *
 * The child's pages: this code (its first call), the page of the descriptor list it writes, and
 * the shared page of counts — the three any such object touches. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

enum { FDS = 1024, SLOTS = 1024, HELD = 64 };

static int (*real_close)(int);
static int (*real_accept)(int, struct sockaddr *, socklen_t *);
static int (*real_accept4)(int, struct sockaddr *, socklen_t *, int);
static int (*real_dup2)(int, int);
static pid_t (*real_fork)(void);
static void (*real_exit)(int);

static atomic_int *counts; /* shared by the whole process tree: a count per socket */
static bool graceful;

/* What this process holds, on one page: the slot of each followed descriptor (+1; 0 none) and
 * the list of them. */
static struct {
	unsigned short slot_of[FDS];
	int held[HELD];
	int n_held;
	unsigned next_slot;
} mine;

__attribute__((constructor)) static void floor_init(void)
{
	real_close = (int (*)(int))dlsym(RTLD_NEXT, "close");
	real_accept = (int (*)(int, struct sockaddr *, socklen_t *))dlsym(RTLD_NEXT, "accept");
	real_accept4 = (int (*)(int, struct sockaddr *, socklen_t *, int))dlsym(RTLD_NEXT, "accept4");
	real_dup2 = (int (*)(int, int))dlsym(RTLD_NEXT, "dup2");
	real_fork = (pid_t(*)(void))dlsym(RTLD_NEXT, "fork");
	real_exit = (void (*)(int))dlsym(RTLD_NEXT, "_exit");
	void *m = mmap(NULL, SLOTS * sizeof(atomic_int), PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	counts = m == MAP_FAILED ? NULL : m;
	const char *g = getenv("CP_FLOOR_GRACEFUL");
	graceful = g != NULL && strcmp(g, "1") == 0;
}

static void hold(int fd, unsigned slot)
{
	if (fd < 0 || fd >= FDS || mine.n_held == HELD || counts == NULL)
		return;
	mine.slot_of[fd] = (unsigned short)(slot + 1);
	mine.held[mine.n_held++] = fd;
}

static void drain_until_eof(int fd)
{
	char buf[4096];
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t n = read(fd, buf, sizeof buf);
		if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
			return;
		if (n < 0) {
			struct pollfd p = { .fd = fd, .events = POLLIN };
			if (poll(&p, 1, 5000) <= 0)
				return;
		}
	}
}

/* This descriptor goes: the connection's close when it was the last one anywhere. */
static void release(int fd)
{
	if (fd < 0 || fd >= FDS || mine.slot_of[fd] == 0)
		return;
	unsigned slot = mine.slot_of[fd] - 1u;
	mine.slot_of[fd] = 0;
	for (int i = 0; i < mine.n_held; i++)
		if (mine.held[i] == fd) {
			mine.held[i] = mine.held[--mine.n_held];
			break;
		}
	if (atomic_fetch_sub(&counts[slot], 1) != 1)
		return;
	int saved = errno;
	if (graceful) {
		drain_until_eof(fd);
	} else {
		int unread = 0;
		if (ioctl(fd, FIONREAD, &unread) == 0 && unread > 0) {
			static const char line[] = "floor: close with unread bytes: the kernel sends an RST\n";
			(void)!write(2, line, sizeof line - 1);
		}
	}
	errno = saved;
}

static int followed(int fd)
{
	if (fd >= 0 && fd < FDS && counts != NULL) {
		unsigned slot = mine.next_slot++ % SLOTS;
		atomic_store(&counts[slot], 1);
		hold(fd, slot);
	}
	return fd;
}

int accept(int s, struct sockaddr *a, socklen_t *l)
{
	return followed(real_accept(s, a, l));
}

int accept4(int s, struct sockaddr *a, socklen_t *l, int flags)
{
	return followed(real_accept4(s, a, l, flags));
}

int close(int fd)
{
	release(fd);
	return real_close(fd);
}

int dup2(int old, int new)
{
	int r = real_dup2(old, new);
	if (r < 0 || old == new)
		return r;
	release(new);
	if (old >= 0 && old < FDS && mine.slot_of[old] != 0) {
		unsigned slot = mine.slot_of[old] - 1u;
		atomic_fetch_add(&counts[slot], 1);
		hold(new, slot);
	}
	return r;
}

pid_t fork(void)
{
	for (int i = 0; i < mine.n_held; i++)
		atomic_fetch_add(&counts[mine.slot_of[mine.held[i]] - 1], 1);
	pid_t pid = real_fork();
	if (pid < 0) {
		int saved = errno;
		for (int i = 0; i < mine.n_held; i++)
			atomic_fetch_sub(&counts[mine.slot_of[mine.held[i]] - 1], 1);
		errno = saved;
	}
	return pid;
}

static void release_all(void)
{
	while (mine.n_held > 0)
		release(mine.held[mine.n_held - 1]);
}

__attribute__((destructor)) static void floor_exit(void)
{
	release_all();
}

__attribute__((noreturn)) void _exit(int status)
{
	release_all();
	real_exit(status);
	__builtin_unreachable();
}
