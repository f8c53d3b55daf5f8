/* Descriptors that are not connected TCP sockets, used under a policy that resets every TCP
 * socket: a pipe, a UNIX stream pair closed with unread data, a UDP socket, a file, a listening
 * TCP socket. Every call must behave as without the shim. Prints "ok" and exits 0, or names the
 * first failure and exits 1. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int failures;
#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			printf("FAIL %s:%d: %s (errno %d)\n", __FILE__, __LINE__, #cond, errno);   \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

int main(int argc, char **argv)
{
	char buf[64];
	const char *file = argc > 1 ? argv[1] : "/tmp/nontcp_ops.tmp";

	int p[2];
	CHECK(pipe(p) == 0);
	CHECK(write(p[1], "abc", 3) == 3);
	CHECK(read(p[0], buf, 3) == 3 && memcmp(buf, "abc", 3) == 0);
	CHECK(close(p[1]) == 0);
	CHECK(read(p[0], buf, 1) == 0); /* EOF: the write end really is closed */
	CHECK(close(p[0]) == 0);

	int sv[2];
	CHECK(socketpair(AF_UNIX, SOCK_STREAM, 0, sv) == 0);
	CHECK(write(sv[0], "hello", 5) == 5);
	CHECK(read(sv[1], buf, 2) == 2);
	CHECK(close(sv[1]) == 0); /* 3 bytes unread: UNIX sockets are none of the shim's business */
	CHECK(read(sv[0], buf, 1) <= 0); /* Linux: ECONNRESET, as without the shim */
	CHECK(close(sv[0]) == 0);

	int u = socket(AF_INET, SOCK_DGRAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	CHECK(u >= 0);
	CHECK(bind(u, (struct sockaddr *)&sin, sizeof sin) == 0);
	CHECK(getsockname(u, (struct sockaddr *)&sin, &len) == 0);
	CHECK(connect(u, (struct sockaddr *)&sin, sizeof sin) == 0);
	CHECK(send(u, "dgram", 5, 0) == 5);
	CHECK(recv(u, buf, sizeof buf, 0) == 5);
	CHECK(send(u, "again", 5, 0) == 5); /* left unread at close */
	CHECK(close(u) == 0);

	int f = open(file, O_RDWR | O_CREAT | O_TRUNC, 0600);
	CHECK(f >= 0);
	CHECK(write(f, "data", 4) == 4);
	CHECK(close(f) == 0);
	f = open(file, O_RDONLY);
	CHECK(f >= 0 && read(f, buf, 4) == 4 && memcmp(buf, "data", 4) == 0);
	CHECK(close(f) == 0);
	unlink(file);

	int l = socket(AF_INET6, SOCK_STREAM, 0);
	struct sockaddr_in6 s6 = { .sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT };
	CHECK(l >= 0);
	CHECK(bind(l, (struct sockaddr *)&s6, sizeof s6) == 0 || errno == EADDRNOTAVAIL);
	CHECK(listen(l, 4) == 0);
	CHECK(close(l) == 0);

	int t = socket(AF_INET, SOCK_STREAM, 0); /* never connected */
	CHECK(t >= 0 && close(t) == 0);

	if (failures == 0)
		printf("ok\n");
	return failures ? 1 : 0;
}
