/* close() as the program sees it, per action: the time a server thread spends in close() of an
 * accepted, idle connection, bare and preloaded with each action, in the same run. */
#include "bench/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CONNECTIONS 3000

static double measure_close(int connections)
{
	int listener = bench_listener();
	double total = 0;
	for (int i = 0; i < connections; i++) {
		int client, server;
		bench_tcp_pair(listener, &client, &server);
		/* An idle connection: nothing in flight, nothing unread, so linger has nothing to wait
		 * for (a reply would make it wait for the peer's delayed ACK, 40 ms) and the figure is
		 * the shim's cost alone. */
		double t0 = bench_now_ns();
		if (close(server) != 0)
			exit(1);
		total += bench_now_ns() - t0;
		close(client);
	}
	close(listener);
	return total / connections;
}

int main(int argc, char **argv)
{
	static const char *const actions[] = {"passthrough", "graceful", "linger", "reset"};
	if (argc == 3 && strcmp(argv[1], "--measure") == 0) {
		bench_raise_nofile();
		/* linger waits for the peer's ACK of the FIN (often delayed 40 ms): fewer of those */
		printf("%.3f\n", measure_close(strcmp(argv[2], "linger") == 0 ? 200 : CONNECTIONS));
		return 0;
	}
	double bare = 1e18, with[4] = {1e18, 1e18, 1e18, 1e18};
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
	}
	printf("close: bare close()                      %7.1f ns\n", bare);
	for (int a = 0; a < 4; a++)
		printf("close: action %-12s              %7.1f ns  ratio %.2fx\n", actions[a], with[a],
		       with[a] / bare);
	return 0;
}
