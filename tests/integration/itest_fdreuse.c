/* Descriptor reuse under concurrency: threads of the program accept-and-close (server sockets,
 * reset by the policy) while others connect-and-close (client sockets, no rule), so numbers
 * released by one are taken at once by the other. A leaked state would reset a client
 * connection, a lost one would leave a server connection unreset: both visible on the wire. */
#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define SERVER_CONNS 600
#define CLIENT_CONNS 600
#define THREADS 4

struct tally {
	int lfd, n;
	int eof, rst, other;
};

/* The test's listener: each connection the program makes is closed by it at once (no data):
 * expect EOF. */
static void *peer_listener(void *arg)
{
	struct tally *t = arg;
	for (int i = 0; i < t->n; i++) {
		int fd = accept(t->lfd, NULL, NULL);
		if (fd < 0)
			break;
		struct h_read r = h_read_to_end(fd, 10000);
		if (r.err == 0 && r.bytes == 0)
			t->eof++;
		else if (r.err == ECONNRESET)
			t->rst++;
		else
			t->other++;
		close(fd);
	}
	return NULL;
}

struct conns {
	int port, n;
	int eof, rst, other;
};

/* Connections to the program's listener: the program closes each at once: expect RST. */
static void *peer_connector(void *arg)
{
	struct conns *c = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((unsigned short)c->port) };
	for (int i = 0; i < c->n; i++) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
		assert_true(fd >= 0);
		/* The reset can come before connect() returns (the program accepts and resets at
		 * once, and a slow thread wakes to find it): connect then reports that RST. */
		if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
			if (errno == ECONNRESET)
				c->rst++;
			else
				c->other++;
			close(fd);
			continue;
		}
		struct h_read r = h_read_to_end(fd, 10000);
		if (r.err == ECONNRESET)
			c->rst++;
		else if (r.err == 0)
			c->eof++;
		else
			c->other++;
		close(fd);
	}
	return NULL;
}

static void test_no_state_leaks_across_reused_numbers(void **state)
{
	(void)state;
	struct tally t = { .n = CLIENT_CONNS };
	int peer_port;
	t.lfd = h_listen(&peer_port);
	char pp[16], sc[16], cc[16], th[16];
	snprintf(pp, sizeof pp, "%d", peer_port);
	snprintf(sc, sizeof sc, "%d", SERVER_CONNS);
	snprintf(cc, sizeof cc, "%d", CLIENT_CONNS);
	snprintf(th, sizeof th, "%d", THREADS);

	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - name: srv\n    match: {role: server}\n    action: reset\n",
		NULL, "churn", pp, sc, cc, th, NULL);
	int port = (int)h_expect(&p, "port ", 5000);

	pthread_t lt, ct[THREADS];
	struct conns c[THREADS];
	pthread_create(&lt, NULL, peer_listener, &t);
	for (int i = 0; i < THREADS; i++) {
		c[i] = (struct conns){ .port = port, .n = SERVER_CONNS / THREADS };
		pthread_create(&ct[i], NULL, peer_connector, &c[i]);
	}
	int rst = 0, eof = 0, other = 0;
	for (int i = 0; i < THREADS; i++) {
		pthread_join(ct[i], NULL);
		rst += c[i].rst;
		eof += c[i].eof;
		other += c[i].other;
	}
	pthread_join(lt, NULL);
	h_expect(&p, "done", 20000);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	print_message("server side: %d RST, %d EOF, %d other; client side: %d EOF, %d RST, %d other\n",
		      rst, eof, other, t.eof, t.rst, t.other);
	assert_int_equal(rst, SERVER_CONNS);
	assert_int_equal(t.eof, CLIENT_CONNS);
	assert_int_equal(h_log_count(&p, "event=close", "rule=srv", "action=reset", "role=server", NULL),
			 SERVER_CONNS);
	assert_int_equal(h_log_count(&p, "event=close", NULL), SERVER_CONNS);
	assert_int_equal(h_log_count(&p, "event=error", NULL), 0);
	close(t.lfd);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_state_leaks_across_reused_numbers),
	};
	return cmocka_run_group_tests_name("fdreuse", tests, NULL, NULL);
}
