/* A client whose peer vanishes: connect, wait for "go" on stdin (the demo pulls the cable
 * then), and write or read until the kernel reports an error — or give up after a bounded wait.
 *
 *   demo_writer ADDR PORT [--read] [--give-up SECONDS]
 *
 * Prints "connected", then one line: "error ETIMEDOUT after 3.2 s" or
 * "still waiting after 5.0 s". */
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

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	int reading = 0;
	double give_up = 5;
	if (argc < 3) {
		fprintf(stderr, "usage: demo_writer ADDR PORT [--read] [--give-up SECONDS]\n");
		return 2;
	}
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--read") == 0)
			reading = 1;
		else if (strcmp(argv[i], "--give-up") == 0 && i + 1 < argc)
			give_up = atof(argv[++i]);
	}
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[2]))};
	if (inet_pton(AF_INET, argv[1], &a.sin_addr) != 1) {
		fprintf(stderr, "demo_writer: bad address %s\n", argv[1]);
		return 2;
	}
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("demo_writer: connect");
		return 3;
	}
	printf("connected\n");
	fflush(stdout);
	char go[16];
	if (!fgets(go, sizeof go, stdin))
		return 3;
	double t0 = now_s();
	char buf[16384];
	memset(buf, 'w', sizeof buf);
	for (;;) {
		double left = give_up - (now_s() - t0);
		struct pollfd p = {.fd = s, .events = reading ? POLLIN : POLLOUT};
		if (left <= 0 || poll(&p, 1, (int)(left * 1000) + 1) == 0) {
			printf("still waiting after %.1f s\n", now_s() - t0);
			return 0;
		}
		ssize_t n = reading ? recv(s, buf, sizeof buf, MSG_DONTWAIT)
				    : send(s, buf, sizeof buf, MSG_DONTWAIT | MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			printf("error %s after %.1f s\n", errno == ETIMEDOUT ? "ETIMEDOUT" : strerror(errno),
			       now_s() - t0);
			return 0;
		}
		if (n == 0 && reading) {
			printf("EOF after %.1f s\n", now_s() - t0);
			return 0;
		}
	}
}
