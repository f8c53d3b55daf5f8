/* A writer whose reader is gone, for the EPIPE / SIGPIPE integration tests (run under the shim).
 *   sigpipe_prog [-d DISP] [-t TARGET] [-c CALL] [-n COUNT] [-T] [-b]
 *   DISP:   default (nothing installed) | ignore | handler (sigaction) | siginfo (SA_SIGINFO) |
 *           signal (signal()) | sysv (sysv_signal: SA_RESETHAND) | readback (checks that what
 *           the program installs reads back as it set it, then installs a handler)
 *   TARGET: pipe (its reader closed) | socket (loopback TCP, the peer closed and reset) |
 *           stdout (write to standard output until a call fails; nothing else is printed) |
 *           reset:PORT (connect to 127.0.0.1:PORT, print "connected", wait for the peer's RST) |
 *           wait (no writes: prints "ready", then a line per line of stdin, for kill())
 *   CALL:   write writev send sendto sendmsg sendmmsg sendfile splice raw (syscall(SYS_write))
 *           stdio (fwrite + fflush)
 *   COUNT:  failing calls to make (default 1)
 *   -T: make the calls in a second thread (the handler checks it runs in that thread)
 *   -b: block SIGPIPE around the calls; print whether one is pending, then unblock
 * Prints "peer ADDR" (socket), "call CALL result R errno E" per call, then
 * "handler calls N signo S code C pid_ok P tid_ok T", and "done"; exits 0 (unless SIGPIPE kills
 * it). Lines starting with FAIL report a check that failed. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "broken_fds.h"

static volatile sig_atomic_t calls, last_signo, last_code, pid_ok, tid_ok;
static volatile pid_t writer_tid;

static void on_signal(int sig)
{
	calls++;
	last_signo = sig;
	tid_ok = (pid_t)syscall(SYS_gettid) == writer_tid;
}

static void on_info(int sig, siginfo_t *si, void *ctx)
{
	(void)ctx;
	calls++;
	last_signo = sig;
	last_code = si->si_code;
	pid_ok = si->si_pid == getpid() && si->si_uid == getuid();
	tid_ok = (pid_t)syscall(SYS_gettid) == writer_tid;
}

static void other_handler(int sig)
{
	(void)sig;
}

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (!(cond))                                                            \
			printf("FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);          \
	} while (0)

/* What the program installs reads back exactly as it set it, never as the shim's handler. */
static void readback(void)
{
	struct sigaction a, b, old, cur;
	CHECK(sigaction(SIGPIPE, NULL, &cur) == 0);
	CHECK(cur.sa_handler == SIG_DFL);
	CHECK((cur.sa_flags & SA_SIGINFO) == 0);

	memset(&a, 0, sizeof a);
	a.sa_handler = other_handler;
	a.sa_flags = SA_RESTART;
	sigemptyset(&a.sa_mask);
	sigaddset(&a.sa_mask, SIGUSR1);
	CHECK(sigaction(SIGPIPE, &a, &old) == 0);
	CHECK(old.sa_handler == SIG_DFL);

	memset(&b, 0, sizeof b);
	b.sa_sigaction = on_info;
	b.sa_flags = SA_SIGINFO | SA_NODEFER;
	sigemptyset(&b.sa_mask);
	CHECK(sigaction(SIGPIPE, &b, &old) == 0);
	CHECK(old.sa_handler == other_handler);
	CHECK((old.sa_flags & (SA_RESTART | SA_SIGINFO | SA_NODEFER)) == SA_RESTART);
	CHECK(sigismember(&old.sa_mask, SIGUSR1) == 1);
	CHECK(sigismember(&old.sa_mask, SIGUSR2) == 0);

	CHECK((void *)signal(SIGPIPE, SIG_IGN) == (void *)on_info); /* the union's other member */
	CHECK(sigaction(SIGPIPE, NULL, &cur) == 0);
	CHECK(cur.sa_handler == SIG_IGN);
	CHECK(signal(SIGPIPE, other_handler) == SIG_IGN);
	CHECK(signal(SIGPIPE, SIG_DFL) == other_handler);
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdeprecated-declarations" /* old programs still call it */
	CHECK(sigset(SIGPIPE, other_handler) == SIG_DFL);
#pragma GCC diagnostic pop

	/* restore what the first sigaction returned, as a library would: it must be the program's */
	CHECK(sigaction(SIGPIPE, &old, NULL) == 0);
	CHECK(sigaction(SIGPIPE, NULL, &cur) == 0);
	CHECK(cur.sa_handler == other_handler);
	CHECK(sigismember(&cur.sa_mask, SIGUSR1) == 1);
	/* every other signal is the C library's business alone */
	CHECK(signal(SIGUSR1, other_handler) == SIG_DFL);
	CHECK(sigaction(SIGUSR1, NULL, &cur) == 0 && cur.sa_handler == other_handler);
	CHECK(signal(SIGUSR1, SIG_DFL) == other_handler);
	printf("readback checked\n");
	CHECK(sigaction(SIGPIPE, &b, NULL) == 0); /* the handler the writes will call */
}

