/* What a fork costs the two processes, in minor page faults:
 *   fork_cost SOCKETS FORKS [THREADS]
 * starts THREADS idle threads (default none: a program's workers, a library's own), opens
 * SOCKETS connected loopback pairs (the accepted ends are servers), forks three times to
 * settle, then FORKS times fork + _exit(0) in the child + waitpid, and prints
 *   "faults parent P child C"
 * the totals over those FORKS forks (getrusage RUSAGE_SELF and RUSAGE_CHILDREN). Under strace,
 * the difference between two runs with different FORKS is the system calls of one fork.
 * It runs without address space randomization where it may (it execs itself again so): each
 * figure then depends on the program and the object, not on where the loader put them. */
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "fixed_layout.h"

static void fork_exit_wait(void)
{
	pid_t pid = fork();
	if (pid < 0) {
		perror("fork_cost: fork");
		exit(1);
	}
	if (pid == 0)
		_exit(0);
	int st;
	if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
		fprintf(stderr, "fork_cost: child status %d\n", st);
		exit(1);
	}
}

static int idle_pipe[2];

static void *idle(void *arg)
{
	(void)arg;
	char c;
	while (read(idle_pipe[0], &c, 1) < 0)
		;
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 3 && argc != 4)
		return 2;
	fixed_layout(argv);
	int sockets = atoi(argv[1]);
	long forks = atol(argv[2]);
	int threads = argc == 4 ? atoi(argv[3]) : 0;
	if (threads > 0 && pipe(idle_pipe) < 0)
		return 1;
	for (int i = 0; i < threads; i++) {
		pthread_t t;
		if (pthread_create(&t, NULL, idle, NULL) != 0)
			return 1;
	}
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int lfd = socket(AF_INET, SOCK_STREAM, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &len) < 0) {
		perror("fork_cost: listen");
		return 1;
	}
	for (int i = 0; i < sockets; i++) {
		int c = socket(AF_INET, SOCK_STREAM, 0);
		if (c < 0 || connect(c, (struct sockaddr *)&a, sizeof a) < 0 || accept(lfd, NULL, NULL) < 0) {
			perror("fork_cost: connect/accept");
			return 1;
		}
	}
	for (int i = 0; i < 3; i++)
		fork_exit_wait();
	struct rusage self0, child0, self1, child1;
	getrusage(RUSAGE_SELF, &self0);
	getrusage(RUSAGE_CHILDREN, &child0);
	for (long i = 0; i < forks; i++)
		fork_exit_wait();
	getrusage(RUSAGE_SELF, &self1);
	getrusage(RUSAGE_CHILDREN, &child1);
	printf("faults parent %ld child %ld\n", self1.ru_minflt - self0.ru_minflt,
	       child1.ru_minflt - child0.ru_minflt);
	return 0;
}
