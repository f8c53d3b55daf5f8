/* closepolicy — the descriptor table: descriptor number -> struct cp_sock *.
 * One atomic pointer per descriptor, in chunks allocated on first use, so memory follows the
 * numbers in use, not RLIMIT_NOFILE. Reads are a plain atomic load (the hot path of every
 * wrapper); an entry is cleared with an atomic exchange before the real close() releases the
 * number, so a new descriptor with the same number, made by another thread, never inherits it. */
#ifndef CLOSEPOLICY_FDTABLE_H
#define CLOSEPOLICY_FDTABLE_H

#include <stdbool.h>

#include "shim/sock.h"

/* The entry for fd (NULL when untracked; CP_SOCK_SHIM for the shim's own). */
struct cp_sock *cp_fd_get(int fd);
/* Clear the entry and return what it held. */
struct cp_sock *cp_fd_take(int fd);
/* Store s (may allocate a chunk; returns -1 when it cannot) and return the old entry in *old. */
int cp_fd_put(int fd, struct cp_sock *s, struct cp_sock **old);

/* A number that changes with every change of the table (a store or a clear). */
unsigned cp_fd_generation(void);
/* Something a fork's list of given sockets cannot show changed (a socket given away over
 * SCM_RIGHTS, whose count must stay): the list is not used at exit. */
void cp_fd_note_change(void);

/* A socket of the program's was ever in the table (the shim's own descriptors aside). */
bool cp_fd_ever_held_socket(void);

/* Whether pred holds for a socket of the program's in the table (stops at the first). */
bool cp_fd_any(bool (*pred)(const struct cp_sock *s));

/* Call fn for every non-empty entry with first <= fd <= last, in increasing order. */
void cp_fd_foreach(unsigned first, unsigned last, void (*fn)(int fd, struct cp_sock *s, void *arg),
		   void *arg);

#endif
