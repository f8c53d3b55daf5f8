/* closepolicy — what happens when the program lets go of a descriptor: close(), close_range(),
 * closefrom(), and dup2/dup3 onto an open number. The policy's decision and its execution for
 * one socket are in close_socket() in close.c: the one place to read "what does close() do". */
#ifndef CLOSEPOLICY_CLOSE_H
#define CLOSEPOLICY_CLOSE_H

#include "shim/sock.h"

int cp_close(int fd);
int cp_close_range(unsigned int first, unsigned int last, int flags);
void cp_closefrom(int lowfd);
/* The caller releases the number fd itself right after (dup2/dup3 onto fd, close_range's
 * stretches): do the policy's work for the socket fd holds, if any, except the real close.
 * errno is preserved. */
void cp_close_implicit(int fd);

/* At process exit: the socket's on_exit, for the exit path (exitpath.c). */
struct cp_exit_set;
void cp_close_at_exit(int fd, struct cp_exit_set *set);

#endif
