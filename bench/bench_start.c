/* What loading the object costs a process that never opens a connection: fork + exec of
 * /bin/true + wait, bare and with the object preloaded (no policy, and a graceful policy file),
 * in interleaved rounds; the medians, their differences (the start-up cost) and ratios. Then the
 * memory an idle preloaded process holds more than the same process bare (smaps_rollup of a
 * small program that reads its own). */
#include "bench/common.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define ROUNDS 15
#define EXECS 60

static char lib[PATH_MAX], preload[PATH_MAX + 16], policy_env[PATH_MAX + 32];
static char true_path[] = "/bin/true", rollup[] = "--rollup", path_env[] = "PATH=/usr/bin:/bin";

static void run(char *const argv[], char *const envp[], char *out, size_t size)
{
	int p[2];
	if (out != NULL && pipe(p) != 0)
		exit(1);
	pid_t pid = fork();
	if (pid < 0)
		exit(1);
	if (pid == 0) {
		if (out != NULL) {
			dup2(p[1], 1);
			close(p[0]);
			close(p[1]);
		}
		execve(argv[0], argv, envp);
		_exit(127);
	}
	if (out != NULL) {
		close(p[1]);
		size_t len = 0;
		ssize_t n;
		while (len + 1 < size && (n = read(p[0], out + len, size - 1 - len)) > 0)
			len += (size_t)n;
		out[len] = '\0';
		close(p[0]);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "bench_start: %s failed (status %d)\n", argv[0], st);
		exit(1);
	}
}

/* ns per fork + exec + wait */
static double time_execs(char *const envp[])
{
	char *argv[] = { true_path, NULL };
	double t0 = bench_now_ns();
	for (int i = 0; i < EXECS; i++)
		run(argv, envp, NULL, 0);
	return (bench_now_ns() - t0) / EXECS;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* "Rss", "Private_Dirty"... of smaps_rollup, in KiB */
static long field(const char *text, const char *name)
{
	const char *at = strstr(text, name);
	return at ? atol(at + strlen(name) + 1) : -1;
}

static void memory(char *self, char *const bare[], char *const plain[], char *const pol[])
{
	char *argv[] = { self, rollup, NULL };
	char out[3][4096];
	run(argv, bare, out[0], sizeof out[0]);
	run(argv, plain, out[1], sizeof out[1]);
	run(argv, pol, out[2], sizeof out[2]);
	const char *names[] = { "Rss:", "Anonymous:", "Private_Dirty:" };
	const char *what[] = { "resident (the object's text and libyaml's included)",
			       "anonymous (heap, .bss, stacks)", "private dirty (all written pages)" };
	for (int i = 0; i < 3; i++)
		printf("rss: idle process, %-52s bare %5ld KiB | no policy %+5ld KiB | graceful policy %+5ld KiB\n",
		       what[i], field(out[0], names[i]), field(out[1], names[i]) - field(out[0], names[i]),
		       field(out[2], names[i]) - field(out[0], names[i]));
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "--rollup") == 0) { /* the idle process: its own figures */
		FILE *f = fopen("/proc/self/smaps_rollup", "r");
		char buf[4096];
		size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
		buf[n] = '\0';
		fputs(buf, stdout);
		return f ? 0 : 1;
	}
	char buf[PATH_MAX];
	snprintf(buf, sizeof buf, "%s/libclosepolicy.so", getenv("BUILD") ? getenv("BUILD") : "build");
	if (!realpath(buf, lib)) {
		perror(buf);
		return 1;
	}
	const char *policy = bench_policy("version: 1\nlog: {level: warn}\nrules:\n  - {match: {role: server}, action: graceful}\n");
	snprintf(preload, sizeof preload, "LD_PRELOAD=%s", lib);
	snprintf(policy_env, sizeof policy_env, "CLOSEPOLICY_FILE=%s", policy);
	char *bare[] = { path_env, NULL };
	char *plain[] = { path_env, preload, NULL };
	char *pol[] = { path_env, preload, policy_env, NULL };
	double t[3][ROUNDS], r1[ROUNDS], r2[ROUNDS];
	time_execs(bare); /* warm the page cache */
	time_execs(pol);
	for (int r = 0; r < ROUNDS; r++) {
		t[0][r] = time_execs(bare);
		t[1][r] = time_execs(plain);
		t[2][r] = time_execs(pol);
		r1[r] = t[1][r] / t[0][r];
		r2[r] = t[2][r] / t[0][r];
	}
	double b = median(t[0], ROUNDS), p = median(t[1], ROUNDS), g = median(t[2], ROUNDS);
	printf("start: fork+exec+wait of /bin/true  bare %7.1f us | preloaded, no policy %7.1f us (+%.1f us, %.2fx) | "
	       "preloaded, graceful policy %7.1f us (+%.1f us, %.2fx)  (medians of %d rounds of %d)\n",
	       b / 1000, p / 1000, (p - b) / 1000, median(r1, ROUNDS), g / 1000, (g - b) / 1000,
	       median(r2, ROUNDS), ROUNDS, EXECS);
	memory(argv[0], bare, plain, pol);
	unlink(policy);
	return 0;
}
