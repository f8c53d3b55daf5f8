/* A server that forks a child per connection, as the oldest servers do: busybox httpd serving a
 * 10 kB page, bare, with an object that does nothing preloaded (the anchor: what any preloaded
 * object costs a process per fork), with the floor preloaded (bench/anchor/floor.c: the least an
 * object can do to keep the same promise on these closes, observe only and graceful), under the
 * shim with no policy (observe only) and with a graceful policy, in interleaved rounds. Client
 * threads each open a connection per request (HTTP/1.0), read the whole answer to EOF and count
 * it when the body was all there. Figures: requests per second, the medians and the ratios
 * against bare, and the shim's against the floor. Skipped, saying so, when busybox is not
 * installed. */
#include "bench/common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define PAGE 10240
#define CLIENTS 8
#define SECONDS 1.0
#define ROUNDS 7

static const char *const busybox_paths[] = { "/bin/busybox", "/usr/bin/busybox", NULL };
static int port;
static atomic_long done, failed;
static atomic_int stop;

static pid_t start_httpd(const char *busybox, const char *dir, const char *lib, const char *policy,
			 bool floor_graceful)
{
	char listen_at[32];
	snprintf(listen_at, sizeof listen_at, "127.0.0.1:%d", port);
	pid_t pid = fork();
	if (pid < 0)
		exit(1);
	if (pid == 0) {
		unsetenv("LD_PRELOAD");
		unsetenv("CLOSEPOLICY_FILE");
		if (lib != NULL)
			setenv("LD_PRELOAD", lib, 1);
		if (policy != NULL)
			setenv("CLOSEPOLICY_FILE", policy, 1);
		if (floor_graceful)
			setenv("CP_FLOOR_GRACEFUL", "1", 1);
		/* the log (stderr, level info: a risk event per close in observe mode) to /dev/null:
		 * its lines are written, not displayed */
		int null = open("/dev/null", O_WRONLY);
		if (null >= 0) {
			dup2(null, 1);
			dup2(null, 2);
			close(null);
		}
		execl(busybox, "busybox", "httpd", "-f", "-p", listen_at, "-h", dir, (char *)NULL);
		_exit(127);
	}
	/* ready when it accepts a connection */
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	for (int i = 0; i < 2000; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (connect(s, (struct sockaddr *)&a, sizeof a) == 0) {
			close(s);
			return pid;
		}
		close(s);
		poll(NULL, 0, 5); /* the server is starting: nothing to wait on but time */
	}
	fprintf(stderr, "bench_httpd: busybox httpd did not start\n");
	exit(1);
}

static void *client(void *arg)
{
	(void)arg;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port),
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	static const char req[] = "GET /index.html HTTP/1.0\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\n\r\n";
	char buf[16384];
	while (!atomic_load(&stop)) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0 ||
		    write(s, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
			atomic_fetch_add(&failed, 1);
			if (s >= 0)
				close(s);
			continue;
		}
		size_t got = 0;
		ssize_t n;
		while ((n = read(s, buf, sizeof buf)) > 0)
			got += (size_t)n;
		close(s);
		if (got >= PAGE)
			atomic_fetch_add(&done, 1);
		else
			atomic_fetch_add(&failed, 1);
	}
	return NULL;
}

/* requests per second over SECONDS */
static double load(void)
{
	pthread_t t[CLIENTS];
	atomic_store(&stop, 0);
	atomic_store(&done, 0);
	atomic_store(&failed, 0);
	double t0 = bench_now_ns();
	for (int i = 0; i < CLIENTS; i++)
		pthread_create(&t[i], NULL, client, NULL);
	while (bench_now_ns() - t0 < SECONDS * 1e9)
		poll(NULL, 0, 20);
	atomic_store(&stop, 1);
	for (int i = 0; i < CLIENTS; i++)
		pthread_join(t[i], NULL);
	double secs = (bench_now_ns() - t0) / 1e9;
	return (double)atomic_load(&done) / secs;
}

