/* A TCP server for the integration tests, run under the shim.
 * Listens on 127.0.0.1:0, prints "port N", and for each of COUNT connections: accepts, reads
 * exactly READ bytes of the request, writes WRITE bytes, closes, and prints "closed FD".
 *   -n READ   bytes of the request to read (default 5)
 *   -w WRITE  bytes to write (default 4 MiB)
 *   -k COUNT  connections to serve (default 1)
 *   -s        shutdown(SHUT_WR) before close, as a careful program would
 *   -d        dup the connection; close the copy first, then the original
 *   -D        dup the connection; close the original first, then the copy
 *   -g        wait for a line on stdin before closing (the test says when)
 *   -x        wait for a line on stdin before exiting (background drains can finish) */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "reply_server: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	long nread = 5, nwrite = 4L << 20, count = 1;
	int do_shutdown = 0, do_dup = 0, dup_reverse = 0, gate = 0, exit_gate = 0, opt;
	while ((opt = getopt(argc, argv, "n:w:k:sdDgx")) != -1) {
		switch (opt) {
		case 'n': nread = atol(optarg); break;
		case 'w': nwrite = atol(optarg); break;
		case 'k': count = atol(optarg); break;
		case 's': do_shutdown = 1; break;
		case 'd': do_dup = 1; break;
		case 'D': dup_reverse = 1; break;
		case 'g': gate = 1; break;
		case 'x': exit_gate = 1; break;
		default: return 2;
		}
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
		die("listen");
	printf("port %d\n", ntohs(sin.sin_port));

	char *buf = malloc(1 << 16);
	for (long c = 0; c < count; c++) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			die("accept");
		for (long got = 0; got < nread;) {
			ssize_t n = read(fd, buf, (size_t)(nread - got));
			if (n <= 0)
				die("read");
			got += n;
		}
		memset(buf, 'x', 1 << 16);
		for (long sent = 0; sent < nwrite;) {
			size_t chunk = (size_t)(nwrite - sent) < (1u << 16) ? (size_t)(nwrite - sent) : 1u << 16;
			ssize_t n = write(fd, buf, chunk);
			if (n < 0)
				die("write");
			sent += n;
		}
		if (do_shutdown && shutdown(fd, SHUT_WR) < 0)
			die("shutdown");
		if (gate) {
			char line[16];
			if (fgets(line, sizeof line, stdin) == NULL)
				die("gate");
		}
		if (do_dup) {
			int copy = dup(fd);
			if (copy < 0 || close(copy) < 0)
				die("dup/close copy");
		}
		if (dup_reverse) {
			int copy = dup(fd);
			if (copy < 0 || close(fd) < 0)
				die("dup/close original");
			fd = copy;
		}
		if (close(fd) < 0)
			die("close");
		printf("closed %d\n", fd);
	}
	close(lfd);
	free(buf);
	if (exit_gate) {
		char line[16];
		if (fgets(line, sizeof line, stdin) == NULL)
			die("exit gate");
	}
	return 0;
}
