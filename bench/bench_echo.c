/* An epoll echo server under load, bare and under a graceful policy, in the same run; clients
 * connect, send 64 bytes and read them back. Two endings:
 *   echo      the client closes first, the server reads EOF and closes (an echo protocol);
 *   close-first  the server closes right after replying and the client reads to EOF (HTTP/1.0):
 *             here graceful does its full work, a drain per connection.
 * Figures: connections per second and the ratio, for each ending; the server's CPU time per
 * connection (all its threads, utime + stime from /proc/PID/stat over the run); and, when strace is
 * installed, the server's system calls per connection (strace -f -c; slower, so its own runs).
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
	int id[2] = { ntohs(a.sin_port), (int)getpid() };
	if (write(ready_fd, id, sizeof id) != sizeof id)
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

static char self[PATH_MAX];

/* CPU time of process pid so far (all threads), in microseconds. */
static double cpu_us(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	if (f == NULL || fgets(buf, sizeof buf, f) == NULL)
		exit(1);
	fclose(f);
	char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	unsigned long utime = 0, stime = 0;
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime, &stime) != 2)
		exit(1);
	return (double)(utime + stime) * 1e6 / (double)sysconf(_SC_CLK_TCK);
}

struct result {
	double rate;     /* connections per second */
	double cpu;      /* the server's CPU microseconds per connection */
	double calls;    /* system calls per connection (strace runs only) */
};

