/* The cost of counting references across processes: fork() of a process holding connected
 * sockets (each fork counts every one for the child), and close() of a socket that a fork has
 * shared (one atomic decrement in the shared table before the action). Each figure bare, under
 * the shim with the table, and under the shim without it (CLOSEPOLICY_TEST_NO_SHARED_REFS=1:
 * every process acts at its own last close), in the same run. */
#include "bench/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 300
#define FORK_SOCKETS 100
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

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--measure") == 0) {
		bench_raise_nofile();
		double v = strcmp(argv[2], "fork0") == 0  ? measure_fork(0)
			   : strcmp(argv[2], "fork") == 0 ? measure_fork(FORK_SOCKETS)
							  : measure_close();
		printf("%.3f\n", v);
		return 0;
	}
	const char *policy =
		bench_policy("version: 1\nlog: {level: warn}\nrules:\n  - {match: {role: server}, action: reset}\n");
	const char *what[] = { "fork0", "fork", "close" };
	const char *unit[] = { "fork+exit+wait, no socket open", "fork+exit+wait, 100 sockets open",
			       "close() of a shared socket, reset" };
	for (int w = 0; w < 3; w++) {
		double bare = best(argv[0], 0, 1, NULL, what[w]);
		double table = best(argv[0], 1, 1, policy, what[w]);
		double none = best(argv[0], 1, 0, policy, what[w]);
		printf("%-5s: %-36s bare %9.1f ns | shim, shared table %9.1f ns (%.2fx) | shim, no table %9.1f ns (%.2fx) | table/no table %.2fx\n",
		       what[w], unit[w], bare, table, table / bare, none, none / bare, table / none);
	}
	unlink(policy);
	return 0;
}
