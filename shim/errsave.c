/* closepolicy — the thread's errno address, kept (see errsave.h). */
#include "shim/errsave.h"

__thread int *cp_errno_at __attribute__((tls_model("initial-exec"), visibility("hidden")));

int *cp_errno_ask(void)
{
	return cp_errno_at = __errno_location();
}
