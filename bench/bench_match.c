/* ns per match against a 100-rule policy: the socket matches only the last rule, or none,
 * so every rule is tested (the worst case for first-match-wins). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "policy/policy.h"

static double now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e9 + ts.tv_nsec;
}

static struct cp_policy *hundred_rules(void)
{
	static char text[64 * 1024];
	size_t n = (size_t)snprintf(text, sizeof text, "version: 1\nrules:\n");
	for (int i = 0; i < 99; i++)
		n += (size_t)snprintf(text + n, sizeof text - n,
				      "  - match: {role: server, local_port: [%d, \"%d-%d\"], peer: [10.%d.0.0/16, "
				      "\"fd00:%x::/32\"], program: \"srv*\"}\n    action: graceful\n",
				      1000 + i, 2000 + i * 10, 2005 + i * 10, i, i);
	snprintf(text + n, sizeof text - n, "  - name: last\n    match: {peer_port: 5432, peer: 192.168.0.0/16}\n"
					    "    action: reset\n");
	struct cp_diag d;
	struct cp_policy *p = cp_policy_load_string(text, strlen(text), "bench", &d);
	if (!p) {
		cp_diag_print(&d, stderr);
		exit(1);
	}
	return p;
}

int main(void)
{
	struct cp_policy *p = hundred_rules();
	static struct cp_matcher m;
	cp_matcher_init(&m, p, "srv-main");
	struct cp_socket_facts f = {.role = CP_ROLE_SERVER, .local_port = 8080, .peer_port = 5432};
	f.local.family = 4, f.local.bytes[0] = 127, f.local.bytes[3] = 1;
	f.peer.family = 4, f.peer.bytes[0] = 192, f.peer.bytes[1] = 168, f.peer.bytes[3] = 7;

	const long iterations = 2000000;
	volatile const struct cp_rule *sink = NULL;
	double best_last = 1e18, best_none = 1e18;
	for (int round = 0; round < 5; round++) {
		double t0 = now_ns();
		for (long i = 0; i < iterations; i++) {
			f.peer_port = 5432;
			sink = cp_matcher_match(&m, &f);
		}
		double t1 = now_ns();
		for (long i = 0; i < iterations; i++) {
			f.peer_port = (uint16_t)(5433 + (i & 1));
			sink = cp_matcher_match(&m, &f);
		}
		double t2 = now_ns();
		if ((t1 - t0) / iterations < best_last)
			best_last = (t1 - t0) / iterations;
		if ((t2 - t1) / iterations < best_none)
			best_none = (t2 - t1) / iterations;
	}
	(void)sink;
	f.peer_port = 5432;
	if (!cp_matcher_match(&m, &f) || strcmp(cp_matcher_match(&m, &f)->name, "last") != 0) {
		fprintf(stderr, "bench_match: wrong rule matched\n");
		return 1;
	}
	printf("match: 100-rule policy, last rule matches: %.1f ns/match\n", best_last);
	printf("match: 100-rule policy, no rule matches:   %.1f ns/match\n", best_none);
	cp_policy_free(p);
	return 0;
}