static void install(const char *disp)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sigemptyset(&sa.sa_mask);
	if (strcmp(disp, "default") == 0) {
		return;
	} else if (strcmp(disp, "ignore") == 0) {
		sa.sa_handler = SIG_IGN;
		sigaction(SIGPIPE, &sa, NULL);
	} else if (strcmp(disp, "handler") == 0) {
		sa.sa_handler = on_signal;
		sigaction(SIGPIPE, &sa, NULL);
	} else if (strcmp(disp, "siginfo") == 0) {
		sa.sa_sigaction = on_info;
		sa.sa_flags = SA_SIGINFO;
		sigaction(SIGPIPE, &sa, NULL);
	} else if (strcmp(disp, "signal") == 0) {
		CHECK(signal(SIGPIPE, on_signal) == SIG_DFL);
	} else if (strcmp(disp, "sysv") == 0) {
		CHECK(sysv_signal(SIGPIPE, on_signal) == SIG_DFL);
	} else if (strcmp(disp, "readback") == 0) {
		readback();
	} else {
		fprintf(stderr, "sigpipe_prog: unknown disposition %s\n", disp);
		exit(2);
	}
}

/* Connect to the test's listener and wait until it resets the connection: the first write then
 * fails with ECONNRESET, the next ones with EPIPE. */
static int reset_socket(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((unsigned short)port) };
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof sin) < 0)
		exit(3);
	printf("connected\n");
	struct pollfd pf = { .fd = c, .events = 0 };
	if (poll(&pf, 1, 10000) != 1 || !(pf.revents & (POLLERR | POLLHUP)))
		exit(4);
	return c;
}

static const char *call = "write";
static int target_fd, count = 1, block, quiet;
static char payload[100];

