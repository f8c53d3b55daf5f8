/* A fork-per-connection server and its client in one process (busybox httpd's shape), for
 * counting what the shim adds per connection:
 *   fork_per_conn CONNS [exit]
 * CONNS times, after three to settle: connect to its own listener, accept, fork. The parent
 * closes its copy of the accepted connection, then sends "g" on the client end; the child reads
 * the "g" (so it is the connection's last holder, always), writes 1000 bytes and closes it, or
 * with "exit" leaves it open to the exit path; then _exit(0). The parent reads the reply to EOF,
 * closes the client end and reaps the child. Prints "faults parent P child C": the minor faults
 * over the CONNS connections (getrusage RUSAGE_SELF and RUSAGE_CHILDREN). Under strace -f -c,
 * the difference between two runs with different CONNS is the system calls of that many.
 * Runs without address space randomization where it may (as fork_cost does). */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixed_layout.h"

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static void one_connection(int lfd, const struct sockaddr_in *a, int leave_open)
{
	int c = socket(AF_INET, SOCK_STREAM, 0);
	if (c < 0 || connect(c, (const struct sockaddr *)a, sizeof *a) < 0)
		die("fork_per_conn: connect");
	int s = accept(lfd, NULL, NULL);
	if (s < 0)
		die("fork_per_conn: accept");
	pid_t pid = fork();
	if (pid < 0)
		die("fork_per_conn: fork");
	if (pid == 0) {
		char go, reply[1000];
		if (read(s, &go, 1) != 1)
			_exit(3);
		memset(reply, 'x', sizeof reply);
		if (write(s, reply, sizeof reply) != (ssize_t)sizeof reply)
			_exit(4);
		if (!leave_open)
			close(s);
		_exit(0);
	}
	close(s);
	if (write(c, "g", 1) != 1)
		die("fork_per_conn: write");
	char buf[4096];
	size_t got = 0;
	ssize_t n;
	while ((n = read(c, buf, sizeof buf)) > 0)
		got += (size_t)n;
	if (n < 0 || got != 1000)
		die("fork_per_conn: the reply");
	close(c);
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "fork_per_conn: child status %d\n", st);
		exit(1);
	}
}

int main(int argc, char **argv)
{
	if (argc != 2 && argc != 3)
		return 2;
	fixed_layout(argv);
	long conns = atol(argv[1]);
	int leave_open = argc == 3 && strcmp(argv[2], "exit") == 0;
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 16) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &len) < 0)
		die("fork_per_conn: listen");
	for (int i = 0; i < 3; i++)
		one_connection(lfd, &a, leave_open);
	struct rusage self0, child0, self1, child1;
	getrusage(RUSAGE_SELF, &self0);
	getrusage(RUSAGE_CHILDREN, &child0);
	for (long i = 0; i < conns; i++)
		one_connection(lfd, &a, leave_open);
	getrusage(RUSAGE_SELF, &self1);
	getrusage(RUSAGE_CHILDREN, &child1);
	printf("faults parent %ld child %ld\n", self1.ru_minflt - self0.ru_minflt,
	       child1.ru_minflt - child0.ru_minflt);
	return 0;
}
