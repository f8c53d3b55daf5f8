/* closepolicy — the write family: send, sendto, sendmsg, sendmmsg, write, writev, sendfile,
 * splice. A call that succeeds costs a table look-up (and, for descriptors the table does not
 * know, a thread-local mark): no syscall is added. A call failing with EPIPE logs `epipe`, with
 * ECONNRESET `econnreset`, on every descriptor, socket or pipe; the SIGPIPE the kernel would send
 * reaches the program as without the shim (sigpipe: log), or not at all (sigpipe: ignore).
 *
 * Two paths:
 *  - the socket path: send, sendto and sendmsg (they only work on sockets), and write and writev
 *    on a descriptor the table knows as a TCP socket (where write is send without flags): the real
 *    call with MSG_NOSIGNAL; on EPIPE the shim logs, then sends the SIGPIPE itself (sigpipe.h).
 *  - the marked path: every other descriptor (pipes, files, sockets the shim did not see made),
 *    and sendmmsg, sendfile, splice: the real call as the program made it, marked in cp_cur_call.
 *    The kernel runs the shim's SIGPIPE handler before the call returns; the mark lets it name
 *    the descriptor and the call. (sendmmsg is marked because a partial success hides the error
 *    in its count: with MSG_NOSIGNAL, the SIGPIPE of the failed message would be lost.) */
#ifndef CLOSEPOLICY_WRITES_H
#define CLOSEPOLICY_WRITES_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "shim/events.h"

ssize_t cp_send(int fd, const void *buf, size_t n, int flags);
ssize_t cp_sendto(int fd, const void *buf, size_t n, int flags, const struct sockaddr *to,
		  socklen_t tolen);
ssize_t cp_sendmsg(int fd, const struct msghdr *msg, int flags);
int cp_sendmmsg(int fd, struct mmsghdr *vec, unsigned int vlen, int flags);
ssize_t cp_write(int fd, const void *buf, size_t n);
ssize_t cp_writev(int fd, const struct iovec *iov, int iovcnt);
ssize_t cp_sendfile(int out, int in, off_t *offset, size_t count);
ssize_t cp_sendfile64(int out, int in, off64_t *offset, size_t count);
ssize_t cp_splice(int in, loff_t *off_in, int out, loff_t *off_out, size_t len, unsigned flags);

/* The facts of a write-type call on fd for the log (fd < 0: none). True when fd is a socket or
 * a pipe, where EPIPE comes with SIGPIPE. Async-signal-safe (the table, fstat, getpeername). */
bool cp_writes_describe(int fd, const char *call, uint64_t bytes, struct cp_write_facts *w);

#endif
