/* SIGPIPE handlers chained while threads write, for the integration test (run under the shim):
 *   sigchain_threads THREADS COUNT
 * THREADS writer threads each make COUNT failing writes, alternating between a pipe whose reader
 * is closed (the kernel's SIGPIPE, through the shim's handler) and a TCP socket whose peer reset
 * it (the shim's MSG_NOSIGNAL send, then its re-delivered SIGPIPE). Meanwhile the main thread
 * swaps the program's handler between two, reading each time back the one it set before.
 * Every failing write must bring exactly one call of one of the program's handlers, in the
 * writing thread, and fail with EPIPE.
 * Prints "writes N epipe E handled H wrong_thread W readback_bad R swaps S", then "done". */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "broken_fds.h"

#define MAX_THREADS 16

static atomic_int handled, wrong_thread, epipe, writes, writers_left;
static __thread int is_writer;

static void count_call(void)
{
	atomic_fetch_add(&handled, 1);
	if (!is_writer)
		atomic_fetch_add(&wrong_thread, 1);
}

static void handler_a(int sig, siginfo_t *si, void *ctx)
{
	(void)sig, (void)si, (void)ctx;
	count_call();
}

static void handler_b(int sig)
{
	(void)sig;
	count_call();
}

static int count;

static void *writer(void *arg)
{
	(void)arg;
	is_writer = 1;
	int port;
	int fds[2] = { broken_pipe(), broken_socket(&port) };
	char buf[64];
	memset(buf, 'w', sizeof buf);
	for (int i = 0; i < count; i++) {
		errno = 0;
		ssize_t r = write(fds[i % 2], buf, sizeof buf);
		atomic_fetch_add(&writes, 1);
		if (r < 0 && errno == EPIPE)
			atomic_fetch_add(&epipe, 1);
	}
	close(fds[0]);
	close(fds[1]);
	atomic_fetch_sub(&writers_left, 1);
	return NULL;
}

int main(int argc, char **argv)
{
	int threads = argc == 3 ? atoi(argv[1]) : 0;
	count = argc == 3 ? atoi(argv[2]) : 0;
	if (threads < 1 || threads > MAX_THREADS || count < 1) {
		fprintf(stderr, "usage: sigchain_threads THREADS(1-%d) COUNT\n", MAX_THREADS);
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sigaction a, b, old;
	memset(&a, 0, sizeof a);
	a.sa_sigaction = handler_a;
	a.sa_flags = SA_SIGINFO;
	sigemptyset(&a.sa_mask);
	memset(&b, 0, sizeof b);
	b.sa_handler = handler_b;
	sigemptyset(&b.sa_mask);
	if (sigaction(SIGPIPE, &a, NULL) < 0)
		return 3;

	atomic_store(&writers_left, threads);
	pthread_t t[MAX_THREADS];
	for (int i = 0; i < threads; i++)
		pthread_create(&t[i], NULL, writer, NULL);
	int swaps = 0, readback_bad = 0;
	while (atomic_load(&writers_left) > 0) {
		const struct sigaction *next = swaps % 2 ? &a : &b, *expect = swaps % 2 ? &b : &a;
		if (sigaction(SIGPIPE, next, &old) < 0 || old.sa_handler != expect->sa_handler)
			readback_bad++;
		swaps++;
	}
	for (int i = 0; i < threads; i++)
		pthread_join(t[i], NULL);
	printf("writes %d epipe %d handled %d wrong_thread %d readback_bad %d swaps %d\n",
	       atomic_load(&writes), atomic_load(&epipe), atomic_load(&handled),
	       atomic_load(&wrong_thread), readback_bad, swaps);
	printf("done\n");
	return 0;
}
