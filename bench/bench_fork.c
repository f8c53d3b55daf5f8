/* What the shim costs a forking program, under a graceful policy, against the same work bare in
 * the same run: fork + _exit + waitpid with no socket open and with 100 connections (200
 * connected sockets, each given to every child: counted at the fork, released at the child's
 * exit), and fork + exec(/bin/true) + waitpid (the new image loads the object too) — each the
 * median of interleaved pairs, with the pairs' ratios; fork and exec also with an object that
 * does nothing preloaded (bench/anchor/empty.c): what any preloaded object costs. Then close() of
 * a socket that a fork has shared (one atomic decrement in the shared table before the action),
 * bare, with the table and without it (CLOSEPOLICY_TEST_NO_SHARED_REFS=1: every process acts at
 * its own last close). */
#include "bench/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 300
#define FORK_SOCKETS 100
#define EXECS 60
#define PAIRS 15
#define CLOSE_SOCKETS 2000

static void fork_and_reap(int child_closes)
{
	pid_t pid = fork();
	if (pid < 0)
		exit(1);
	if (pid == 0) {
		if (child_closes)
			closefrom(3); /* the child's references go, as a server's child would let go */
		_exit(0);
	}
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st))
		exit(1);
}

static void open_pairs(int n, int *client, int *server)
{
	int listener = bench_listener();
	for (int i = 0; i < n; i++)
		bench_tcp_pair(listener, &client[i], &server[i]);
	close(listener);
}

/* ns per fork + child exit + wait, with n connections open */
static double measure_fork(int n)
{
	static int client[FORK_SOCKETS], server[FORK_SOCKETS];
	open_pairs(n, client, server);
	fork_and_reap(0); /* the first fork creates the table: not the steady cost */
	double t0 = bench_now_ns();
	for (int i = 0; i < FORKS; i++)
		fork_and_reap(0);
	return (bench_now_ns() - t0) / FORKS;
}

/* ns per fork + exec of /bin/true + wait (the child inherits LD_PRELOAD and the policy) */
static double measure_exec(void)
{
	char *argv[] = { (char *)"/bin/true", NULL };
	double t0 = bench_now_ns();
	for (int i = 0; i < EXECS; i++) {
		pid_t pid = fork();
		if (pid < 0)
			exit(1);
		if (pid == 0) {
			execv(argv[0], argv);
			_exit(127);
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			exit(1);
	}
	return (bench_now_ns() - t0) / EXECS;
}

/* ns per close() of a server socket that a child shared and let go of */
static double measure_close(void)
{
	static int client[CLOSE_SOCKETS], server[CLOSE_SOCKETS];
	open_pairs(CLOSE_SOCKETS, client, server);
	fork_and_reap(1);
	double total = 0;
	for (int i = 0; i < CLOSE_SOCKETS; i++) {
		double t0 = bench_now_ns();
		if (close(server[i]) != 0)
			exit(1);
		total += bench_now_ns() - t0;
	}
	for (int i = 0; i < CLOSE_SOCKETS; i++)
		close(client[i]);
	return total / CLOSE_SOCKETS;
}

static double best(const char *self, int shim, int table, const char *policy, const char *what)
{
	double b = 1e18;
	if (!table)
		setenv("CLOSEPOLICY_TEST_NO_SHARED_REFS", "1", 1);
	for (int round = 0; round < 7; round++) {
		double v = bench_run_self(self, shim, policy, "--measure", what);
		b = v < b ? v : b;
	}
	unsetenv("CLOSEPOLICY_TEST_NO_SHARED_REFS");
	return b;
}

static double median(double *v, int n)
{
	qsort(v, (size_t)n, sizeof *v, bench_cmp_double);
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* bare and preloaded (the shim, or BENCH_ANCHOR) in turn, PAIRS times: medians, and the pairs'
 * ratios */
static void pairs(const char *self, int with, const char *policy, const char *what, const char *label)
{
	double bare[PAIRS], shim[PAIRS], ratio[PAIRS];
	for (int i = 0; i < PAIRS; i++) {
		bare[i] = bench_run_self(self, 0, NULL, "--measure", what);
		shim[i] = bench_run_self(self, with, policy, "--measure", what);
		ratio[i] = shim[i] / bare[i];
	}
	double b = median(bare, PAIRS), s = median(shim, PAIRS), r = median(ratio, PAIRS);
	const char *who = with == BENCH_ANCHOR ? "object doing nothing" : policy ? "shim, graceful" : "shim, no policy";
	printf("%-5s: %-44s bare %7.1f us | %-20s %7.1f us | ratio %.3fx (median of %d pairs; lowest %.3fx, highest %.3fx)\n",
	       what, label, b / 1000, who, s / 1000, r, PAIRS, ratio[0], ratio[PAIRS - 1]);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--measure") == 0) {
		bench_raise_nofile();
		double v = strcmp(argv[2], "fork0") == 0  ? measure_fork(0)
			   : strcmp(argv[2], "fork") == 0 ? measure_fork(FORK_SOCKETS)
			   : strcmp(argv[2], "exec") == 0 ? measure_exec()
							  : measure_close();
		printf("%.3f\n", v);
		return 0;
	}
	char graceful[256];
	snprintf(graceful, sizeof graceful, "%s", bench_policy("version: 1\nlog: {level: warn}\nrules:\n  - {match: {role: server}, action: graceful}\n"));
	pairs(argv[0], BENCH_ANCHOR, NULL, "fork0", "fork+exit+wait, no socket open");
	pairs(argv[0], 1, graceful, "fork0", "fork+exit+wait, no socket open");
	pairs(argv[0], 1, graceful, "fork", "fork+exit+wait, 100 connections open");
	pairs(argv[0], BENCH_ANCHOR, NULL, "exec", "fork+exec(/bin/true)+wait");
	pairs(argv[0], 1, NULL, "exec", "fork+exec(/bin/true)+wait");
	pairs(argv[0], 1, graceful, "exec", "fork+exec(/bin/true)+wait");
	unlink(graceful);
	const char *policy =
		bench_policy("version: 1\nlog: {level: warn}\nrules:\n  - {match: {role: server}, action: reset}\n");
	double bare = best(argv[0], 0, 1, NULL, "close");
	double table = best(argv[0], 1, 1, policy, "close");
	double none = best(argv[0], 1, 0, policy, "close");
	printf("close: close() of a shared socket, reset    bare %9.1f ns | shim, shared table %9.1f ns (%.2fx) | shim, no table %9.1f ns (%.2fx) | table/no table %.2fx\n",
	       bare, table, table / bare, none, none / bare, table / none);
	unlink(policy);
	return 0;
}
