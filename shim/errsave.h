/* closepolicy — errno put back as the program left it, written only when it changed.
 * errno is on a page of the thread's that every fork write-protects: a forking server's parent
 * whose accept and close wrote it back unchanged copied that page after every fork. */
#ifndef CLOSEPOLICY_ERRSAVE_H
#define CLOSEPOLICY_ERRSAVE_H

#include <errno.h>

static inline void cp_errno_restore(int saved)
{
	if (errno != saved)
		errno = saved;
}

#endif
