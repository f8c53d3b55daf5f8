/* closepolicy — the write family (see writes.h). */
#include "shim/writes.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>

#include "shim/fdtable.h"
#include "shim/hot.h"
#include "shim/real.h"
#include "shim/sigdisp.h"
#include "shim/sigpipe.h"
#include "shim/sockinfo.h"
#include "shim/track.h"
#include "shim/errsave.h"

static const char *const HELD_BACK = "no SIGPIPE delivered (sigpipe: ignore)";

static int ebadf(void)
{
	errno = EBADF;
	return -1;
}

/* A socket the table follows as TCP: write() there is send() without flags. */
static bool tcp(const struct cp_sock *s)
{
	return s != NULL && s != CP_SOCK_SHIM && (s->kind == CP_KIND_TCP || s->kind == CP_KIND_TCP_CONN);
}

static uint64_t iov_bytes(const struct iovec *iov, size_t n)
{
	uint64_t sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += iov[i].iov_len;
	return sum;
}

bool cp_writes_describe(int fd, const char *call, uint64_t bytes, struct cp_write_facts *w)
{
	memset(w, 0, sizeof *w);
	w->fd = fd;
	w->call = call;
	w->bytes = bytes;
	if (fd < 0)
		return false;
	struct cp_sock *s = cp_fd_get(fd);
	if (s != NULL && s != CP_SOCK_SHIM) {
		w->sock = s;
		if (!s->facts_known) {
			cp_info_facts(fd, &w->addr);
			if (w->addr.peer.family == 0) { /* reset: noted at connect() or accept() */
				w->addr.peer = s->facts.peer;
				w->addr.peer_port = s->facts.peer_port;
			}
		}
		return true;
	}
	struct stat st;
	if (fstat(fd, &st) < 0)
		return false;
	if (S_ISSOCK(st.st_mode)) {
		cp_info_facts(fd, &w->addr);
		return true;
	}
	return S_ISFIFO(st.st_mode);
}

/* ---- the socket path: MSG_NOSIGNAL, then the shim's own SIGPIPE ---- */

/* The call failed (errno). nosignal: the program passed MSG_NOSIGNAL itself. */
static __attribute__((noinline, cold)) ssize_t socket_failed(int fd, const char *call, uint64_t bytes, bool nosignal)
{
	int err = errno;
	if (err != EPIPE && err != ECONNRESET)
		return -1;
	struct cp_write_facts w;
	cp_writes_describe(fd, call, bytes, &w);
	bool owed = err == EPIPE && !nosignal; /* the kernel would have sent SIGPIPE */
	bool ignore = cp_sigpipe_mode() == CP_SIGPIPE_IGNORE;
	cp_event_epipe(&w, err, owed && ignore ? HELD_BACK : NULL);
	if (owed && !ignore) {
		enum cp_disp d = cp_sigdisp_now();
		cp_event_sigpipe(&w, cp_disp_name(d), NULL, 0);
		if (d != CP_DISP_IGNORE)
			cp_sigpipe_deliver();
	}
	errno = err; /* whatever the program's handler did to it, as the kernel's SIGPIPE would */
	return -1;
}

CP_HOT ssize_t cp_send(int fd, const void *buf, size_t n, int flags)
{
	if (cp_fd_get(fd) == CP_SOCK_SHIM)
		return ebadf();
	ssize_t r = cp_real_send(fd, buf, n, flags | MSG_NOSIGNAL);
	return r >= 0 ? r : socket_failed(fd, "send", n, flags & MSG_NOSIGNAL);
}

CP_HOT ssize_t cp_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		  socklen_t tolen)
{
	if (cp_fd_get(fd) == CP_SOCK_SHIM)
		return ebadf();
	ssize_t r = cp_real_sendto(fd, buf, n, flags | MSG_NOSIGNAL, to, tolen);
	return r >= 0 ? r : socket_failed(fd, "sendto", n, flags & MSG_NOSIGNAL);
}