/* CPU seconds of the server and the children it reaped (/proc/PID/stat fields 14-17) */
static double server_cpu(pid_t pid)
{
	char path[64], buf[1024];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
	if (f)
		fclose(f);
	buf[n] = '\0';
	char *p = strrchr(buf, ')'); /* the command name may hold spaces */
	unsigned long long v[4] = { 0 };
	if (p == NULL || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %llu %llu",
				&v[0], &v[1], &v[2], &v[3]) != 4)
		return 0;
	return (double)(v[0] + v[1] + v[2] + v[3]) / (double)sysconf(_SC_CLK_TCK);
}

/* requests per second; *cpu_us: the server's CPU time per answered request */
static double run(const char *busybox, const char *dir, const char *lib, const char *policy,
		  bool floor_graceful, long *fails, double *cpu_us)
{
	pid_t pid = start_httpd(busybox, dir, lib, policy, floor_graceful);
	double before = server_cpu(pid);
	double r = load();
	long answered = atomic_load(&done);
	*cpu_us = answered > 0 ? (server_cpu(pid) - before) * 1e6 / (double)answered : 0;
	*fails += atomic_load(&failed);
	kill(pid, SIGTERM);
	waitpid(pid, NULL, 0);
	return r;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

int main(void)
{
	const char *busybox = NULL;
	for (int i = 0; busybox_paths[i] != NULL && busybox == NULL; i++)
		if (access(busybox_paths[i], X_OK) == 0)
			busybox = busybox_paths[i];
	if (busybox == NULL) {
		printf("httpd: busybox is not installed: skipped\n");
		return 0;
	}
	signal(SIGPIPE, SIG_IGN);
	char lib[PATH_MAX], anchor[PATH_MAX], floor_lib[PATH_MAX], buf[PATH_MAX],
		dir[] = "/tmp/cp-bench-httpd-XXXXXX", page[PATH_MAX + 16];
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	snprintf(buf, sizeof buf, "%s/libclosepolicy.so", build);
	if (!realpath(buf, lib)) {
		perror("bench_httpd: libclosepolicy.so");
		return 1;
	}
	snprintf(buf, sizeof buf, "%s/bench-anchor/empty.so", build);
	if (!realpath(buf, anchor)) {
		perror("bench_httpd: bench-anchor/empty.so (make bench builds it)");
		return 1;
	}
	snprintf(buf, sizeof buf, "%s/bench-anchor/floor.so", build);
	if (!realpath(buf, floor_lib) || !mkdtemp(dir)) {
		perror("bench_httpd: bench-anchor/floor.so (make bench builds it)");
		return 1;
	}
	snprintf(page, sizeof page, "%s/index.html", dir);
	FILE *f = fopen(page, "w");
	for (int i = 0; f != NULL && i < PAGE; i++)
		fputc('a' + i % 26, f);
	if (f == NULL || fclose(f) != 0) {
		perror("bench_httpd: page");
		return 1;
	}
	const char *policy = bench_policy("version: 1\nlog: {level: warn}\nrules:\n  - {match: {role: server}, action: graceful}\n");
	int l = bench_listener(); /* a free port: the listener is closed before busybox binds it */
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	getsockname(l, (struct sockaddr *)&a, &len);
	port = ntohs(a.sin_port);
	close(l);

	double bare[ROUNDS], empty[ROUNDS], observe[ROUNDS], graceful[ROUNDS], fl_obs[ROUNDS], fl_gr[ROUNDS];
	double r_emp[ROUNDS], r_obs[ROUNDS], r_gr[ROUNDS], a_obs[ROUNDS], a_gr[ROUNDS];
	double r_flo[ROUNDS], r_flg[ROUNDS], f_obs[ROUNDS], f_gr[ROUNDS];
	double cpu[6][ROUNDS];
	long fails[6] = { 0, 0, 0, 0, 0, 0 };
	for (int r = 0; r < ROUNDS; r++) {
		bare[r] = run(busybox, dir, NULL, NULL, false, &fails[0], &cpu[0][r]);
		empty[r] = run(busybox, dir, anchor, NULL, false, &fails[3], &cpu[3][r]);
		fl_obs[r] = run(busybox, dir, floor_lib, NULL, false, &fails[4], &cpu[4][r]);
		observe[r] = run(busybox, dir, lib, NULL, false, &fails[1], &cpu[1][r]);
		fl_gr[r] = run(busybox, dir, floor_lib, NULL, true, &fails[5], &cpu[5][r]);
		graceful[r] = run(busybox, dir, lib, policy, false, &fails[2], &cpu[2][r]);
		r_emp[r] = empty[r] / bare[r];
		r_obs[r] = observe[r] / bare[r];
		r_gr[r] = graceful[r] / bare[r];
		a_obs[r] = observe[r] / empty[r];
		a_gr[r] = graceful[r] / empty[r];
		r_flo[r] = fl_obs[r] / bare[r];
		r_flg[r] = fl_gr[r] / bare[r];
		f_obs[r] = observe[r] / fl_obs[r];
		f_gr[r] = graceful[r] / fl_gr[r];
	}
	double b = median(bare, ROUNDS), e = median(empty, ROUNDS), o = median(observe, ROUNDS),
	       g = median(graceful, ROUNDS);
	double re = median(r_emp, ROUNDS), ro = median(r_obs, ROUNDS), rg = median(r_gr, ROUNDS);
	printf("httpd: busybox httpd, 10 kB page, %d clients, a connection per request: bare %.0f req/s | observe only %.0f req/s (%.3fx; %.3fx-%.3fx) | graceful %.0f req/s (%.3fx; %.3fx-%.3fx)  (medians of %d rounds; incomplete answers %ld / %ld / %ld)\n",
	       CLIENTS, b, o, ro, r_obs[0], r_obs[ROUNDS - 1], g, rg, r_gr[0], r_gr[ROUNDS - 1], ROUNDS,
	       fails[0], fails[1], fails[2]);
	printf("httpd: against an object that does nothing, preloaded (%.0f req/s, %.3fx bare; incomplete answers %ld): observe only %.3fx, graceful %.3fx\n",
	       e, re, fails[3], median(a_obs, ROUNDS), median(a_gr, ROUNDS));
	printf("httpd: the floor, bench/anchor/floor.c (the least an object can do for these closes: a shared count per socket raised at fork, at the last close FIONREAD, or the FIN and a read to EOF; incomplete answers %ld / %ld): observe only %.0f req/s (%.3fx bare), graceful %.0f req/s (%.3fx bare); the shim against the floor: observe only %.3fx, graceful %.3fx\n",
	       fails[4], fails[5], median(fl_obs, ROUNDS), median(r_flo, ROUNDS), median(fl_gr, ROUNDS),
	       median(r_flg, ROUNDS), median(f_obs, ROUNDS), median(f_gr, ROUNDS));
	double cb = median(cpu[0], ROUNDS), co = median(cpu[1], ROUNDS), cg = median(cpu[2], ROUNDS),
	       ce = median(cpu[3], ROUNDS), cfo = median(cpu[4], ROUNDS), cfg = median(cpu[5], ROUNDS);
	printf("httpd: the server's CPU time per request (parent and children; clock ticks, so coarse): bare %.0f us | an object that does nothing %.0f us (%.2fx) | the floor, observe only %.0f us (%.2fx), graceful %.0f us (%.2fx) | observe only %.0f us (%.2fx) | graceful %.0f us (%.2fx)\n",
	       cb, ce, ce / cb, cfo, cfo / cb, cfg, cfg / cb, co, co / cb, cg, cg / cb);
	unlink(page);
	rmdir(dir);
	unlink(policy);
	return 0;
}
