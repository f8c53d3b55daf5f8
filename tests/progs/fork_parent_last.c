/* A single-threaded server that forks a child per connection, where the PARENT's close is the
 * connection's last (the child exits first): the shape in which a graceful close in the parent
 * once started the drainer thread for good. Listens on 127.0.0.1:0 and prints "port N"; for
 * each of COUNT connections it accepts, forks a child that writes BYTES bytes and exits with
 * the connection still open, reaps that child, then closes its own copy and prints "closed I".
 * At the end it prints "threads T single S" (the entries of /proc/self/task, and the C
 * library's __libc_single_threaded), then returns from main with the last close still draining.
 *   fork_parent_last COUNT BYTES */
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define HAVE_SINGLE_THREADED 1
#endif
#endif

static void die(const char *what)
{
	perror(what);
	exit(1);
}

static int threads(void)
{
	DIR *d = opendir("/proc/self/task");
	if (d == NULL)
		die("fork_parent_last: /proc/self/task");
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += e->d_name[0] != '.';
	closedir(d);
	return n;
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	long count = atol(argv[1]), bytes = atol(argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof a;
	int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&a, sizeof a) < 0 || listen(lfd, 16) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&a, &len) < 0)
		die("fork_parent_last: listen");
	printf("port %d\n", ntohs(a.sin_port));
	char *buf = malloc((size_t)bytes + 1);
	if (buf == NULL)
		die("fork_parent_last: malloc");
	memset(buf, 'p', (size_t)bytes + 1);
	for (long i = 0; i < count; i++) {
		int s = accept(lfd, NULL, NULL);
		if (s < 0)
			die("fork_parent_last: accept");
		pid_t pid = fork();
		if (pid < 0)
			die("fork_parent_last: fork");
		if (pid == 0) {
			for (long sent = 0; sent < bytes;) {
				ssize_t n = write(s, buf + sent, (size_t)(bytes - sent));
				if (n < 0)
					_exit(4);
				sent += n;
			}
			_exit(0); /* the connection open: the parent's close is the last */
		}
		int st;
		if (waitpid(pid, &st, 0) != pid || !WIFEXITED(st) || WEXITSTATUS(st) != 0)
			die("fork_parent_last: the child");
		if (close(s) < 0)
			die("fork_parent_last: close");
		printf("closed %ld\n", i);
	}
	int single = -1;
#ifdef HAVE_SINGLE_THREADED
	single = __libc_single_threaded;
#endif
	printf("threads %d single %d\n", threads(), single);
	free(buf);
	return 0;
}