CP_HOT ssize_t cp_sendmsg(int fd, const struct msghdr *msg, int flags)
{
	if (cp_fd_get(fd) == CP_SOCK_SHIM)
		return ebadf();
	ssize_t r = cp_real_sendmsg(fd, msg, flags | MSG_NOSIGNAL);
	if (r >= 0) {
		if (__builtin_expect(msg->msg_controllen != 0, 0))
			cp_track_rights_sent(msg);
		return r;
	}
	/* EPIPE and ECONNRESET come after the kernel has read msg: it is readable */
	bool logged = errno == EPIPE || errno == ECONNRESET;
	return socket_failed(fd, "sendmsg", logged ? iov_bytes(msg->msg_iov, msg->msg_iovlen) : 0,
			     flags & MSG_NOSIGNAL);
}

/* ---- the marked path: the real call, and the SIGPIPE handler names it ---- */

/* Around the real call: cp_cur_call points at the call (the outer one is kept for a signal
 * handler of the program that makes wrapped calls of its own). */
#define MARKED(call, expr)                                  \
	do {                                                \
		struct cp_call *outer_ = cp_cur_call;       \
		cp_cur_call = &(call);                      \
		expr;                                       \
		cp_cur_call = outer_;                       \
	} while (0)

/* The marked call failed (errno). nosignal: the program passed MSG_NOSIGNAL itself. */
static __attribute__((noinline, cold)) ssize_t marked_failed(const struct cp_call *done, bool nosignal)
{
	int err = errno;
	if (err != EPIPE && err != ECONNRESET)
		return -1;
	struct cp_write_facts w;
	bool signals = cp_writes_describe(done->fd, done->name, cp_call_bytes(done), &w);
	bool owed = signals && err == EPIPE && !nosignal;
	bool ignore = cp_sigpipe_mode() == CP_SIGPIPE_IGNORE;
	cp_event_epipe(&w, err, owed && ignore ? HELD_BACK : NULL);
	if (owed && !(done->seen & (CP_CALL_LOGGED | CP_CALL_DROPPED))) {
		/* The kernel's SIGPIPE did not reach the handler during the call: the program ignores
		 * SIGPIPE (so the kernel does too), or this thread blocks it and it is pending now —
		 * then the handler logs it when the thread unblocks it, or, with sigpipe: ignore, the
		 * shim takes it back. */
		enum cp_disp d = cp_sigdisp_now();
		if (d == CP_DISP_IGNORE && !ignore)
			cp_event_sigpipe(&w, cp_disp_name(d), NULL, 0);
		else if (d != CP_DISP_IGNORE && ignore)
			cp_sigpipe_take_back();
	}
	errno = err;
	return -1;
}

/* The common case, kept apart from the rest: a descriptor the table does not follow. */
CP_HOT static inline ssize_t write_marked(int fd, const void *buf, size_t n)
{
	struct cp_call c = { .name = "write", .fd = fd, .bytes = n };
	ssize_t r;
	MARKED(c, r = cp_real_write(fd, buf, n));
	return r >= 0 ? r : marked_failed(&c, false);
}

CP_CHILD static __attribute__((noinline)) ssize_t write_followed(int fd, struct cp_sock *s,
								  const void *buf, size_t n)
{
	if (s == CP_SOCK_SHIM)
		return ebadf();
	/* A program that ignores SIGPIPE gets none from the kernel either: its write() stays a
	 * write (the marked path logs an EPIPE the same), and a forking server's child runs no code
	 * of the C library's that it would not run without the shim (send's is a page fault more). */
	if (tcp(s) && cp_sigdisp_now() != CP_DISP_IGNORE) {
		int saved = errno;
		ssize_t r = cp_real_send(fd, buf, n, MSG_NOSIGNAL);
		if (r >= 0)
			return r;
		if (errno != ENOTSOCK)
			return socket_failed(fd, "write", n, false);
		cp_errno_restore(saved); /* a stale entry: the number is no socket any more */
	}
	return write_marked(fd, buf, n);
}

