/* A small TCP server that ends its connection the way it is told, for the demo and the tests.
 *
 *   demo_server [--read N] [--write BYTES] [--end HOW] [--linger0] [--time-close]
 *
 * Listens on 127.0.0.1 (an ephemeral port, printed on stdout as "PORT\n"), accepts one
 * connection (--any: listens on every address), reads N bytes of the request (default 5: the rest stays unread), writes BYTES
 * (default 4 MB) and ends by HOW: close (default), exit, _exit, _Exit, return (these four
 * with --status N, leaving the connection open for the exit path), shutdown (shutdown
 * SHUT_WR, then close), hold (keep the connection open until killed). --linger0 sets SO_LINGER {1, 0} itself before closing.
 * --time-close prints how long close() kept the program waiting ("close() returned after MS ms"):
 * what a linger policy costs. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static void die(const char *what)
{
	perror(what);
	exit(3);
}

static void write_all(int fd, size_t bytes)
{
	static char chunk[65536];
	memset(chunk, 'r', sizeof chunk);
	while (bytes > 0) {
		size_t n = bytes < sizeof chunk ? bytes : sizeof chunk;
		ssize_t put = send(fd, chunk, n, 0);
		if (put <= 0)
			die("demo_server: send");
		bytes -= (size_t)put;
	}
}

int main(int argc, char **argv)
{
	size_t read_n = 5, write_n = 4u << 20;
	const char *end = "close";
	int linger0 = 0, bind_any = 0, status = 0, time_close = 0;
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--read") == 0 && i + 1 < argc)
			read_n = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--write") == 0 && i + 1 < argc)
			write_n = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--end") == 0 && i + 1 < argc)
			end = argv[++i];
		else if (strcmp(argv[i], "--status") == 0 && i + 1 < argc)
			status = atoi(argv[++i]);
		else if (strcmp(argv[i], "--any") == 0)
			bind_any = 1;
		else if (strcmp(argv[i], "--linger0") == 0)
			linger0 = 1;
		else if (strcmp(argv[i], "--time-close") == 0)
			time_close = 1;
		else {
			fprintf(stderr, "usage: demo_server [--read N] [--write BYTES] "
					"[--end close|exit|_exit|_Exit|return|shutdown|hold] [--status N] [--linger0] [--time-close]\n");
			return 2;
		}
	}
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(bind_any ? INADDR_ANY : INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (listener < 0 || bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 8) != 0)
		die("demo_server: listen");
	getsockname(listener, (struct sockaddr *)&a, &len);
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	int c = accept(listener, NULL, NULL);
	if (c < 0)
		die("demo_server: accept");
	close(listener);
	char buf[4096];
	size_t got = 0;
	while (got < read_n) {
		ssize_t n = recv(c, buf, read_n - got < sizeof buf ? read_n - got : sizeof buf, 0);
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	write_all(c, write_n);
	if (linger0) {
		struct linger l = {1, 0};
		setsockopt(c, SOL_SOCKET, SO_LINGER, &l, sizeof l);
	}
	if (strcmp(end, "exit") == 0)
		exit(status);
	if (strcmp(end, "_exit") == 0)
		_exit(status);
	if (strcmp(end, "_Exit") == 0)
		_Exit(status);
	if (strcmp(end, "return") == 0)
		return status;
	if (strcmp(end, "hold") == 0)
		for (;;)
			pause();
	if (strcmp(end, "shutdown") == 0)
		shutdown(c, SHUT_WR);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (close(c) != 0)
		die("demo_server: close");
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (time_close)
		printf("close() returned after %.1f ms\n",
		       (double)(t1.tv_sec - t0.tv_sec) * 1e3 + (double)(t1.tv_nsec - t0.tv_nsec) / 1e6);
	return 0;
}
