/* An epoll echo server under load, bare and under a graceful policy, in the same run; clients
 * connect, send 64 bytes and read them back. Two endings:
 *   echo         the client closes first, the server reads EOF and closes (an echo protocol);
 *   close-first  the server closes right after replying and the client reads to EOF (HTTP/1.0):
 *                here graceful does its full work, a drain per connection.
 * Where the server closes first, two anchors done by the program itself, without the shim:
 *   lingering    the server's own lingering close, as nginx's `lingering_close always`: it shuts
 *                its sending side, keeps the socket in its epoll set and closes it at the EOF;
 *   floor        the shim's graceful close written into the program: shutdown, a copy of the
 *                socket (fcntl), the program's close, and a thread that a tick later reads the
 *                copy's EOF and closes it — the same four calls and none of the shim's
 *                bookkeeping: what this design costs at the least; floor-info adds the
 *                two facts the close line has at level info (TCP_INFO, SIOCINQ).
 * Figures: connections per second and the ratios; the server's CPU time per connection (all its
 * threads, utime + stime from /proc/PID/stat over the run); and, when strace is installed, the
 * server's system calls per connection (strace -f -c, its own slower runs; the calls of start-up
 * — loading, the policy — are those of a run with no connection, taken out).
 * Clients and server share the machine's CPUs, all of them busy: the ratio is one of total work
 * per connection (the clients' included), as on a host serving its own clients.
 * Each connection comes from another 127.0.0.x, as from many clients: from one address, connect()
 * must find a free ephemeral port among the TIME_WAIT sockets left by earlier runs, a cost that
 * belongs to neither server. */
#include "bench/common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_THREADS 16 /* enough to keep both CPUs busy: the figure is work, not latency */
#define SECONDS 1.0
#define PAIRS 10
#define REQUEST 64

enum ending { ECHO, CLOSE_FIRST, LINGERING, FLOOR, FLOOR_INFO };
static const char *const ending_names[] = { "echo", "close-first", "lingering", "floor", "floor-info" };
static enum ending ending;

static enum ending ending_named(const char *name)
{
	for (int e = ECHO; e <= FLOOR_INFO; e++)
		if (strcmp(name, ending_names[e]) == 0)
			return (enum ending)e;
	fprintf(stderr, "bench_echo: unknown ending %s: expected echo, close-first, lingering, floor or floor-info\n", name);
	exit(2);
}

/* The floor's copies waiting for their tick, oldest first; the server's thread holds the mutex
 * for a push (uncontended: no system call). */
#define FLOOR_TICK_NS 10000000L /* the shim's drainer looks on a 10 ms tick while busy */
#define FLOOR_FIRST_NS 2000000L /* and reads a socket no sooner than 2 ms after its FIN */
struct parked {
	int fd;
	double at_ns;
};
static pthread_mutex_t floor_lock = PTHREAD_MUTEX_INITIALIZER;
static struct parked *floor_queue;
static size_t floor_len, floor_cap;

static void floor_park(int copy, double at_ns)
{
	pthread_mutex_lock(&floor_lock);
	if (floor_len == floor_cap) {
		floor_cap = floor_cap ? 2 * floor_cap : 4096;
		floor_queue = realloc(floor_queue, floor_cap * sizeof *floor_queue);
		if (floor_queue == NULL)
			exit(1);
	}
	floor_queue[floor_len++] = (struct parked){ copy, at_ns };
	pthread_mutex_unlock(&floor_lock);
}

/* Each tick, every copy parked long enough gets one recv: EOF (or an error) closes it; bytes, or
 * nothing yet, leave it for the next tick. */
