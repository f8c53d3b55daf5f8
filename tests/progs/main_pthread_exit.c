/* main() ends with pthread_exit() after making a TCP socket (which starts the shim's reload
 * thread): the process must still end, with status 0, once its last thread of its own has gone.
 * Prints "ready" first. */
#include <pthread.h>
#include <stdio.h>
#include <sys/socket.h>
#include <netinet/in.h>

int main(void)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	printf(fd >= 0 ? "ready\n" : "socket failed\n");
	pthread_exit(NULL);
}