CP_HOT ssize_t cp_write(int fd, const void *buf, size_t n)
{
	struct cp_sock *s = cp_fd_get(fd);
	if (__builtin_expect(s != NULL, 0))
		return write_followed(fd, s, buf, n);
	return write_marked(fd, buf, n);
}

CP_HOT ssize_t cp_writev(int fd, const struct iovec *iov, int iovcnt)
{
	struct cp_sock *s = cp_fd_get(fd);
	if (s != NULL) {
		if (s == CP_SOCK_SHIM)
			return ebadf();
		/* a count writev refuses (EINVAL, where sendmsg says EMSGSIZE) goes to writev itself */
		if (tcp(s) && iovcnt > 0 && iovcnt <= IOV_MAX) {
			int saved = errno;
			struct msghdr m = { .msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt };
			ssize_t r = cp_real_sendmsg(fd, &m, MSG_NOSIGNAL);
			if (r >= 0)
				return r;
			int err = errno;
			if (err == EPIPE || err == ECONNRESET) {
				uint64_t bytes = iov_bytes(iov, (size_t)iovcnt); /* read by the kernel */
				if (bytes == 0) { /* writev of nothing returns 0 before the socket is asked */
					cp_errno_restore(saved);
					return 0;
				}
				return socket_failed(fd, "writev", bytes, false);
			}
			if (err != ENOTSOCK)
				return -1;
			cp_errno_restore(saved);
		}
	}
	struct cp_call c = { .name = "writev", .fd = fd, .iov = iov, .iovcnt = iovcnt };
	ssize_t r;
	MARKED(c, r = cp_real_writev(fd, iov, iovcnt));
	return r >= 0 ? r : marked_failed(&c, false);
}

int cp_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags)
{
	if (cp_fd_get(fd) == CP_SOCK_SHIM)
		return ebadf();
	struct cp_call c = { .name = "sendmmsg", .fd = fd,
			     .msg = vlen > 0 && vec != NULL ? &vec[0].msg_hdr : NULL };
	int r;
	MARKED(c, r = cp_real_sendmmsg(fd, vec, vlen, flags));
	for (int i = 0; i < r; i++) /* the messages sent */
		if (vec[i].msg_hdr.msg_controllen != 0)
			cp_track_rights_sent(&vec[i].msg_hdr);
	return r >= 0 ? r : (int)marked_failed(&c, flags & MSG_NOSIGNAL);
}

ssize_t cp_sendfile(int out, int in, off_t *offset, size_t count)
{
	if (cp_fd_get(out) == CP_SOCK_SHIM)
		return ebadf();
	struct cp_call c = { .name = "sendfile", .fd = out, .bytes = count };
	ssize_t r;
	MARKED(c, r = cp_real_sendfile(out, in, offset, count));
	return r >= 0 ? r : marked_failed(&c, false);
}

CP_CHILD ssize_t cp_sendfile64(int out, int in, off64_t *offset, size_t count)
{
	if (cp_fd_get(out) == CP_SOCK_SHIM)
		return ebadf();
	struct cp_call c = { .name = "sendfile", .fd = out, .bytes = count };
	ssize_t r;
	MARKED(c, r = cp_real_sendfile64(out, in, offset, count));
	return r >= 0 ? r : marked_failed(&c, false);
}

/* splice writes to `out`: a pipe, or a socket or file when `in` is the pipe. */
ssize_t cp_splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len, unsigned flags)
{
	if (cp_fd_get(out) == CP_SOCK_SHIM)
		return ebadf();
	struct cp_call c = { .name = "splice", .fd = out, .bytes = len };
	ssize_t r;
	MARKED(c, r = cp_real_splice(in, off_in, out, off_out, len, flags));
	return r >= 0 ? r : marked_failed(&c, false);
}
