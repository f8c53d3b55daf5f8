/* Leaves the shim holding descriptors (its log, a graceful drain in progress, the drainer's
 * epoll and eventfd), then execs a program without the shim that lists the descriptors it
 * inherited: there must be none of the shim's.
 *
 *   exec_lister PORT */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)atoi(argv[1])),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int s = socket(AF_INET, SOCK_STREAM, 0);
	if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) != 0) {
		perror("exec_lister: connect");
		return 3;
	}
	close(s); /* graceful: the peer never closes, so the drain is still running at exec */
	execl("/usr/bin/env", "env", "-u", "LD_PRELOAD", "ls", "-1", "/proc/self/fd", (char *)NULL);
	perror("exec_lister: execl");
	return 4;
}
