/* Helpers of the benchmarks; see common.h. */
#include "bench/common.h"

#include <arpa/inet.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

double bench_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

const char *bench_policy(const char *yaml)
{
	static char path[64];
	snprintf(path, sizeof path, "/tmp/cp-bench-%d.yaml", (int)getpid());
	FILE *f = fopen(path, "w");
	if (!f || fputs(yaml, f) < 0 || fclose(f) != 0) {
		perror("bench: policy file");
		exit(1);
	}
	return path;
}

double bench_run_self(const char *self, int with_shim, const char *policy, const char *arg1,
		      const char *arg2)
{
	int out[2];
	char lib[PATH_MAX], buf[128];
	const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
	snprintf(buf, sizeof buf, with_shim == BENCH_ANCHOR ? "%s/bench-anchor/empty.so" : "%s/libclosepolicy.so",
		 build);
	if (!realpath(buf, lib)) {
		perror(buf);
		exit(1);
	}
	if (pipe(out) != 0)
		exit(1);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(out[1], 1);
		close(out[0]);
		close(out[1]);
		if (with_shim) {
			setenv("LD_PRELOAD", lib, 1);
			if (policy)
				setenv("CLOSEPOLICY_FILE", policy, 1);
		} else {
			unsetenv("LD_PRELOAD");
		}
		execl(self, self, arg1, arg2, (char *)NULL);
		_exit(127);
	}
	close(out[1]);
	ssize_t n = read(out[0], buf, sizeof buf - 1);
	close(out[0]);
	int status;
	waitpid(pid, &status, 0);
	if (n <= 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "bench: %s %s %s failed (status %d)\n", self, arg1, arg2 ? arg2 : "", status);
		exit(1);
	}
	buf[n] = '\0';
	return strtod(buf, NULL);
}

int bench_listener(void)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) != 0 || listen(s, 1024) != 0) {
		perror("bench: listen");
		exit(1);
	}
	return s;
}

void bench_tcp_pair(int listener, int *client, int *server)
{
	struct sockaddr_in a;
	socklen_t len = sizeof a;
	getsockname(listener, (struct sockaddr *)&a, &len);
	*client = socket(AF_INET, SOCK_STREAM, 0);
	if (*client < 0 || connect(*client, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("bench: connect");
		exit(1);
	}
	*server = accept(listener, NULL, NULL);
	if (*server < 0) {
		perror("bench: accept");
		exit(1);
	}
}

void bench_raise_nofile(void)
{
	struct rlimit r;
	if (getrlimit(RLIMIT_NOFILE, &r) == 0) {
		r.rlim_cur = r.rlim_max;
		setrlimit(RLIMIT_NOFILE, &r);
	}
}

int bench_cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}
