/* A TCP client for the integration tests, run under the shim: connects to 127.0.0.1:PORT,
 * reads exactly READ bytes of what the server sends, writes WRITE bytes, closes, prints "closed".
 *   reply_client PORT [-n READ] [-w WRITE] [-x]   (defaults 5 and 4 MiB)
 *   -x: wait for a line on stdin before exiting (background drains can finish) */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "reply_client: %s: %s\n", what, strerror(errno));
	exit(1);
}

int main(int argc, char **argv)
{
	long nread = 5, nwrite = 4L << 20;
	int opt, exit_gate = 0;
	while ((opt = getopt(argc, argv, "n:w:x")) != -1) {
		if (opt == 'x')
			exit_gate = 1;
		else if (opt == 'n')
			nread = atol(optarg);
		else if (opt == 'w')
			nwrite = atol(optarg);
		else
			return 2;
	}
	if (optind >= argc)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((unsigned short)atoi(argv[optind])) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
		die("connect");
	char *buf = malloc(1 << 16);
	for (long got = 0; got < nread;) {
		ssize_t n = read(fd, buf, (size_t)(nread - got));
		if (n <= 0)
			die("read");
		got += n;
	}
	memset(buf, 'y', 1 << 16);
	for (long sent = 0; sent < nwrite;) {
		size_t chunk = (size_t)(nwrite - sent) < (1u << 16) ? (size_t)(nwrite - sent) : 1u << 16;
		ssize_t n = write(fd, buf, chunk);
		if (n < 0)
			die("write");
		sent += n;
	}
	if (close(fd) < 0)
		die("close");
	printf("closed\n");
	free(buf);
	if (exit_gate) {
		char line[16];
		if (fgets(line, sizeof line, stdin) == NULL)
			die("exit gate");
	}
	return 0;
}
