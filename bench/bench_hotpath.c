/* The cost of the shim on calls that succeed: 1-byte write() to /dev/null (a descriptor the
 * shim does not follow: the marked path), 64-byte send() and write() on a loopback TCP
 * connection (write() there goes through send() with MSG_NOSIGNAL), ns per call, bare and
 * preloaded, measured in the same run. */
#include "bench/common.h"

#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define CALLS 400000
/* Calls are timed in chunks and the fastest chunk counts: on a virtual machine, stolen time and
 * host interrupts only ever add time, in bursts much longer than a chunk. */
#define CHUNK 2000

static double measure_write_devnull(void)
{
	int fd = open("/dev/null", O_WRONLY);
	char c = 'x';
	double best = 1e18;
	for (int done = 0; done < CALLS; done += CHUNK) {
		double t0 = bench_now_ns();
		for (int i = 0; i < CHUNK; i++)
			if (write(fd, &c, 1) != 1)
				exit(1);
		double t = (bench_now_ns() - t0) / CHUNK;
		best = t < best ? t : best;
	}
	close(fd);
	return best;
}

/* Read everything queued on fd, without waiting. */
static void empty(int fd)
{
	char buf[65536];
	while (recv(fd, buf, sizeof buf, MSG_DONTWAIT) > 0)
		;
}

/* The receiving side is emptied between chunks, not by a thread reading meanwhile: a reader on
 * the other CPU made each send's cost depend on whether it was asleep (a wake-up) or not, and
 * the figures swung by ±30 % from one run to the next. A chunk's 12 KiB fit in the receive
 * buffer, so no send waits. */
#define TCP_CHUNK 200

static double measure_tcp(bool use_write)
{
	int listener = bench_listener(), client, server;
	char msg[64];
	bench_tcp_pair(listener, &client, &server);
	memset(msg, 'x', sizeof msg);
	double best = 1e18;
	for (int done = 0; done < CALLS / 4; done += TCP_CHUNK) {
		double t0 = bench_now_ns();
		for (int i = 0; i < TCP_CHUNK; i++)
			if ((use_write ? write(client, msg, sizeof msg) : send(client, msg, sizeof msg, 0)) !=
			    (ssize_t)sizeof msg)
				exit(1);
		double t = (bench_now_ns() - t0) / TCP_CHUNK;
		best = t < best ? t : best;
		empty(server);
	}
	close(client);
	close(server);
	close(listener);
	return best;
}

static void compare(const char *self, const char *label, const char *what, const char *policy)
{
	double bare = 1e18, shim = 1e18;
	for (int round = 0; round < 11; round++) { /* interleaved, best of 11: noise only adds time */
		double b = bench_run_self(self, 0, NULL, "--measure", what);
		double s = bench_run_self(self, 1, policy, "--measure", what);
		bare = b < bare ? b : bare;
		shim = s < shim ? s : shim;
	}
	printf("hot path: %-34s bare %6.1f ns  shim %6.1f ns  ratio %.3fx\n", label, bare, shim, shim / bare);
}

int main(int argc, char **argv)
{
	if (argc == 3 && strcmp(argv[1], "--measure") == 0) {
		double ns;
		if (strcmp(argv[2], "write") == 0)
			ns = measure_write_devnull();
		else
			ns = measure_tcp(strcmp(argv[2], "write-tcp") == 0);
		printf("%.3f\n", ns);
		return 0;
	}
	/* A matching rule, so the TCP socket is tracked as a user's would be. */
	const char *policy = bench_policy("version: 1\nlog: {level: warn}\nrules:\n"
					  "  - {match: {role: any}, action: graceful}\n");
	compare(argv[0], "write(/dev/null, 1 byte)", "write", policy);
	compare(argv[0], "send(loopback TCP, 64 bytes)", "send", policy);
	compare(argv[0], "write(loopback TCP, 64 bytes)", "write-tcp", policy);
	unlink(policy);
	return 0;
}