static void *floor_reader(void *arg)
{
	(void)arg;
	struct parked *mine = NULL;
	size_t cap = 0;
	for (;;) {
		struct timespec tick = { 0, FLOOR_TICK_NS };
		nanosleep(&tick, NULL);
		double now = bench_now_ns();
		pthread_mutex_lock(&floor_lock);
		size_t n = 0;
		while (n < floor_len && now - floor_queue[n].at_ns >= FLOOR_FIRST_NS)
			n++;
		if (n > cap) {
			cap = floor_cap;
			mine = realloc(mine, cap * sizeof *mine);
			if (mine == NULL)
				exit(1);
		}
		memcpy(mine, floor_queue, n * sizeof *mine);
		memmove(floor_queue, floor_queue + n, (floor_len - n) * sizeof *floor_queue);
		floor_len -= n;
		pthread_mutex_unlock(&floor_lock);
		for (size_t i = 0; i < n; i++) {
			char buf[256];
			ssize_t got = recv(mine[i].fd, buf, sizeof buf, MSG_DONTWAIT);
			if (got > 0 || (got < 0 && errno == EAGAIN))
				floor_park(mine[i].fd, now);
			else
				close(mine[i].fd);
		}
	}
	return NULL;
}

#define MAX_FD (1 << 20)
static bool lingering[MAX_FD]; /* by descriptor: shut, waiting for the client's EOF */

/* The server's end of a connection: answered (the server closes first) or ended by the client. */
static void end_connection(int ep, int fd, bool answered)
{
	if (answered && ending == LINGERING) {
		shutdown(fd, SHUT_WR); /* stays in the epoll set: its EOF ends it */
		lingering[fd] = true;
		return;
	}
	epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
	lingering[fd] = false;
	if (answered && (ending == FLOOR || ending == FLOOR_INFO)) {
		if (ending == FLOOR_INFO) { /* the close line's two facts */
			struct tcp_info ti;
			socklen_t tl = sizeof ti;
			int unread;
			getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &tl);
			ioctl(fd, SIOCINQ, &unread);
		}
		shutdown(fd, SHUT_WR);
		int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
		close(fd);
		if (copy >= 0)
			floor_park(copy, bench_now_ns());
		return;
	}
	close(fd);
}

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
	if (ending == FLOOR || ending == FLOOR_INFO) {
		pthread_t t;
		pthread_create(&t, NULL, floor_reader, NULL);
	}
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
				if (c >= MAX_FD)
					close(c);
				if (c < 0 || c >= MAX_FD)
					continue;
				struct epoll_event cev = {.events = EPOLLIN, .data.fd = c};
				epoll_ctl(ep, EPOLL_CTL_ADD, c, &cev);
				continue;
			}
			char buf[REQUEST];
			ssize_t got = recv(fd, buf, sizeof buf, 0);
			if (got < 0 && errno == EAGAIN)
				continue;
			if (lingering[fd]) { /* the client's EOF ends it; bytes after the answer are dropped */
				if (got <= 0) {
					epoll_ctl(ep, EPOLL_CTL_DEL, fd, NULL);
					lingering[fd] = false;
					close(fd);
				}
				continue;
			}
			if (got > 0 && send(fd, buf, (size_t)got, MSG_NOSIGNAL) == got && ending == ECHO)
				continue; /* the client ends it */
			end_connection(ep, fd, got > 0);
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
		if (ok && ending != ECHO) /* then the server's EOF */
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
	double calls;    /* the server's system calls in all (strace runs only) */
	long conns;      /* connections served */
};

/* One run of SECONDS; under strace -f -c (trace != NULL: its output file) for the count; with no
 * clients, the server is stopped as soon as it is ready (what its start-up costs). */
