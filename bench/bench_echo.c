/* An epoll echo server under load, bare and under a graceful policy, in the same run; clients
 * connect, send 64 bytes and read them back. Two endings:
 *   echo      the client closes first, the server reads EOF and closes (an echo protocol);
 *   close-first  the server closes right after replying and the client reads to EOF (HTTP/1.0):
 *             here graceful does its full work, a drain per connection.
 * Figures: connections per second and the ratio, for each ending.
 * Clients and server share the machine's CPUs, all of them busy: the ratio is one of total work
 * per connection (the clients' included), as on a host serving its own clients.
 * Each connection comes from another 127.0.0.x, as from many clients: from one address, connect()
 * must find a free ephemeral port among the TIME_WAIT sockets left by earlier runs, a cost that
 * belongs to neither server. */
#include "bench/common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CLIENT_THREADS 16 /* enough to keep both CPUs busy: the figure is work, not latency */
#define SECONDS 1.0
#define PAIRS 10
#define REQUEST 64

static int server_closes_first;

static void serve(int ready_fd)
{
	int listener = bench_listener();
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	getsockname(listener, (struct sockaddr *)&a, &len);
	int port = ntohs(a.sin_port);
	if (write(ready_fd, &port, sizeof port) != sizeof port)
		exit(1);
	close(ready_fd);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN, .data.fd = listener};
	epoll_ctl(ep, EPOLL_CTL_ADD, listener, &ev);
	for (;;) {
		struct epoll_event events[64];
		int n = epoll_wait(ep, events, 64, -1);
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;
			if (fd == listener) {
				int c = accept4(listener, NULL, NULL, SOCK_NONBLOCK);
				if (c < 0)
					continue;
				struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
				continue;
			}
			char buf[REQUEST];
			ssize_t got = recv(fd, buf, sizeof buf, 0);
			if (got < 0 && errno == EAGAIN)
				continue;
			if (got > 0 && send(fd, buf, (size_t)got, MSG_NOSIGNAL) == got && !server_closes_first)
				continue; /* the client ends it */
			epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
			close(fd);
		}
	}
}

static int port;
static volatile int running;

static void *client(void *arg)
{
	long *done = arg;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	char req[REQUEST], buf[256];
	memset(req, 'q', sizeof req);
	unsigned source = 0;
	while (running) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in from = {.sin_family = AF_INET,
					   .sin_addr.s_addr = htonl(INADDR_LOOPBACK + 1 + source++ % 250)};
		int one = 1;
		setsockopt(s, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
		if (bind(s, (struct sockaddr *)&from, sizeof from) != 0 ||
		    connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
			close(s);
			continue;
		}
		size_t total = 0;
		ssize_t got = send(s, req, sizeof req, MSG_NOSIGNAL);
		while (got > 0 && total < REQUEST && (got = recv(s, buf, sizeof buf, 0)) > 0)
			total += (size_t)got;
		bool ok = total == REQUEST;
		if (ok && server_closes_first) /* then the server's EOF */
			ok = recv(s, buf, sizeof buf, 0) == 0;
		if (ok)
			++*done;
		close(s);
	}
	return NULL;
}

static double run(int with_shim, const char *policy, const char *lib)
{
	int ready[2];
	if (pipe(ready) != 0)
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		close(ready[0]);
		if (with_shim) {
			setenv("LD_PRELOAD", lib, 1);
			setenv("CLOSEPOLICY_FILE", policy, 1);
		}
		char fd[16];
		snprintf(fd, sizeof fd, "%d", ready[1]);
		execl("/proc/self/exe", "bench_echo", "--serve", fd, server_closes_first ? "close-first" : "echo",
		      (char *)NULL);
		_exit(127);
	}
	close(ready[1]);
	if (read(ready[0], &port, sizeof port) != sizeof port) {
		fprintf(stderr, "bench_echo: server did not start\n");
		exit(1);
	}
	close(ready[0]);
	pthread_t threads[CLIENT_THREADS];
	long done[CLIENT_THREADS] = {0};
	running = 1;
	double t0 = bench_now_ns();
	for (int i = 0; i < CLIENT_THREADS; i++)
		pthread_create(&threads[i], NULL, client, &done[i]);
	struct timespec d = {.tv_sec = (time_t)SECONDS, .tv_nsec = 0};
	nanosleep(&d, NULL); /* the measuring interval itself, not synchronisation */
	running = 0;
	long sum = 0;
	for (int i = 0; i < CLIENT_THREADS; i++) {
		pthread_join(threads[i], NULL);
		sum += done[i];
	}
	double seconds = (bench_now_ns() - t0) / 1e9;
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	return (double)sum / seconds;
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--serve") == 0) {
		bench_raise_nofile();
		server_closes_first = strcmp(argv[3], "close-first") == 0;
		serve(atoi(argv[2]));
	}
	char lib[PATH_MAX], path[PATH_MAX];
	snprintf(path, sizeof path, "%s/libclosepolicy.so", getenv("BUILD") ? getenv("BUILD") : "build");
	if (!realpath(path, lib)) {
		perror(path);
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	const char *policy = bench_policy("version: 1\nlog: {level: warn}\nrules:\n"
					  "  - {match: {role: server}, action: graceful}\n");
	/* This machine's speed drifts by tens of percent over seconds: each ratio comes from a pair
	 * of runs side by side (order alternating), and the figure is the median pair. */
	for (server_closes_first = 0; server_closes_first < 2; server_closes_first++) {
		double bare[PAIRS], shim[PAIRS], ratio[PAIRS];
		for (int i = 0; i < PAIRS; i++) {
			if (i % 2) {
				shim[i] = run(1, policy, lib);
				bare[i] = run(0, NULL, lib);
			} else {
				bare[i] = run(0, NULL, lib);
				shim[i] = run(1, policy, lib);
			}
			ratio[i] = shim[i] / bare[i];
		}
		qsort(bare, PAIRS, sizeof bare[0], bench_cmp_double);
		qsort(shim, PAIRS, sizeof shim[0], bench_cmp_double);
		qsort(ratio, PAIRS, sizeof ratio[0], bench_cmp_double);
		printf("echo server (%s): bare %.0f conn/s, graceful policy %.0f conn/s, ratio %.3fx "
		       "(median of %d pairs; lowest %.3fx, highest %.3fx)\n",
		       server_closes_first ? "server closes first, a drain each" : "client closes first",
		       bare[PAIRS / 2], shim[PAIRS / 2], ratio[PAIRS / 2], PAIRS, ratio[0], ratio[PAIRS - 1]);
	}
	unlink(policy);
	return 0;
}
