/* An epoll event-loop server for the integration tests, run under the shim.
 * Prints "port N" and "epfd E". Each connection is registered for EPOLLIN|EPOLLRDHUP; on its
 * first readable event the server reads what is there, answers "hello\n", closes it and prints
 * "closed FD". A connection that sends "QUIT" ends the loop: exit status 0, or 3 when epoll ever
 * reported an event for a descriptor this program had closed (and not reused since). */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAXFD 4096

static void die(const char *what)
{
	fprintf(stderr, "epoll_server: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(void)
{
	static char closed_fd[MAXFD];
	int stray = 0;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
		die("listen");
	int ep = epoll_create1(0);
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = lfd };
	if (ep < 0 || epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0)
		die("epoll");
	printf("port %d\nepfd %d\n", ntohs(sin.sin_port), ep);

	for (;;) {
		struct epoll_event evs[16];
		int n = epoll_wait(ep, evs, 16, -1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			die("epoll_wait");
		for (int i = 0; i < n; i++) {
			int fd = evs[i].data.fd;
			if (fd == lfd) {
				int c = accept(lfd, NULL, NULL);
				if (c < 0 || c >= MAXFD)
					die("accept");
				closed_fd[c] = 0;
				struct epoll_event cev = { .events = EPOLLIN | EPOLLRDHUP, .data.fd = c };
				if (epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev) < 0)
					die("epoll_ctl");
				continue;
			}
			if (closed_fd[fd]) {
				printf("stray %d\n", fd);
				stray++;
				continue;
			}
			char buf[256];
			ssize_t r = read(fd, buf, 5);
			if (r >= 4 && memcmp(buf, "QUIT", 4) == 0)
				return stray ? 3 : 0;
			if (write(fd, "hello\n", 6) != 6)
				die("write");
			if (close(fd) < 0)
				die("close");
			closed_fd[fd] = 1;
			printf("closed %d\n", fd);
		}
	}
}
