/* A fork-per-connection server for the integration tests, run under the shim. Listens on
 * 127.0.0.1:0 and prints "port N"; for each of COUNT connections it accepts, hands the
 * connection to a child and closes its own copy at once, printing "closed I". The child waits
 * for the peer's "go" line on the connection, writes BYTES bytes and closes. At the end the
 * parent reaps every child and prints "child STATUS" for each (the raw wait status), then "done".
 *   -k COUNT  connections (default 1)
 *   -w BYTES  bytes the child writes (default 200000)
 *   -e        the child execs fork_helper (next to this program) with the inherited descriptor
 *   -p        posix_spawn fork_helper instead of forking, the connection moved to its stdin
 *   -x        the child exits after writing, the connection still open (the exit path's work) */
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

static void die(const char *what)
{
	fprintf(stderr, "fork_server: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int exit_open; /* -x */

/* What the child does itself (without -e): also the whole of fork_helper. */
static int serve(int fd, long bytes)
{
	char c;
	do /* the peer's "go\n", byte by byte: nothing is left unread */
		if (read(fd, &c, 1) != 1)
			return 3;
	while (c != '\n');
	static char buf[1 << 16];
	memset(buf, 'f', sizeof buf);
	for (long sent = 0; sent < bytes;) {
		size_t chunk = (size_t)(bytes - sent) < sizeof buf ? (size_t)(bytes - sent) : sizeof buf;
		ssize_t n = write(fd, buf, chunk);
		if (n < 0)
			return 4;
		sent += n;
	}
	if (exit_open)
		return 0;
	return close(fd) == 0 ? 0 : 5;
}

int main(int argc, char **argv)
{
	long count = 1, bytes = 200000;
	int do_exec = 0, do_spawn = 0, opt;
	while ((opt = getopt(argc, argv, "k:w:epx")) != -1) {
		switch (opt) {
		case 'k': count = atol(optarg); break;
		case 'w': bytes = atol(optarg); break;
		case 'e': do_exec = 1; break;
		case 'p': do_spawn = 1; break;
		case 'x': exit_open = 1; break;
		default: return 2;
		}
	}
	char helper[PATH_MAX], bytes_arg[32], zero[] = "0";
	snprintf(helper, sizeof helper, "%s", argv[0]);
	char *slash = strrchr(helper, '/');
	snprintf(slash ? slash + 1 : helper, sizeof helper - (size_t)(slash ? slash + 1 - helper : 0),
		 "fork_helper");
	snprintf(bytes_arg, sizeof bytes_arg, "%ld", bytes);
	setvbuf(stdout, NULL, _IOLBF, 0);

	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 64) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0)
		die("listen");
	printf("port %d\n", ntohs(sin.sin_port));

	for (long i = 0; i < count; i++) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			die("accept");
		if (do_spawn) {
			posix_spawn_file_actions_t fa;
			posix_spawn_file_actions_init(&fa);
			posix_spawn_file_actions_adddup2(&fa, fd, 0);
			posix_spawn_file_actions_addclose(&fa, fd);
			char *args[] = { helper, zero, bytes_arg, NULL };
			pid_t pid;
			int rc = posix_spawn(&pid, helper, &fa, NULL, args, environ);
			posix_spawn_file_actions_destroy(&fa);
			if (rc != 0) {
				errno = rc;
				die("posix_spawn");
			}
		} else {
			pid_t pid = fork();
			if (pid < 0)
				die("fork");
			if (pid == 0) {
				char fdarg[16];
				snprintf(fdarg, sizeof fdarg, "%d", fd);
				if (do_exec) {
					execl(helper, helper, fdarg, bytes_arg, (char *)NULL);
					_exit(127);
				}
				exit(serve(fd, bytes));
			}
		}
		if (close(fd) < 0)
			die("close");
		printf("closed %ld\n", i);
	}
	for (long i = 0; i < count; i++) {
		int st;
		if (wait(&st) < 0)
			die("wait");
		printf("child %d\n", st);
	}
	printf("done\n");
	return 0;
}
