/* Descriptor reuse under concurrency, run under the shim with a policy that resets server
 * sockets only. Prints "port N" (its own listener); then ACCEPTORS threads accept and close at
 * once, while CLIENTS threads connect to 127.0.0.1:PEERPORT and close at once, so the numbers
 * released by one kind are immediately taken by the other. A state leak shows on the wire: a
 * client close that sends RST, or a server close that does not.
 *   churn PEERPORT SERVER_CONNS CLIENT_CONNS THREADS_EACH */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static int lfd, peer_port;
static atomic_long server_left, client_left;

static void *acceptor(void *arg)
{
	(void)arg;
	while (atomic_fetch_sub(&server_left, 1) > 0) {
		int fd = accept(lfd, NULL, NULL);
		if (fd < 0) {
			perror("accept");
			exit(1);
		}
		if (close(fd) < 0) {
			perror("close");
			exit(1);
		}
	}
	return NULL;
}

static void *client(void *arg)
{
	(void)arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((unsigned short)peer_port) };
	while (atomic_fetch_sub(&client_left, 1) > 0) {
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		if (fd < 0 || connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0) {
			perror("connect");
			exit(1);
		}
		if (close(fd) < 0) {
			perror("close");
			exit(1);
		}
	}
	return NULL;
}

int main(int argc, char **argv)
{
	if (argc != 5)
		return 2;
	peer_port = atoi(argv[1]);
	atomic_store(&server_left, atol(argv[2]));
	atomic_store(&client_left, atol(argv[3]));
	int threads = atoi(argv[4]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	lfd = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(lfd, 1024) < 0 ||
	    getsockname(lfd, (struct sockaddr *)&sin, &len) < 0) {
		perror("listen");
		return 1;
	}
	printf("port %d\n", ntohs(sin.sin_port));
	pthread_t t[64];
	int n = 0;
	for (int i = 0; i < threads && n < 62; i++) {
		pthread_create(&t[n++], NULL, acceptor, NULL);
		pthread_create(&t[n++], NULL, client, NULL);
	}
	for (int i = 0; i < n; i++)
		pthread_join(t[i], NULL);
	printf("done\n");
	return 0;
}
