/* A program that changes SIGPIPE's disposition the way a forking server does, for counting the
 * system calls it takes (itest_sigcalls, under strace -f):
 *   sigpipe_calls [threaded]
 * getppid() marks where each counted stretch begins and ends (the program calls it nowhere
 * else): start-up is everything before the first mark; then signal(SIGPIPE, SIG_IGN) between two
 * marks; then a forked child's signal(SIGPIPE, handler) between two marks of its own. "threaded":
 * an idle thread is started after start-up's stretch (the shim's changes then take its lock).
 * Prints "start default|ignore" (what the first signal() returned), then "child ok" when the
 * child read back its handler and a write to a broken pipe ran it once, then "done". */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "broken_fds.h"

static volatile sig_atomic_t handled;

static void on_pipe(int sig)
{
	(void)sig;
	handled++;
}

static void mark(void)
{
	syscall(SYS_getppid);
}

static void *idle(void *arg)
{
	pause();
	return arg;
}

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	mark();
	if (argc > 1 && strcmp(argv[1], "threaded") == 0) {
		pthread_t t;
		pthread_create(&t, NULL, idle, NULL);
	}
	mark();
	void (*first)(int) = signal(SIGPIPE, SIG_IGN);
	mark();
	printf("start %s\n", first == SIG_IGN ? "ignore" : first == SIG_DFL ? "default" : "other");
	pid_t pid = fork();
	if (pid == 0) {
		mark();
		void (*was)(int) = signal(SIGPIPE, on_pipe);
		mark();
		struct sigaction now;
		int fd = broken_pipe();
		ssize_t r = write(fd, "x", 1);
		_exit(was == SIG_IGN && sigaction(SIGPIPE, NULL, &now) == 0 && now.sa_handler == on_pipe && r < 0 &&
				      errno == EPIPE && handled == 1
			      ? 0
			      : 1);
	}
	int st;
	if (pid > 0 && waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0)
		printf("child ok\n");
	printf("done\n");
	return 0;
}
