/* closepolicy — following the program's sockets from birth: which descriptors are TCP, which are
 * connected or accepted (and so fall under the policy), their copies, their epoll registrations,
 * and what the program did to them itself (shutdown, SO_LINGER). Each function runs after the
 * real call, preserves errno, and costs a table look-up for descriptors the shim does not follow. */
#ifndef CLOSEPOLICY_TRACK_H
#define CLOSEPOLICY_TRACK_H

#include <sys/socket.h>

#include "shim/sock.h"

void cp_track_socket(int fd, int domain, int type, int protocol);
void cp_track_connect(int fd, const struct sockaddr *addr, socklen_t len, int ret, int err);
/* peer: the address accept() returned (NULL when it returned none whole). */
void cp_track_accept(int listen_fd, int fd, const struct sockaddr *peer, socklen_t peer_len);
/* At start, a socket inherited across exec and announced (inherit.h): s has its cookie and
 * fd's entry; match it against this image's policy as a connection of that role. */
void cp_track_adopt(int fd, struct cp_sock *s, enum cp_role role);
/* newfd now refers to oldfd's open file (dup, dup2, dup3, F_DUPFD). */
void cp_track_dup(int oldfd, int newfd);
/* dup2/dup3 onto newfd: do the policy's close of what newfd holds, if anything. Returns -1 with
 * errno EBADF when oldfd is not open (then nothing was done, as dup2 would close nothing). */
int cp_track_before_dup2(int oldfd, int newfd);
void cp_track_shutdown(int fd, int how);
void cp_track_epoll_ctl(int epfd, int op, int fd);
void cp_track_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
/* sendmsg/sendmmsg sent msg: the sockets it carried in SCM_RIGHTS are given away (sock.h). */
void cp_track_rights_sent(const struct msghdr *msg);
/* recvmsg/recvmmsg received msg: a TCP socket it carried in SCM_RIGHTS is noted with its
 * addresses, for the log (its peer is gone by the time a write fails), and is never acted on. */
void cp_track_rights_received(const struct msghdr *msg);
/* true when fd is one of the shim's own descriptors (the program's calls on it get EBADF) */
_Bool cp_track_is_shim_fd(int fd);

#endif
