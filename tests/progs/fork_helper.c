/* Exec'd by fork_server -e / -p, run under the shim through the inherited LD_PRELOAD:
 *   fork_helper FD BYTES
 * waits for the peer's "go" line on the inherited connection FD, writes BYTES and closes it. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	if (argc != 3)
		return 2;
	int fd = atoi(argv[1]);
	long bytes = atol(argv[2]);
	char c;
	do
		if (read(fd, &c, 1) != 1)
			return 3;
	while (c != '\n');
	static char buf[1 << 16];
	memset(buf, 'h', sizeof buf);
	for (long sent = 0; sent < bytes;) {
		size_t chunk = (size_t)(bytes - sent) < sizeof buf ? (size_t)(bytes - sent) : sizeof buf;
		ssize_t n = write(fd, buf, chunk);
		if (n < 0)
			return 4;
		sent += n;
	}
	return close(fd) == 0 ? 0 : 5;
}
