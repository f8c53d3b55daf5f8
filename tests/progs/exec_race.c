/* A server that runs a helper for each connection and closes the connection the moment the
 * helper has started, for the integration tests, run under the shim. Listens on 127.0.0.1:0 and
 * prints "port N"; for each of COUNT connections: accept4(SOCK_CLOEXEC), read one byte of the
 * request (the rest stays unread: a plain close answers it with RST), write REPLY bytes, fork a
 * child that execs this program as the helper, learn that the exec happened from a close-on-exec
 * pipe reaching EOF (as python's subprocess and many C programs do), close the connection at
 * once, print "closed I", reap the helper. The helper exits 0 at once.
 *   exec_race COUNT */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define REPLY 100000

static void die(const char *what)
{
	fprintf(stderr, "exec_race: %s: %s\n", what, strerror(errno));
	exit(1);
}

/* Fork, exec the helper, and return once the exec has happened (or failed: exit). */
static pid_t start_helper(const char *self)
{
	int p[2];
	if (pipe2(p, O_CLOEXEC) < 0)
		die("pipe2");
	pid_t pid = fork();
	if (pid < 0)
		die("fork");
	if (pid == 0) {
		close(p[0]);
		execl(self, self, "helper", (char *)NULL);
		int err = errno;
		(void)!write(p[1], &err, sizeof err);
		_exit(127);
	}
	close(p[1]);
	int err;
	ssize_t n;
	while ((n = read(p[0], &err, sizeof err)) < 0 && errno == EINTR)
		;
	close(p[0]);
	if (n > 0) {
		errno = err;
		die("exec of the helper");
	}
	return pid;
}

int main(int argc, char **argv)
{
	if (argc == 2 && strcmp(argv[1], "helper") == 0)
		return 0;
	if (argc != 2)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	long count = atol(argv[1]);
	int l = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	if (l < 0 || bind(l, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(l, 64) < 0 ||
	    getsockname(l, (struct sockaddr *)&sin, &len) < 0)
		die("listen");
	printf("port %d\n", ntohs(sin.sin_port));
	static char reply[REPLY];
	memset(reply, 'x', sizeof reply);
	for (long i = 0; i < count; i++) {
		int c = accept4(l, NULL, NULL, SOCK_CLOEXEC);
		char first;
		if (c < 0 || read(c, &first, 1) != 1)
			die("accept/read");
		for (size_t sent = 0; sent < sizeof reply;) {
			ssize_t n = write(c, reply + sent, sizeof reply - sent);
			if (n < 0)
				die("write");
			sent += (size_t)n;
		}
		pid_t helper = start_helper("/proc/self/exe");
		if (close(c) < 0)
			die("close");
		printf("closed %ld\n", i);
		int st;
		if (waitpid(helper, &st, 0) < 0 || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("helper");
	}
	printf("done\n");
	return 0;
}
