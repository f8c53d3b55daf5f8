/* A TCP server driven one step at a time from stdin, for the exhaustion and failure-path tests:
 * the test decides exactly when the program accepts, closes, runs out of descriptors or closes
 * numbers it does not own. Prints "port N"; then one command a line, one answer a line:
 *   serve N W        accept one connection, read N bytes, write W bytes   -> "served FD"
 *   close FD         close(FD)                                            -> "close FD = RET ERRNO"
 *   open PATH        open(PATH, O_RDWR|O_CREAT|O_APPEND)                  -> "open = FD"
 *   check FD         fcntl(FD, F_GETFD)                                   -> "check FD open|closed"
 *   write FD TEXT    write(FD, "TEXT\n")                                  -> "write FD = RET"
 *   dup2 OLD NEW     dup2(OLD, NEW)                                       -> "dup2 = RET ERRNO"
 *   closefrom LOW    closefrom(LOW)                                       -> "closefrom done"
 *   close_range A B  close_range(A, B, 0)                                 -> "close_range = RET ERRNO"
 *   fill LIMIT       set the soft RLIMIT_NOFILE to LIMIT, then open /dev/null until EMFILE
 *                                                                         -> "fill N"
 *   unfill           close what fill opened, restore the limit            -> "unfill done"
 *   nothreads 0|1    1: pthread_create fails with EAGAIN from now on;     -> "nothreads N"
 *                    0: it works again
 *   rawclose FD      close FD by the system call, unseen by the shim      -> "rawclose FD = RET ERRNO"
 *   rawserve W       accept one connection by the system call (unseen), write W bytes
 *                                                                         -> "rawserved FD"
 *   connect PORT     connect to 127.0.0.1:PORT (the shim sees it)         -> "connected FD"
 *   rawconnect PORT  socket + connect by system calls (unseen)            -> "rawconnected FD"
 *   handoff FD       fork; the parent closes FD, then the child closes it (the last holder)
 *                    and exits; the parent reaps it                       -> "handoff FD = STATUS PID"
 *   exit             exit status 0
 * ERRNO is 0 or errno's number. The first line also names the listener: "port N lfd FD".
 *
 * pthread_create is defined here and exported (the program is linked with -rdynamic), so it
 * interposes on the C library's for the shim as well: that is how a test makes the shim's
 * drainer thread impossible to start, without a resource limit that would break more than that. */
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#define MAX_FILL 65536

static int lfd;
static int fill_fds[MAX_FILL], n_fill;
static struct rlimit saved_nofile;
static volatile int threads_fail;

int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg);
int pthread_create(pthread_t *t, const pthread_attr_t *attr, void *(*fn)(void *), void *arg)
{
	typedef int (*create_fn)(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
	if (threads_fail)
		return EAGAIN;
	/* under ThreadSanitizer its interceptor, which must see every thread; else the C library's */
	create_fn real = (create_fn)dlsym(RTLD_DEFAULT, "__interceptor_pthread_create");
	if (real == NULL)
		real = (create_fn)dlsym(RTLD_DEFAULT, "___interceptor_pthread_create");
	if (real == NULL)
		real = (create_fn)dlsym(RTLD_NEXT, "pthread_create");
	return real ? real(t, attr, fn, arg) : ENOSYS;
}

/* A system call made by an inline instruction, as Go programs and static code make them: no
 * wrapper of the C library's (syscall() included) sees it. */
static long unseen_syscall(long n, long a, long b, long c)
{
	long ret;
#if defined(__x86_64__)
	register long r10 __asm__("r10") = 0; /* a fourth argument: accept4's flags */
	__asm__ volatile("syscall" : "=a"(ret) : "a"(n), "D"(a), "S"(b), "d"(c), "r"(r10)
			 : "rcx", "r11", "memory");
#elif defined(__aarch64__)
	register long x8 __asm__("x8") = n, x0 __asm__("x0") = a, x1 __asm__("x1") = b,
		      x2 __asm__("x2") = c, x3 __asm__("x3") = 0;
	__asm__ volatile("svc 0" : "+r"(x0) : "r"(x8), "r"(x1), "r"(x2), "r"(x3) : "memory");
	ret = x0;
#else
#error "unseen_syscall: x86-64 and aarch64 only"
#endif
	if (ret < 0 && ret > -4096) {
		errno = (int)-ret;
		return -1;
	}
	return ret;
}

static void die(const char *what)
{
	fprintf(stderr, "step_server: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void write_all(int fd, long nwrite)
{
	static char buf[1 << 16];
	memset(buf, 'x', sizeof buf);
	for (long sent = 0; sent < nwrite;) {
		size_t chunk = (size_t)(nwrite - sent) < sizeof buf ? (size_t)(nwrite - sent) : sizeof buf;
		ssize_t n = write(fd, buf, chunk);
		if (n < 0)
			die("write");
		sent += n;
	}
}

static void serve(long nread, long nwrite)
{
	static char buf[1 << 16];
	int fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		die("accept");
	for (long got = 0; got < nread;) {
		ssize_t n = read(fd, buf, (size_t)(nread - got) < sizeof buf ? (size_t)(nread - got) : sizeof buf);
		if (n <= 0)
			die("read");
		got += n;
	}
	write_all(fd, nwrite);
	printf("served %d\n", fd);
}

/* Sockets made and closed where the shim cannot see it, as a library with its own system calls
 * (or io_uring) would: the shim's table keeps a stale entry for the number. */
static void raw_serve(long nwrite)
{
	int fd = (int)unseen_syscall(SYS_accept4, lfd, 0, 0);
	if (fd < 0)
		die("accept4 (system call)");
	write_all(fd, nwrite);
	printf("rawserved %d\n", fd);
}

/* A fork-per-connection server's hand-off: the child holds the last reference when it closes. */
static void handoff(int fd)
{
	int order[2];
	if (pipe(order) < 0)
		die("pipe");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		char c;
		close(order[1]);
		_exit(read(order[0], &c, 1) == 0 && close(fd) == 0 ? 0 : 1); /* EOF: the parent closed */
	}
	close(order[0]);
	close(fd);
	close(order[1]);
	int st = -1;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	printf("handoff %d = %d %d\n", fd, st, (int)pid);
}

static int connect_to(long port, int raw)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((unsigned short)port) };
	int fd = raw ? (int)unseen_syscall(SYS_socket, AF_INET, SOCK_STREAM, 0) : socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0)
		die("socket");
	if ((raw ? unseen_syscall(SYS_connect, fd, (long)&sin, sizeof sin) : connect(fd, (struct sockaddr *)&sin, sizeof sin)) < 0)
		die("connect");
	return fd;
}

