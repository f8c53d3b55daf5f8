/* closepolicy — syscall(): the numbers the shim follows (close, close_range, the dup family and
 * fcntl's duplicating commands, shutdown, socket, accept, accept4, connect, setsockopt,
 * epoll_ctl, the send family, recvmsg/recvmmsg, write, writev, exit and exit_group) take the
 * same path as the C library's function of the same name; every other number passes through. */
#ifndef CLOSEPOLICY_RAWSYS_H
#define CLOSEPOLICY_RAWSYS_H

/* a: the six argument words the program passed (read as the C library's syscall() reads them) */
long cp_syscall(long number, const long a[6]);

#endif