/* One run of SECONDS; under strace -f -c (trace != NULL: its output file) for the count. */
static struct result run(int with_shim, const char *policy, const char *lib, const char *trace)
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
			setenv("CLOSEPOLICY_LOG", "/dev/null", 1);
		}
		char fd[16];
		snprintf(fd, sizeof fd, "%d", ready[1]);
		const char *mode = server_closes_first ? "close-first" : "echo";
		if (trace != NULL) {
			char pre[PATH_MAX + 16];
			snprintf(pre, sizeof pre, "LD_PRELOAD=%s", with_shim ? lib : "");
			unsetenv("LD_PRELOAD"); /* strace itself runs bare; -E gives the server its own */
			execlp("strace", "strace", "-f", "-qq", "-c", "-o", trace, "-E", pre, self, "--serve", fd,
			       mode, (char *)NULL);
		} else {
			execl(self, "bench_echo", "--serve", fd, mode, (char *)NULL);
		}
		_exit(127);
	}
	close(ready[1]);
	int id[2];
	if (read(ready[0], id, sizeof id) != sizeof id) {
		fprintf(stderr, "bench_echo: server did not start\n");
		exit(1);
	}
	close(ready[0]);
	port = id[0];
	pid_t server = id[1];
	pthread_t threads[CLIENT_THREADS];
	long done[CLIENT_THREADS] = {0};
	running = 1;
	double cpu0 = cpu_us(server);
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
	struct result r = { .rate = (double)sum / seconds, .cpu = (cpu_us(server) - cpu0) / (double)sum };
	kill(server, SIGKILL);
	waitpid(pid, NULL, 0);
	if (trace != NULL) {
		FILE *f = fopen(trace, "r");
		char line[256];
		long calls = -1;
		while (f != NULL && fgets(line, sizeof line, f) != NULL) {
			double pct, secs;
			long usecs, c;
			if (strstr(line, " total") && sscanf(line, "%lf %lf %ld %ld", &pct, &secs, &usecs, &c) == 4)
				calls = c;
		}
		if (f != NULL)
			fclose(f);
		r.calls = calls > 0 ? (double)calls / (double)sum : -1;
	}
	return r;
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
	if (!realpath("/proc/self/exe", self))
		return 1;
	const char *warn = "version: 1\nlog: {level: warn}\nrules:\n  - {match: {role: server}, action: graceful}\n";
	const char *info = "version: 1\nlog: {format: json}\nrules:\n  - {match: {role: server}, action: graceful}\n";
	char warn_path[64], info_path[64];
	snprintf(warn_path, sizeof warn_path, "%s", bench_policy(warn));
	rename(warn_path, strcat(strcpy(info_path, warn_path), ".warn"));
	snprintf(warn_path, sizeof warn_path, "%s", info_path);
	snprintf(info_path, sizeof info_path, "%s", bench_policy(info));
	/* bench_echo --one bare|warn|info echo|close-first [TRACE]: one run, for a profiler to watch
	 * (perf record -a) or under strace -f -c (its table left in TRACE); prints the rate and the
	 * CPU per connection (and the system calls per connection with TRACE). */
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "--one") == 0) {
		server_closes_first = strcmp(argv[3], "close-first") == 0;
		bool bare = strcmp(argv[2], "bare") == 0;
		const char *trace = argc == 5 ? argv[4] : NULL; /* keep strace's table there */
		struct result r = run(!bare, strcmp(argv[2], "info") == 0 ? info_path : warn_path, lib, trace);
		printf("%s %s: %.0f conn/s, CPU per connection %.1f us", argv[2], argv[3], r.rate, r.cpu);
		printf(trace != NULL ? ", system calls per connection %.2f\n" : "\n", r.calls);
		unlink(warn_path);
		unlink(info_path);
		return 0;
	}
	/* This machine's speed drifts by tens of percent over seconds: each ratio comes from a pair
	 * of runs side by side (order alternating), and the figure is the median pair. Level warn
	 * for both endings; the default level (info, JSON lines to a file) where the server closes
	 * first, where it has a close and a drain line per connection. */
	for (int c = 0; c < 3; c++) {
		server_closes_first = c > 0;
		const char *policy = c == 2 ? info_path : warn_path;
		double bare[PAIRS], shim[PAIRS], ratio[PAIRS], cbare[PAIRS], cshim[PAIRS], cratio[PAIRS];
		for (int i = 0; i < PAIRS; i++) {
			struct result b, g;
			if (i % 2) {
				g = run(1, policy, lib, NULL);
				b = run(0, NULL, lib, NULL);
			} else {
				b = run(0, NULL, lib, NULL);
				g = run(1, policy, lib, NULL);
			}
			bare[i] = b.rate, shim[i] = g.rate, ratio[i] = g.rate / b.rate;
			cbare[i] = b.cpu, cshim[i] = g.cpu, cratio[i] = g.cpu / b.cpu;
		}
		qsort(bare, PAIRS, sizeof bare[0], bench_cmp_double);
		qsort(shim, PAIRS, sizeof shim[0], bench_cmp_double);
		qsort(ratio, PAIRS, sizeof ratio[0], bench_cmp_double);
		qsort(cbare, PAIRS, sizeof cbare[0], bench_cmp_double);
		qsort(cshim, PAIRS, sizeof cshim[0], bench_cmp_double);
		qsort(cratio, PAIRS, sizeof cratio[0], bench_cmp_double);
		const char *what = c == 0 ? "client closes first, warn" : c == 1 ? "server closes first, a drain each, warn"
										 : "server closes first, a drain each, info";
		printf("echo server (%s): bare %.0f conn/s, graceful policy %.0f conn/s, ratio %.3fx "
		       "(median of %d pairs; lowest %.3fx, highest %.3fx)\n",
		       what, bare[PAIRS / 2], shim[PAIRS / 2], ratio[PAIRS / 2], PAIRS, ratio[0], ratio[PAIRS - 1]);
		printf("echo server (%s): CPU per connection bare %.1f us, graceful %.1f us, ratio %.3fx (median pair)\n",
		       what, cbare[PAIRS / 2], cshim[PAIRS / 2], cratio[PAIRS / 2]);
		fflush(stdout);
	}
	if (system("command -v strace >/dev/null 2>&1") == 0) {
		char trace[64];
		snprintf(trace, sizeof trace, "/tmp/cp-bench-strace-%d", (int)getpid());
		for (int c = 0; c < 2; c++) {
			server_closes_first = c;
			struct result b = run(0, NULL, lib, trace);
			struct result w = run(1, warn_path, lib, trace);
			struct result i = run(1, info_path, lib, trace);
			unlink(trace);
			printf("echo server (%s): system calls per connection (strace -f -c): bare %.2f, graceful warn "
			       "%.2f (+%.2f), graceful info %.2f (+%.2f)\n",
			       c ? "server closes first" : "client closes first", b.calls, w.calls, w.calls - b.calls,
			       i.calls, i.calls - b.calls);
		}
	} else {
		printf("echo server: system calls per connection not counted: strace is not installed\n");
	}
	unlink(warn_path);
	unlink(info_path);
	return 0;
}
