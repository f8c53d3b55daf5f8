/* closepolicy — the thread's errno address, kept (see errsave.h). */
#include "shim/errsave.h"

#include <stddef.h>

#include "shim/hot.h"

static __thread int *errno_at __attribute__((tls_model("initial-exec")));

CP_HOT int *cp_errno_loc(void)
{
	int *at = errno_at;
	if (__builtin_expect(at == NULL, 0))
		errno_at = at = __errno_location();
	return at;
}
