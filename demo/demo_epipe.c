/* Writes after the peer left: connect to a listener of our own, let the peer close its end,
 * then keep writing. The first write is answered with RST; the next fails with EPIPE and raises
 * SIGPIPE, which kills a program that did not ask otherwise — silently.
 *
 *   demo_epipe [--ignore]      (--ignore: the program itself ignores SIGPIPE)
 *
 * Prints "wrote N bytes, then EPIPE" when it survives; killed by SIGPIPE, it prints nothing. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc > 1 && strcmp(argv[1], "--ignore") == 0)
		signal(SIGPIPE, SIG_IGN);
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof a;
	int listener = socket(AF_INET, SOCK_STREAM, 0);
	if (bind(listener, (struct sockaddr *)&a, sizeof a) != 0 || listen(listener, 1) != 0 ||
	    getsockname(listener, (struct sockaddr *)&a, &len) != 0) {
		perror("demo_epipe: listen");
		return 3;
	}
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("demo_epipe: connect");
		return 3;
	}
	int peer = accept(listener, NULL, NULL);
	close(peer); /* the peer goes away */
	char buf[1000];
	memset(buf, 'w', sizeof buf);
	size_t total = 0;
	for (int i = 0; i < 100; i++) {
		ssize_t n = write(s, buf, sizeof buf);
		if (n < 0) {
			printf("wrote %zu bytes, then %s\n", total, errno == EPIPE ? "EPIPE" : strerror(errno));
			return 0;
		}
		total += (size_t)n;
	}
	printf("wrote %zu bytes and no error\n", total);
	return 0;
}