static struct result run_with(int with_shim, const char *policy, const char *lib, const char *trace, int clients)
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
		const char *mode = ending_names[ending];
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
	for (int i = 0; i < clients; i++)
		pthread_create(&threads[i], NULL, client, &done[i]);
	struct timespec d = {.tv_sec = (time_t)SECONDS, .tv_nsec = 0};
	if (clients > 0)
		nanosleep(&d, NULL); /* the measuring interval itself, not synchronisation */
	running = 0;
	long sum = 0;
	for (int i = 0; i < clients; i++) {
		pthread_join(threads[i], NULL);
		sum += done[i];
	}
	double seconds = (bench_now_ns() - t0) / 1e9;
	struct result r = { .rate = (double)sum / seconds, .cpu = sum ? (cpu_us(server) - cpu0) / (double)sum : 0,
			    .conns = sum };
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
		r.calls = (double)calls;
	}
	return r;
}

static struct result run(int with_shim, const char *policy, const char *lib, const char *trace)
{
	return run_with(with_shim, policy, lib, trace, CLIENT_THREADS);
}

/* System calls per connection under strace: a loaded run's calls less those of start-up. */
static double calls_per_connection(int with_shim, const char *policy, const char *lib, const char *trace)
{
	struct result startup = run_with(with_shim, policy, lib, trace, 0);
	struct result r = run(with_shim, policy, lib, trace);
	unlink(trace);
	if (startup.calls < 0 || r.calls < 0 || r.conns == 0)
		return -1;
	return (r.calls - startup.calls) / (double)r.conns;
}

/* A configuration of the server: bare or under a policy, and its ending. */
struct config {
	const char *name;
	int with_shim;
	const char *policy;
	enum ending ending;
};

static double median_of(double *v, int n)
{
	qsort(v, (size_t)n, sizeof v[0], bench_cmp_double);
	return v[n / 2];
}

/* Rounds of every configuration side by side, the order turning each round (this machine's speed
 * drifts by tens of percent over seconds); config 0 is the baseline of each round's ratios. Fills
 * the medians of rates, CPU, and of the ratios round by round. */
#define MAX_CONFIGS 6
static void rounds(const struct config *cf, int n, const char *lib, double *rate, double *cpu, double *rate_ratio,
		   double *cpu_ratio)
{
	double r[MAX_CONFIGS][PAIRS], c[MAX_CONFIGS][PAIRS], rr[MAX_CONFIGS][PAIRS], cr[MAX_CONFIGS][PAIRS];
	for (int i = 0; i < PAIRS; i++) {
		for (int k = 0; k < n; k++) {
			int j = (i + k) % n;
			ending = cf[j].ending;
			struct result x = run(cf[j].with_shim, cf[j].policy, lib, NULL);
			r[j][i] = x.rate, c[j][i] = x.cpu;
		}
		for (int j = 0; j < n; j++)
			rr[j][i] = r[j][i] / r[0][i], cr[j][i] = c[j][i] / c[0][i];
	}
	for (int j = 0; j < n; j++) {
		rate[j] = median_of(r[j], PAIRS), cpu[j] = median_of(c[j], PAIRS);
		rate_ratio[j] = median_of(rr[j], PAIRS), cpu_ratio[j] = median_of(cr[j], PAIRS);
	}
}

