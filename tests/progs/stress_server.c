/* The stress test's server (tests/integration/itest_stress.c), run under the shim: one thread,
 * one level-triggered epoll loop, non-blocking sockets, the way redis or nginx are built.
 *
 * Protocol, per connection: the client sends a 16-byte header "S<decimal size>\n" padded with
 * spaces, possibly followed by more bytes the server never reads (so that, without a graceful
 * close, the kernel would answer the close with RST and the reply's tail could be lost). The
 * server answers with `size` bytes of a pattern (byte k = k % 251, so a lost or shifted stretch
 * is visible), then closes. A connection that ends or fails before that is closed as it is.
 * Closing is all the server does to end a connection: what the peer sees is the shim's doing.
 *
 * Prints "port N". Commands on stdin, one a line:
 *   stats  -> "stats accepted=A closed=C open=O"
 *   exit   -> exit status 0 */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define HEADER 16
#define PERIOD 251
#define CHUNK (64 * 1024)
#define MAXFD (1 << 20)

struct conn {
	uint8_t state; /* 0 = free, 1 = reading the header, 2 = writing the reply */
	uint8_t got;
	char header[HEADER];
	uint64_t size, sent;
};

static struct conn *conns;
static int ep;
static long accepted, closed_count;
static char pattern[CHUNK + PERIOD];

static void die(const char *what)
{
	fprintf(stderr, "stress_server: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void end_conn(int fd)
{
	conns[fd].state = 0;
	if (close(fd) < 0) /* also leaves the epoll set: the shim must make that so */
		die("close");
	closed_count++;
}

static void on_accept(int lfd)
{
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
		if (fd < 0) {
			if (errno == EAGAIN || errno == ECONNABORTED || errno == EINTR)
				return;
			die("accept4");
		}
		if (fd >= MAXFD)
			die("descriptor too high");
		accepted++;
		conns[fd] = (struct conn){ .state = 1 };
		struct epoll_event ev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = fd };
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0)
			die("epoll_ctl add");
	}
}

static void on_header(int fd)
{
	struct conn *c = &conns[fd];
	/* exactly the header: anything after it stays unread in the socket */
	ssize_t n = read(fd, c->header + c->got, HEADER - c->got);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n <= 0) { /* the peer left (or reset) before asking */
		end_conn(fd);
		return;
	}
	c->got = (uint8_t)(c->got + n);
	if (c->got < HEADER)
		return;
	if (c->header[0] != 'S')
		die("bad header");
	c->size = strtoull(c->header + 1, NULL, 10);
	c->state = 2;
	struct epoll_event ev = { .events = EPOLLOUT, .data.fd = fd };
	if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &ev) < 0)
		die("epoll_ctl mod");
}

static void on_writable(int fd)
{
	struct conn *c = &conns[fd];
	while (c->sent < c->size) {
		uint64_t left = c->size - c->sent;
		size_t want = left < CHUNK ? (size_t)left : CHUNK;
		ssize_t n = write(fd, pattern + c->sent % PERIOD, want);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			return;
		if (n < 0) { /* EPIPE, ECONNRESET: the peer went away mid-transfer */
			end_conn(fd);
			return;
		}
		c->sent += (uint64_t)n;
	}
	end_conn(fd);
}

static void on_command(void)
{
	char line[64];
	if (fgets(line, sizeof line, stdin) == NULL)
		exit(0);
	if (strncmp(line, "stats", 5) == 0)
		printf("stats accepted=%ld closed=%ld open=%ld\n", accepted, closed_count,
		       accepted - closed_count);
	else if (strncmp(line, "exit", 4) == 0)
		exit(0);
}

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	signal(SIGPIPE, SIG_IGN); /* as event-loop servers do: a write to a vanished peer is EPIPE */
	conns = calloc(MAXFD, sizeof *conns);
	for (size_t i = 0; i < sizeof pattern; i++)
		pattern[i] = (char)(i % PERIOD);
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	if (conns == NULL || lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 ||
	    listen(lfd, 4096) < 0 || getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
		die("listen");
	ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event lev = { .events = EPOLLIN, .data.fd = lfd };
	struct epoll_event iev = { .events = EPOLLIN, .data.fd = 0 };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, 0, &iev) < 0)
		die("epoll");
	printf("port %d\n", ntohs(sin.sin_port));

	for (;;) {
		struct epoll_event evs[256];
		int n = epoll_wait(ep, evs, 256, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd)
				on_accept(lfd);
			else if (fd == 0)
				on_command();
			else if (conns[fd].state == 1)
				on_header(fd);
			else if (conns[fd].state == 2)
				on_writable(fd);
			else /* an event for a number this program closed: the shim leaked it */
				die("event for a closed connection");
		}
	}
}
