/* A client that makes its socket calls through syscall(), as libuv and other programs that
 * bypass the C library's wrappers do, for the integration tests, run under the shim. It makes a
 * socket and connects to 127.0.0.1:PORT with syscall(SYS_socket / SYS_connect), then:
 *   dupclose    SYS_dup, SYS_close of the original ("first closed FD"), waits for "next" on
 *               stdin, SYS_close of the copy ("closed FD")
 *   shutdown    SYS_shutdown(SHUT_WR) ("shut"), waits for "next", SYS_close ("closed FD")
 *   fclose      closes through fclose() of an fdopen'd stream, a close inside the C library that
 *               no wrapper sees, then opens /dev/null, which takes the number ("reused FD")
 *   exit_group  SYS_exit_group(3) with the socket open
 *   exit        SYS_exit(4) with the socket open, from the only thread
 * and then waits for "exit" on stdin and exits 0 (the last two end the process themselves). */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void die(const char *what)
{
	fprintf(stderr, "raw_calls: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void wait_for(const char *word)
{
	char line[64];
	if (fgets(line, sizeof line, stdin) == NULL || strncmp(line, word, strlen(word)) != 0)
		die("stdin");
}

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	const char *mode = argv[2];
	int s = (int)syscall(SYS_socket, AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((unsigned short)atoi(argv[1])),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (s < 0 || syscall(SYS_connect, s, &sin, sizeof sin) < 0)
		die("connect");
	if (strcmp(mode, "dupclose") == 0) {
		int d = (int)syscall(SYS_dup, s);
		if (d < 0 || syscall(SYS_close, s) < 0)
			die("dup/close");
		printf("first closed %d\n", s);
		wait_for("next");
		if (syscall(SYS_close, d) < 0)
			die("close");
		printf("closed %d\n", d);
	} else if (strcmp(mode, "shutdown") == 0) {
		if (syscall(SYS_shutdown, s, SHUT_WR) < 0)
			die("shutdown");
		printf("shut\n");
		wait_for("next");
		if (syscall(SYS_close, s) < 0)
			die("close");
		printf("closed %d\n", s);
	} else if (strcmp(mode, "fclose") == 0) {
		FILE *f = fdopen(s, "r+");
		if (f == NULL || fclose(f) != 0)
			die("fdopen/fclose");
		int n = open("/dev/null", O_RDONLY);
		if (n != s)
			die("the number was not reused");
		printf("reused %d\n", n);
	} else if (strcmp(mode, "exit_group") == 0) {
		syscall(SYS_exit_group, 3);
	} else if (strcmp(mode, "exit") == 0) {
		syscall(SYS_exit, 4);
	} else {
		return 2;
	}
	wait_for("exit");
	return 0;
}