static void fill(long limit)
{
	getrlimit(RLIMIT_NOFILE, &saved_nofile);
	struct rlimit rl = { (rlim_t)limit, saved_nofile.rlim_max };
	if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
		die("setrlimit");
	while (n_fill < MAX_FILL) {
		int fd = open("/dev/null", O_RDONLY);
		if (fd < 0) {
			if (errno != EMFILE)
				die("fill");
			break;
		}
		fill_fds[n_fill++] = fd;
	}
	printf("fill %d\n", n_fill);
}

static void unfill(void)
{
	while (n_fill > 0)
		close(fill_fds[--n_fill]);
	setrlimit(RLIMIT_NOFILE, &saved_nofile);
	printf("unfill done\n");
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
		die("listen");
	printf("port %d lfd %d\n", ntohs(sin.sin_port), lfd);

	char line[512], text[256];
	long a, b;
	while (fgets(line, sizeof line, stdin) != NULL) {
		if (sscanf(line, "serve %ld %ld", &a, &b) == 2) {
			serve(a, b);
		} else if (sscanf(line, "rawclose %ld", &a) == 1) {
			long r = unseen_syscall(SYS_close, (int)a, 0, 0);
			printf("rawclose %ld = %ld %d\n", a, r, r < 0 ? errno : 0);
		} else if (sscanf(line, "rawserve %ld", &a) == 1) {
			raw_serve(a);
		} else if (sscanf(line, "connect %ld", &a) == 1) {
			printf("connected %d\n", connect_to(a, 0));
		} else if (sscanf(line, "rawconnect %ld", &a) == 1) {
			printf("rawconnected %d\n", connect_to(a, 1));
		} else if (sscanf(line, "close %ld", &a) == 1) {
			int r = close((int)a);
			printf("close %ld = %d %d\n", a, r, r < 0 ? errno : 0);
		} else if (sscanf(line, "open %255s", text) == 1) {
			printf("open = %d\n", open(text, O_RDWR | O_CREAT | O_APPEND, 0600));
		} else if (sscanf(line, "check %ld", &a) == 1) {
			printf("check %ld %s\n", a, fcntl((int)a, F_GETFD) < 0 ? "closed" : "open");
		} else if (sscanf(line, "write %ld %255s", &a, text) == 2) {
			strcat(text, "\n");
			printf("write %ld = %zd\n", a, write((int)a, text, strlen(text)));
		} else if (sscanf(line, "dup2 %ld %ld", &a, &b) == 2) {
			int r = dup2((int)a, (int)b);
			printf("dup2 = %d %d\n", r, r < 0 ? errno : 0);
		} else if (sscanf(line, "closefrom %ld", &a) == 1) {
			closefrom((int)a);
			printf("closefrom done\n");
		} else if (sscanf(line, "close_range %ld %ld", &a, &b) == 2) {
			int r = close_range((unsigned)a, b < 0 ? ~0U : (unsigned)b, 0);
			printf("close_range = %d %d\n", r, r < 0 ? errno : 0);
		} else if (sscanf(line, "fill %ld", &a) == 1) {
			fill(a);
		} else if (strncmp(line, "unfill", 6) == 0) {
			unfill();
		} else if (sscanf(line, "nothreads %ld", &a) == 1) {
			threads_fail = (int)a;
			printf("nothreads %ld\n", a);
		} else if (sscanf(line, "handoff %ld", &a) == 1) {
			handoff((int)a);
		} else if (strncmp(line, "exit", 4) == 0) {
			return 0;
		} else {
			fprintf(stderr, "step_server: unknown command: %s", line);
			return 2;
		}
	}
	return 0;
}
