/* Descriptors on which every write fails with EPIPE, for the SIGPIPE test programs. */
#ifndef CLOSEPOLICY_TEST_BROKEN_FDS_H
#define CLOSEPOLICY_TEST_BROKEN_FDS_H

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

/* A pipe whose reader is closed. */
static inline int broken_pipe(void)
{
	int p[2];
	if (pipe(p) < 0)
		exit(3);
	close(p[0]);
	return p[1];
}

/* A loopback TCP connection whose peer has closed, and reset the data sent after that; *port is
 * the peer's port. */
static inline int broken_socket(int *port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	int l = socket(AF_INET, SOCK_STREAM, 0);
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(l, 1) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) < 0)
		exit(3);
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (struct sockaddr *)&sin, sizeof sin) < 0)
		exit(3);
	int s = accept(l, NULL, NULL);
	close(s);
	close(l);
	*port = ntohs(sin.sin_port);
	/* one byte after the peer's FIN draws its RST: the raw syscall, so the shim sees nothing */
	struct pollfd pf = { .fd = c, .events = POLLIN };
	while (poll(&pf, 1, 10000) == 1 && !(pf.revents & POLLIN))
		;
	if (syscall(SYS_sendto, c, "x", 1, MSG_NOSIGNAL, NULL, 0) != 1)
		exit(3);
	pf.events = 0;
	if (poll(&pf, 1, 10000) != 1 || !(pf.revents & (POLLERR | POLLHUP)))
		exit(4);
	return c;
}

#endif
