/* A connection broker for the integration tests, run under the shim: it connects to
 * 127.0.0.1:PORT and gives the connection away over a UNIX socket (SCM_RIGHTS) to a receiver
 * process it forked before connecting, as systemd socket activation, privilege-separated daemons
 * and python's socket.send_fds do. The receiver asks the server with "go\n", reads the reply to
 * its end and prints "received N eof" (or "received N ERRNO-NAME"), then closes.
 *   rights_pass PORT MODE [raw]
 * MODE: close  the sender closes its copy, then lets the receiver ask
 *       dup    the sender dups its copy first and closes both
 *       exit   the sender exits with its copy open (on_exit), then the receiver asks
 *       epipe  as close; the receiver ignores SIGPIPE, asks, reads until the server's reset, then
 *              writes again: "write EPIPE" when that failed with EPIPE
 * raw: the sender sends and closes through syscall() (as libuv does); mmsg: it sends with
 * sendmmsg.
 * The sender prints "closed" once its copies are gone (or "exiting"), and exits with the
 * receiver's status (exit mode: 0). */
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static int raw, mmsg;

static void die(const char *what)
{
	fprintf(stderr, "rights_pass: %s: %s\n", what, strerror(errno));
	exit(1);
}

static int close_fd(int fd)
{
	return raw ? (int)syscall(SYS_close, fd) : close(fd);
}

static void send_fd(int unix_fd, int fd)
{
	char byte = 'f';
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	memset(&u, 0, sizeof u);
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof u.buf };
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof fd);
	struct mmsghdr vec = { .msg_hdr = m };
	ssize_t n = raw    ? syscall(SYS_sendmsg, unix_fd, &m, 0)
		    : mmsg ? (sendmmsg(unix_fd, &vec, 1, 0) == 1 ? (ssize_t)vec.msg_len : -1)
			   : sendmsg(unix_fd, &m, 0);
	if (n != 1)
		die("sendmsg");
}

static int recv_fd(int unix_fd)
{
	char byte;
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} u;
	struct msghdr m = { .msg_iov = &iov, .msg_iovlen = 1, .msg_control = u.buf,
			    .msg_controllen = sizeof u.buf };
	if (recvmsg(unix_fd, &m, 0) != 1)
		die("recvmsg");
	struct cmsghdr *c = CMSG_FIRSTHDR(&m);
	if (c == NULL || c->cmsg_type != SCM_RIGHTS)
		die("no descriptor received");
	int fd;
	memcpy(&fd, CMSG_DATA(c), sizeof fd);
	return fd;
}

/* The receiver: wait for the sender's word (a byte, or EOF when it exited), ask, read all. */
static int receive(int unix_fd, bool epipe)
{
	if (epipe)
		signal(SIGPIPE, SIG_IGN);
	int fd = recv_fd(unix_fd);
	char word;
	if (read(unix_fd, &word, 1) < 0)
		die("read from the sender");
	if (write(fd, "go\n", 3) != 3) {
		printf("received 0 %s\n", strerrorname_np(errno));
		return 1;
	}
	static char buf[1 << 16];
	long total = 0;
	ssize_t n;
	while ((n = read(fd, buf, sizeof buf)) > 0)
		total += n;
	printf("received %ld %s\n", total, n == 0 ? "eof" : strerrorname_np(errno));
	if (epipe) {
		bool failed = write(fd, "more", 4) < 0;
		printf("write %s\n", failed ? strerrorname_np(errno) : "ok");
		return failed && errno == EPIPE ? 0 : 1;
	}
	close(fd);
	return n == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 3)
		return 2;
	setvbuf(stdout, NULL, _IOLBF, 0);
	int port = atoi(argv[1]);
	const char *mode = argv[2];
	raw = argc > 3 && strcmp(argv[3], "raw") == 0;
	mmsg = argc > 3 && strcmp(argv[3], "mmsg") == 0;
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		die("socketpair");
	pid_t child = fork();
	if (child < 0)
		die("fork");
	if (child == 0) {
		close(sv[0]);
		exit(receive(sv[1], strcmp(mode, "epipe") == 0));
	}
	close(sv[1]);
	int s = socket(AF_INET, SOCK_STREAM, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons((unsigned short)port),
				   .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	if (s < 0 || connect(s, (struct sockaddr *)&sin, sizeof sin) < 0)
		die("connect");
	int copy = strcmp(mode, "dup") == 0 ? (raw ? (int)syscall(SYS_dup, s) : dup(s)) : -1;
	send_fd(sv[0], s);
	if (strcmp(mode, "exit") == 0) {
		printf("exiting\n");
		exit(0); /* the receiver asks once this process is gone (its end reads EOF) */
	}
	if (close_fd(s) < 0 || (copy >= 0 && close_fd(copy) < 0))
		die("close");
	printf("closed\n");
	if (write(sv[0], "c", 1) != 1)
		die("write to the receiver");
	int st;
	if (waitpid(child, &st, 0) < 0)
		die("waitpid");
	return WIFEXITED(st) ? WEXITSTATUS(st) : 1;
}