int main(int argc, char **argv)
{
	if (argc == 4 && strcmp(argv[1], "--serve") == 0) {
		bench_raise_nofile();
		ending = ending_named(argv[3]);
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
	/* bench_echo --one bare|warn|info ENDING [TRACE]: one run of an ending (echo, close-first,
	 * lingering, floor), for a profiler to watch (perf record -a) or under strace -f -c (its
	 * table left in TRACE); prints the rate, the CPU and, with TRACE, the calls per connection. */
	if ((argc == 4 || argc == 5) && strcmp(argv[1], "--one") == 0) {
		ending = ending_named(argv[3]);
		bool bare = strcmp(argv[2], "bare") == 0;
		const char *trace = argc == 5 ? argv[4] : NULL;
		struct result r = run(!bare, strcmp(argv[2], "info") == 0 ? info_path : warn_path, lib, trace);
		printf("%s %s: %.0f conn/s, CPU per connection %.1f us", argv[2], argv[3], r.rate, r.cpu);
		if (trace != NULL)
			printf(", system calls per connection %.2f (start-up included)", r.calls / (double)r.conns);
		printf("\n");
		unlink(warn_path);
		unlink(info_path);
		return 0;
	}
	/* Level warn where the client closes first; where the server closes first, both levels (the
	 * default, info with JSON lines to a file, has a close and a drain line per connection) and
	 * the program's own two anchors. */
	const struct config echo[] = { { "bare", 0, NULL, ECHO }, { "graceful warn", 1, warn_path, ECHO } };
	const struct config first[] = { { "bare", 0, NULL, CLOSE_FIRST },
					{ "own lingering close", 0, NULL, LINGERING },
					{ "floor (the four calls, in the program)", 0, NULL, FLOOR },
					{ "floor at info (and TCP_INFO, SIOCINQ)", 0, NULL, FLOOR_INFO },
					{ "graceful warn", 1, warn_path, CLOSE_FIRST },
					{ "graceful info", 1, info_path, CLOSE_FIRST } };
	double rate[MAX_CONFIGS], cpu[MAX_CONFIGS], rr[MAX_CONFIGS], cr[MAX_CONFIGS];
	rounds(echo, 2, lib, rate, cpu, rr, cr);
	printf("echo server (client closes first, warn): bare %.0f conn/s, graceful policy %.0f conn/s, ratio %.3fx "
	       "(median of %d pairs)\n", rate[0], rate[1], rr[1], PAIRS);
	printf("echo server (client closes first, warn): CPU per connection bare %.1f us, graceful %.1f us, "
	       "ratio %.3fx\n", cpu[0], cpu[1], cr[1]);
	fflush(stdout);
	const int nf = (int)(sizeof first / sizeof first[0]);
	rounds(first, nf, lib, rate, cpu, rr, cr);
	printf("echo server (server closes first): conn/s, and the ratio to bare (median of %d rounds of the six "
	       "side by side):\n", PAIRS);
	for (int j = 0; j < nf; j++)
		printf("  %-40s %6.0f conn/s  %.3fx bare\n", first[j].name, rate[j], rr[j]);
	printf("echo server (server closes first): CPU per connection, and the ratio to bare:\n");
	for (int j = 0; j < nf; j++)
		printf("  %-40s %6.1f us      %.3fx bare\n", first[j].name, cpu[j], cr[j]);
	printf("echo server (server closes first): graceful warn against the floor: %.3fx the CPU, %.3fx the "
	       "throughput; graceful info against the floor at info: %.3fx, %.3fx\n", cpu[4] / cpu[2],
	       rate[4] / rate[2], cpu[5] / cpu[3], rate[5] / rate[3]);
	fflush(stdout);
	if (system("command -v strace >/dev/null 2>&1") != 0) {
		printf("echo server: system calls per connection not counted: strace is not installed\n");
	} else {
		char trace[64];
		snprintf(trace, sizeof trace, "/tmp/cp-bench-strace-%d", (int)getpid());
		ending = ECHO;
		double b = calls_per_connection(0, NULL, lib, trace), w = calls_per_connection(1, warn_path, lib, trace);
		printf("echo server (client closes first): system calls per connection (strace -f -c, start-up taken "
		       "out): bare %.2f, graceful warn %.2f (+%.2f)\n", b, w, w - b);
		double calls[MAX_CONFIGS];
		for (int j = 0; j < nf; j++) {
			ending = first[j].ending;
			calls[j] = calls_per_connection(first[j].with_shim, first[j].policy, lib, trace);
		}
		printf("echo server (server closes first): system calls per connection (strace -f -c, start-up taken "
		       "out): bare %.2f", calls[0]);
		for (int j = 1; j < nf; j++)
			printf(", %s %.2f (+%.2f)", first[j].name, calls[j], calls[j] - calls[0]);
		printf("\n");
	}
	unlink(warn_path);
	unlink(info_path);
	return 0;
}