static ssize_t one_call(int fd)
{
	struct iovec iov[2] = { { payload, 60 }, { payload + 60, 40 } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	if (strcmp(call, "write") == 0)
		return write(fd, payload, sizeof payload);
	if (strcmp(call, "writev") == 0)
		return writev(fd, iov, 2);
	if (strcmp(call, "send") == 0)
		return send(fd, payload, sizeof payload, 0);
	if (strcmp(call, "sendto") == 0)
		return sendto(fd, payload, sizeof payload, 0, NULL, 0);
	if (strcmp(call, "sendmsg") == 0)
		return sendmsg(fd, &msg, 0);
	if (strcmp(call, "sendmmsg") == 0) {
		struct mmsghdr m = { .msg_hdr = msg };
		return sendmmsg(fd, &m, 1, 0);
	}
	if (strcmp(call, "sendfile") == 0) {
		int mf = memfd_create("payload", 0);
		if (mf < 0 || write(mf, payload, sizeof payload) != (ssize_t)sizeof payload)
			exit(3);
		off_t off = 0;
		ssize_t r = sendfile(fd, mf, &off, sizeof payload);
		int err = errno;
		close(mf);
		errno = err;
		return r;
	}
	if (strcmp(call, "splice") == 0) {
		int p[2];
		if (pipe(p) < 0 || write(p[1], payload, sizeof payload) != (ssize_t)sizeof payload)
			exit(3);
		ssize_t r = splice(p[0], NULL, fd, NULL, sizeof payload, 0);
		int err = errno;
		close(p[0]);
		close(p[1]);
		errno = err;
		return r;
	}
	if (strcmp(call, "raw") == 0)
		return syscall(SYS_write, fd, payload, sizeof payload);
	if (strcmp(call, "stdio") == 0) {
		static FILE *f;
		if (f == NULL)
			f = fdopen(dup(fd), "w");
		fwrite(payload, 1, sizeof payload, f);
		return fflush(f) == 0 ? (ssize_t)sizeof payload : -1;
	}
	fprintf(stderr, "sigpipe_prog: unknown call %s\n", call);
	exit(2);
}

static void *writer(void *arg)
{
	(void)arg;
	writer_tid = (pid_t)syscall(SYS_gettid);
	sigset_t only;
	sigemptyset(&only);
	sigaddset(&only, SIGPIPE);
	if (block)
		pthread_sigmask(SIG_BLOCK, &only, NULL);
	for (int i = 0; i < count || quiet; i++) {
		errno = 0;
		ssize_t r = one_call(target_fd);
		int err = errno;
		if (quiet && r < 0)
			break;
		if (!quiet)
			printf("call %s result %zd errno %s\n", call, r, r < 0 ? strerrorname_np(err) : "0");
	}
	if (block) {
		sigset_t pending;
		sigpending(&pending);
		printf("pending %d\n", sigismember(&pending, SIGPIPE));
		pthread_sigmask(SIG_UNBLOCK, &only, NULL);
	}
	return NULL;
}

int main(int argc, char **argv)
{
	const char *disp = "default", *target = "pipe";
	int opt, threaded = 0;
	while ((opt = getopt(argc, argv, "d:t:c:n:Tb")) != -1) {
		if (opt == 'd')
			disp = optarg;
		else if (opt == 't')
			target = optarg;
		else if (opt == 'c')
			call = optarg;
		else if (opt == 'n')
			count = atoi(optarg);
		else if (opt == 'T')
			threaded = 1;
		else if (opt == 'b')
			block = 1;
		else
			return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	memset(payload, 'p', sizeof payload);
	install(disp);
	if (strcmp(target, "wait") == 0) {
		writer_tid = (pid_t)syscall(SYS_gettid);
		printf("ready\n");
		char line[64];
		for (;;) {
			if (fgets(line, sizeof line, stdin) != NULL)
				printf("handler calls %d signo %d code %d pid_ok %d\n", (int)calls,
				       (int)last_signo, (int)last_code, (int)pid_ok);
			else if (ferror(stdin) && errno == EINTR) /* the handler interrupted read() */
				clearerr(stdin);
			else
				break;
		}
		printf("done\n");
		return 0;
	}
	if (strcmp(target, "stdout") == 0) {
		target_fd = 1;
		quiet = 1;
	} else if (strncmp(target, "reset:", 6) == 0) {
		target_fd = reset_socket(atoi(target + 6));
	} else {
		int port;
		if (strcmp(target, "socket") == 0) {
			target_fd = broken_socket(&port);
			printf("peer 127.0.0.1:%d\n", port);
		} else {
			target_fd = broken_pipe();
		}
	}
	if (quiet) {
		writer(NULL);
		return 0;
	}
	if (threaded) {
		pthread_t t;
		pthread_create(&t, NULL, writer, NULL);
		pthread_join(t, NULL);
	} else {
		writer(NULL);
	}
	printf("handler calls %d signo %d code %d pid_ok %d tid_ok %d\n", (int)calls, (int)last_signo,
	       (int)last_code, (int)pid_ok, (int)tid_ok);
	printf("done\n");
	return 0;
}
