/* The peer of the demo and the tests: connect, send a request, read everything, and say what
 * the end looked like.
 *
 *   demo_client PORT [--send N] [--timeout SECONDS] [--read-after MS]
 *
 * Prints one line: "received BYTES bytes, then EOF|ECONNRESET|TIMEOUT|<errno name>, in MS ms".
 * --read-after: a slow peer, which starts reading MS milliseconds after its request (what a
 * linger close then makes the server wait for).
 * Exit status 0 when it could say (whatever it saw), 3 when it could not connect. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

int main(int argc, char **argv)
{
	size_t send_n = 100;
	int timeout_s = 10, read_after_ms = 0;
	if (argc < 2) {
		fprintf(stderr, "usage: demo_client PORT [--send N] [--timeout SECONDS] [--read-after MS]\n");
		return 2;
	}
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--send") == 0 && i + 1 < argc)
			send_n = strtoul(argv[++i], NULL, 10);
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout_s = atoi(argv[++i]);
		else if (strcmp(argv[i], "--read-after") == 0 && i + 1 < argc)
			read_after_ms = atoi(argv[++i]);
	}
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("demo_client: connect");
		return 3;
	}
	double t0 = now_ms();
	char *request = malloc(send_n + 1);
	memset(request, 'q', send_n);
	if (send_n && send(s, request, send_n, MSG_NOSIGNAL) != (ssize_t)send_n)
		perror("demo_client: send");
	free(request);
	if (read_after_ms > 0)
		nanosleep(&(struct timespec){read_after_ms / 1000, (long)(read_after_ms % 1000) * 1000000L}, NULL);
	size_t total = 0;
	const char *end = NULL;
	char buf[65536];
	while (!end) {
		struct pollfd p = {.fd = s, .events = POLLIN};
		int left = (int)(timeout_s * 1000 - (now_ms() - t0));
		if (left <= 0 || poll(&p, 1, left) == 0) {
			end = "TIMEOUT";
			break;
		}
		ssize_t n = recv(s, buf, sizeof buf, 0);
		if (n > 0)
			total += (size_t)n;
		else if (n == 0)
			end = "EOF";
		else if (errno != EINTR)
			end = errno == ECONNRESET ? "ECONNRESET" : strerror(errno);
	}
	printf("received %zu bytes, then %s, in %.0f ms\n", total, end, now_ms() - t0);
	close(s);
	return 0;
}
