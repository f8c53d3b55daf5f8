/* errno and return values through every wrapper, run under a graceful policy.
 * Successful calls must leave errno as it was (a sentinel is set before each); failing calls
 * must fail as without the shim (EBADF for bad descriptors, including the shim's own log
 * descriptor, whose path is argv[1] or else $CLOSEPOLICY_LOG). Prints "ok" and exits 0, or the
 * failures and 1. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define SENTINEL 4242
static int failures;

#define KEEPS(call)                                                                                \
	do {                                                                                       \
		errno = SENTINEL;                                                                  \
		long r_ = (long)(call);                                                            \
		if (r_ < 0 || errno != SENTINEL) {                                                 \
			printf("FAIL %s:%d: %s returned %ld, errno %d\n", __FILE__, __LINE__, #call, r_, \
			       errno);                                                             \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

#define FAILS(call, want)                                                                          \
	do {                                                                                       \
		errno = 0;                                                                         \
		long r_ = (long)(call);                                                            \
		if (r_ != -1 || errno != (want)) {                                                 \
			printf("FAIL %s:%d: %s returned %ld, errno %d, wanted -1/%d\n", __FILE__,  \
			       __LINE__, #call, r_, errno, want);                                  \
			failures++;                                                                \
		}                                                                                  \
	} while (0)

/* The descriptor of this process open on path, or -1. */
static int fd_of(const char *path)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int found = -1;
	while (d && (e = readdir(d)) != NULL) {
		char link[300], target[PATH_MAX];
		snprintf(link, sizeof link, "/proc/self/fd/%s", e->d_name);
		ssize_t n = readlink(link, target, sizeof target - 1);
		if (n > 0) {
			target[n] = '\0';
			if (strcmp(target, path) == 0)
				found = atoi(e->d_name);
		}
	}
	if (d)
		closedir(d);
	return found;
}

int main(int argc, char **argv)
{
	int lfd, cfd, sfd;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;

	KEEPS(lfd = socket(AF_INET, SOCK_STREAM, 0));
	KEEPS(bind(lfd, (struct sockaddr *)&sin, sizeof sin));
	KEEPS(listen(lfd, 8));
	KEEPS(getsockname(lfd, (struct sockaddr *)&sin, &len));
	KEEPS(cfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
	KEEPS(connect(cfd, (struct sockaddr *)&sin, sizeof sin));
	KEEPS(sfd = accept(lfd, NULL, NULL));
	int one = 1;
	KEEPS(setsockopt(sfd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof one));

	int d1, d2, d3, d4, d5;
	KEEPS(d1 = dup(sfd));
	KEEPS(d2 = dup2(sfd, 200));
	KEEPS(d3 = dup3(sfd, 201, O_CLOEXEC));
	KEEPS(d4 = fcntl(sfd, F_DUPFD, 300));
	KEEPS(d5 = fcntl(sfd, F_DUPFD_CLOEXEC, 300));
	KEEPS(fcntl(sfd, F_GETFL));
	KEEPS(dup2(sfd, sfd));

	int ep;
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = sfd };
	KEEPS(ep = epoll_create1(0));
	KEEPS(epoll_ctl(ep, EPOLL_CTL_ADD, sfd, &ev));
	KEEPS(epoll_ctl(ep, EPOLL_CTL_ADD, d1, &ev));
	KEEPS(epoll_ctl(ep, EPOLL_CTL_DEL, d1, NULL));

	KEEPS(write(cfd, "0123456789", 10)); /* left unread on sfd */
	KEEPS(close(d1));
	KEEPS(close(d2));
	KEEPS(close(d3));
	KEEPS(close(d4));
	KEEPS(close_range((unsigned)d5, (unsigned)d5, 0));
	KEEPS(shutdown(cfd, SHUT_WR)); /* before the server side may reset the connection */
	KEEPS(close(sfd));             /* the last one: the policy's action */
	KEEPS(close(cfd));
	KEEPS(close(ep));

	FAILS(close(-1), EBADF);
	FAILS(close(100000), EBADF);
	FAILS(close(sfd), EBADF); /* closed twice */
	FAILS(dup(-1), EBADF);
	FAILS(dup2(-1, 50), EBADF);
	FAILS(shutdown(sfd, SHUT_RDWR), EBADF);
	FAILS(fcntl(sfd, F_DUPFD, 0), EBADF);
	FAILS(connect(-1, (struct sockaddr *)&sin, sizeof sin), EBADF);

	const char *logpath = argc > 1 ? argv[1] : getenv("CLOSEPOLICY_LOG");
	if (logpath != NULL && logpath[0] == '/') {
		int logfd = fd_of(logpath);
		if (logfd < 0) {
			printf("FAIL: no descriptor open on the log %s\n", logpath);
			failures++;
		} else {
			if (logfd < 100) {
				printf("FAIL: the log's descriptor %d is not moved high\n", logfd);
				failures++;
			}
			if ((fcntl(logfd, F_GETFD) & FD_CLOEXEC) == 0) {
				printf("FAIL: the log's descriptor is not close-on-exec\n");
				failures++;
			}
			FAILS(close(logfd), EBADF);
			FAILS(dup(logfd), EBADF);
		}
	}
	KEEPS(close(lfd));
	/* the log must still work: one more close of a connected socket */
	int a, b;
	len = sizeof sin;
	KEEPS(lfd = socket(AF_INET, SOCK_STREAM, 0));
	sin.sin_port = 0;
	KEEPS(bind(lfd, (struct sockaddr *)&sin, sizeof sin));
	KEEPS(listen(lfd, 8));
	KEEPS(getsockname(lfd, (struct sockaddr *)&sin, &len));
	KEEPS(a = socket(AF_INET, SOCK_STREAM, 0));
	KEEPS(connect(a, (struct sockaddr *)&sin, sizeof sin));
	KEEPS(b = accept4(lfd, NULL, NULL, SOCK_CLOEXEC));
	KEEPS(close(a));
	KEEPS(close(b));
	KEEPS(close(lfd));
	if (failures == 0)
		printf("ok\n");
	return failures ? 1 : 0;
}
