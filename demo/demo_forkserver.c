/* A fork-per-connection server, the classic way: the parent accepts, forks, and closes its copy
 * of the connection at once; the child serves it. A shim that acted on the parent's close would
 * shut the connection under the child's feet (shutdown ignores other holders).
 *
 *   demo_forkserver [--write BYTES]
 *
 * Prints the port; serves one connection: the child reads the 100-byte request, waits until the
 * parent has closed its copy, writes BYTES (default 200000) and closes. Exits with the child's
 * status. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static int serve(int c, int go, size_t bytes)
{
	char buf[65536];
	size_t got = 0;
	while (got < 100) {
		ssize_t n = recv(c, buf, 100 - got, 0);
		if (n <= 0) { /* what a shim that drained the parent's copy leaves the child */
			printf("the child found its request gone (%zu of 100 bytes)\n", got);
			fflush(stdout);
			return 3;
		}
		got += (size_t)n;
	}
	char byte;
	if (read(go, &byte, 1) != 1) /* the parent has closed its copy */
		return 3;
	memset(buf, 'f', sizeof buf);
	while (bytes > 0) {
		size_t n = bytes < sizeof buf ? bytes : sizeof buf;
		ssize_t put = send(c, buf, n, 0);
		if (put <= 0) {
			perror("demo_forkserver: child: send");
			return 4;
		}
		bytes -= (size_t)put;
	}
	return close(c) == 0 ? 0 : 5;
}

int main(int argc, char **argv)
{
	size_t bytes = 200000;
	if (argc == 3 && strcmp(argv[1], "--write") == 0)
		bytes = strtoul(argv[2], NULL, 10);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 8) != 0 ||
	    getsockname(listener, (struct sockaddr *)&a, &len) != 0) {
		perror("demo_forkserver: listen");
		return 3;
	}
	printf("%d\n", ntohs(a.sin_port));
	fflush(stdout);
	int c = accept(listener, NULL, NULL);
	int go[2];
	if (c < 0 || pipe(go) != 0)
		return 3;
	pid_t pid = fork();
	if (pid == 0) {
		close(listener);
		close(go[1]);
		_exit(serve(c, go[0], bytes));
	}
	close(c); /* the parent's copy goes at once, as fork servers do */
	close(go[0]);
	if (write(go[1], "g", 1) != 1)
		return 3;
	int status;
	waitpid(pid, &status, 0);
	if (WIFSIGNALED(status)) {
		printf("child killed by signal %d\n", WTERMSIG(status));
		return 128 + WTERMSIG(status);
	}
	return WEXITSTATUS(status);
}
