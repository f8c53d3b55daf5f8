/* close() as the program sees it, per action: the time a server thread spends in close() of an
 * accepted, idle connection, bare and preloaded with each action, in the same run (the median
 * close of each run, the best of 5 interleaved runs). Graceful three times: closes back to back,
 * the drainer busy (awake); 20 ms apart, the drainer asleep in its tick between them; 200 ms
 * apart, past its busy spell: asleep until the close wakes it. */
#include "bench/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <time.h>

#define CONNECTIONS 3000
#define ASLEEP_CONNECTIONS 150
#define ASLEEP_GAP_NS 20000000L /* longer than the drainer's busy tick: it sleeps in between */
#define DEEP_CONNECTIONS 30
#define DEEP_GAP_NS 200000000L  /* past its busy spell (100 ms): the close wakes it */

static double measure_close(int connections, long gap_ns)
{
	int listener = bench_listener();
	double *t = malloc(sizeof *t * (size_t)connections);
	for (int i = 0; i < connections; i++) {
		int client, server;
		bench_tcp_pair(listener, &client, &server);
		if (gap_ns > 0) {
			struct timespec gap = { 0, gap_ns };
			nanosleep(&gap, NULL); /* the drainer's state, not synchronisation */
		}
		/* An idle connection: nothing in flight, nothing unread, so linger has nothing to wait
		 * for (a reply would make it wait for the peer's delayed ACK, 40 ms) and the figure is
		 * the shim's cost alone. */
		double t0 = bench_now_ns();
		if (close(server) != 0)
			exit(1);
		t[i] = bench_now_ns() - t0;
		close(client);
	}
	close(listener);
	qsort(t, (size_t)connections, sizeof *t, bench_cmp_double);
	double median = t[connections / 2];
	free(t);
	return median;
}

int main(int argc, char **argv)
{
	static const char *const actions[] = {"passthrough", "graceful", "linger", "reset"};
	if (argc == 3 && strcmp(argv[1], "--measure") == 0) {
		bench_raise_nofile();
		if (strcmp(argv[2], "asleep") == 0)
			printf("%.3f\n", measure_close(ASLEEP_CONNECTIONS, ASLEEP_GAP_NS));
		else if (strcmp(argv[2], "deep") == 0)
			printf("%.3f\n", measure_close(DEEP_CONNECTIONS, DEEP_GAP_NS));
		else /* linger waits for the peer's ACK of the FIN (often delayed 40 ms): fewer of those */
			printf("%.3f\n", measure_close(strcmp(argv[2], "linger") == 0 ? 200 : CONNECTIONS, 0));
		return 0;
	}
	double bare = 1e18, bare_asleep = 1e18, asleep = 1e18, bare_deep = 1e18, deep = 1e18;
	double with[4] = {1e18, 1e18, 1e18, 1e18};
	char yaml[4][256];
	for (int a = 0; a < 4; a++)
		snprintf(yaml[a], sizeof yaml[a], "version: 1\nlog: {level: warn}\nrules:\n"
			 "  - {match: {role: server}, action: %s, linger: 5s}\n", actions[a]);
	for (int round = 0; round < 5; round++) {
		double b = bench_run_self(argv[0], 0, NULL, "--measure", "bare");
		bare = b < bare ? b : bare;
		for (int a = 0; a < 4; a++) {
			const char *policy = bench_policy(yaml[a]);
			double s = bench_run_self(argv[0], 1, policy, "--measure", actions[a]);
			with[a] = s < with[a] ? s : with[a];
			unlink(policy);
		}
		if (round < 3) { /* 3 s and 6 s a run */
			b = bench_run_self(argv[0], 0, NULL, "--measure", "asleep");
			bare_asleep = b < bare_asleep ? b : bare_asleep;
			const char *policy = bench_policy(yaml[1]);
			double s = bench_run_self(argv[0], 1, policy, "--measure", "asleep");
			asleep = s < asleep ? s : asleep;
			b = bench_run_self(argv[0], 0, NULL, "--measure", "deep");
			bare_deep = b < bare_deep ? b : bare_deep;
			s = bench_run_self(argv[0], 1, policy, "--measure", "deep");
			deep = s < deep ? s : deep;
			unlink(policy);
		}
	}
	printf("close: bare close() p50                  %7.1f ns\n", bare);
	for (int a = 0; a < 4; a++)
		printf("close: action %-12s p50          %7.1f ns  ratio %.2fx%s\n", actions[a], with[a],
		       with[a] / bare, a == 1 ? " (drainer awake: closes back to back)" : "");
	printf("close: bare close() p50, 20 ms apart     %7.1f ns\n", bare_asleep);
	printf("close: action graceful p50, 20 ms apart  %7.1f ns  ratio %.2fx (drainer asleep in its tick)\n",
	       asleep, asleep / bare_asleep);
	printf("close: bare close() p50, 200 ms apart    %7.1f ns\n", bare_deep);
	printf("close: action graceful p50, 200 ms apart %7.1f ns  ratio %.2fx (drainer asleep: the close wakes it)\n",
	       deep, deep / bare_deep);
	return 0;
}
