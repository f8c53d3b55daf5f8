/* fork under load, run under the shim with a policy that resets server sockets:
 *   fork_churn CONNS THREADS FORKS
 * THREADS client threads connect to the program's own listener and read until the connection
 * ends; THREADS acceptor threads accept and close at once; one more thread forks FORKS times,
 * each child closing every descriptor it inherited (closefrom) and exiting. Every server close
 * must act exactly once, in the parent or in a child holding the last reference, so every
 * client sees ECONNRESET. Prints "resets N eofs M", then exits 0. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int lfd;
static struct sockaddr_in addr;
static atomic_long to_accept, to_connect, resets, eofs;
static long forks;

static void *acceptor(void *arg)
{
	(void)arg;
	while (atomic_fetch_sub(&to_accept, 1) > 0) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0 || close(fd) < 0) {
			perror("fork_churn: accept/close");
			exit(1);
		}
	}
	return NULL;
}

static void *client(void *arg)
{
	(void)arg;
	while (atomic_fetch_sub(&to_connect, 1) > 0) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0) {
			perror("fork_churn: socket");
			exit(1);
		}
		if (connect(fd, (struct sockaddr *)&addr, sizeof addr) < 0) {
			/* the server's reset came before this thread returned from connect (a quick
			 * acceptor, a fork keeping this CPU): the reset it is */
			if (errno != ECONNRESET) {
				perror("fork_churn: connect");
				exit(1);
			}
			atomic_fetch_add(&resets, 1);
			close(fd);
			continue;
		}
		char c;
		ssize_t n;
		while ((n = read(fd, &c, 1)) < 0 && errno == EINTR)
			;
		if (n < 0 && errno == ECONNRESET)
			atomic_fetch_add(&resets, 1);
		else
			atomic_fetch_add(&eofs, 1);
		close(fd);
	}
	return NULL;
}

static void *forker(void *arg)
{
	(void)arg;
	for (long i = 0; i < forks; i++) {
		pid_t pid = fork();
		if (pid < 0) {
			perror("fork_churn: fork");
			exit(1);
		}
		if (pid == 0) {
			closefrom(3);
			_exit(0);
		}
		int st;
		if (waitpid(pid, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "fork_churn: child status %d\n", st);
			exit(1);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 4)
		return 2;
	long conns = atol(argv[1]);
	int threads = atoi(argv[2]);
	forks = atol(argv[3]);
	atomic_store(&to_accept, conns);
	atomic_store(&to_connect, conns);
	setvbuf(stdout, NULL, _IOLBF, 0);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	addr = (struct sockaddr_in){ .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof addr;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&addr, &len) < 0) {
		perror("fork_churn: listen");
		return 1;
	}
	pthread_t t[66];
	int n = 0;
	pthread_create(&t[n++], NULL, forker, NULL);
	for (int i = 0; i < threads && n < 64; i++) {
		pthread_create(&t[n++], NULL, acceptor, NULL);
		pthread_create(&t[n++], NULL, client, NULL);
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	printf("resets %ld eofs %ld\n", atomic_load(&resets), atomic_load(&eofs));
	return 0;
}
