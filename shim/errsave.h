/* closepolicy — errno, reached without calling the C library, and put back as the program left
 * it, written only when it changed.
 *
 * errno is on a page of the thread's that every fork write-protects: a forking server's parent
 * whose accept and close wrote it back unchanged copied that page after every fork.
 *
 * errno is glibc's thread variable, reached through __errno_location(): a function in a block of
 * the C library's code a forked child of a server never runs itself, so calling it was a page
 * fault in every child (a fork copies no mapping of a file's code). Its address is the thread's
 * for the thread's life, so it is asked once per thread and kept in a thread variable of the
 * shim's (initial-exec: at a fixed offset from the thread pointer, read without a call). A thread
 * starts with it NULL (the static TLS block is cleared for every new thread, a reused stack's
 * too); a forked child's only thread is the forking thread, at the same addresses, so what it
 * kept is still right; a signal handler that asks first stores the same address the code it
 * interrupted would. Every errno of a file that includes this header goes through it. */
#ifndef CLOSEPOLICY_ERRSAVE_H
#define CLOSEPOLICY_ERRSAVE_H

#include <errno.h>

/* The thread's errno (as __errno_location(); const: it is the same for the thread's life, so
 * the compiler asks once per function). Not inline: one call in the shim's own code, no bigger
 * than the call it replaces, where an inline thread-variable load and its first-use branch at
 * every errno of the shim grew the code a forked child runs past its one block (Makefile). */
int *cp_errno_loc(void) __attribute__((const, visibility("hidden")));

#undef errno
#define errno (*cp_errno_loc())

static inline void cp_errno_restore(int saved)
{
	if (errno != saved)
		errno = saved;
}

#endif
