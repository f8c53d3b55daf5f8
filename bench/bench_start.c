/* What loading the object costs a process that never opens a connection: fork + exec of
 * /bin/true + wait, bare and with the object preloaded (no policy, and a graceful policy file),
 * in interleaved rounds; the medians, their differences (the start-up cost) and ratios. Then the
 * memory an idle preloaded process holds more than the same process bare (smaps_rollup of a cat
 * waiting for its next line). */
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
static char true_path[] = "/bin/true", cat_path[] = "/bin/cat", path_env[] = "PATH=/usr/bin:/bin";

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

/* "Rss:", "Private_Dirty:"... of a smaps_rollup text, in KiB */
static long field(const char *text, const char *name)
{
	const char *at = strstr(text, name);
	return at ? atol(at + strlen(name)) : -1;
}

/* smaps_rollup of an idle cat: it has answered one line, so it is past its start-up and
 * blocked reading the next */
static void idle_rollup(char *const envp[], char *out, size_t size)
{
	int in[2], back[2];
	if (pipe(in) != 0 || pipe(back) != 0)
		exit(1);
	pid_t pid = fork();
	if (pid < 0)
		exit(1);
	if (pid == 0) {
		dup2(in[0], 0);
		dup2(back[1], 1);
		close(in[0]);
		close(in[1]);
		close(back[0]);
		close(back[1]);
		char *argv[] = { cat_path, NULL };
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(in[0]);
	close(back[1]);
	char c = 'x';
	if (write(in[1], "x\n", 2) != 2 || read(back[0], &c, 1) != 1)
		exit(1);
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/smaps_rollup", (int)pid);
	FILE *f = fopen(path, "r");
	size_t n = f ? fread(out, 1, size - 1, f) : 0;
	out[n] = '\0';
	if (f)
		fclose(f);
	close(in[1]);
	close(back[0]);
	waitpid(pid, NULL, 0);
}

static void memory(char *const bare[], char *const plain[], char *const pol[])
{
	char out[3][4096];
	idle_rollup(bare, out[0], sizeof out[0]);
	idle_rollup(plain, out[1], sizeof out[1]);
	idle_rollup(pol, out[2], sizeof out[2]);
	/* (not Private_Dirty: a freshly built object's text counts there until written back) */
	const char *names[] = { "Rss:", "Anonymous:" };
	const char *what[] = { "resident (shared text mapped in included)",
			       "anonymous (heap, .bss, stacks, written data)" };
	for (int i = 0; i < 2; i++)
		printf("rss: idle cat, %-36s bare %5ld KiB | preloaded, no policy %+5ld KiB | graceful policy %+5ld KiB\n",
		       what[i], field(out[0], names[i]), field(out[1], names[i]) - field(out[0], names[i]),
		       field(out[2], names[i]) - field(out[0], names[i]));
}

int main(void)
{
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
	double t[3][ROUNDS], r1[ROUNDS], r2[ROUNDS], d1[ROUNDS], d2[ROUNDS];
	time_execs(bare); /* warm the page cache */
	time_execs(pol);
	for (int r = 0; r < ROUNDS; r++) {
		t[0][r] = time_execs(bare);
		t[1][r] = time_execs(plain);
		t[2][r] = time_execs(pol);
		r1[r] = t[1][r] / t[0][r];
		r2[r] = t[2][r] / t[0][r];
		d1[r] = t[1][r] - t[0][r];
		d2[r] = t[2][r] - t[0][r];
	}
	double b = median(t[0], ROUNDS), p = median(t[1], ROUNDS), g = median(t[2], ROUNDS);
	/* the start-up cost: the median of each round's difference (rounds drift together) */
	printf("start: fork+exec+wait of /bin/true  bare %7.1f us | preloaded, no policy %7.1f us (%+.1f us, %.2fx) | "
	       "preloaded, graceful policy %7.1f us (%+.1f us, %.2fx)  (medians of %d interleaved rounds of %d)\n",
	       b / 1000, p / 1000, median(d1, ROUNDS) / 1000, median(r1, ROUNDS), g / 1000,
	       median(d2, ROUNDS) / 1000, median(r2, ROUNDS), ROUNDS, EXECS);
	memory(bare, plain, pol);
	unlink(policy);
	return 0;
}
