/* closepolicy — the drain without a thread: its rounds, run from the program's calls (see
 * drainnow.h). */
#include "shim/drainnow.h"

#include <errno.h>

#include "shim/drainer.h"
#include "shim/errsave.h"
#include "shim/hot.h"

_Atomic uint64_t cp_drain_due_ns CP_HOT_DATA(00);
#define DUE cp_drain_due_ns

CP_PARENT_ONLY void cp_drain_waiting(uint64_t at_ns)
{
	/* (a round racing with this, from a signal handler, stores its own time: a tick at most) */
	uint64_t due = atomic_load_explicit(&DUE, memory_order_relaxed);
	if (due == 0 || due > at_ns)
		atomic_store_explicit(&DUE, at_ns, memory_order_relaxed);
}

CP_PARENT_ONLY static void round_here(unsigned how)
{
	int saved = errno;
	/* cleared first: a socket handed over meanwhile sets it again, or is taken by this round */
	atomic_store_explicit(&DUE, 0, memory_order_relaxed);
	struct pollfd none;
	unsigned n;
	uint64_t next = cp_drain_round_here(how, &none, 0, &n);
	if (next != UINT64_MAX)
		atomic_store_explicit(&DUE, next == 0 ? 1 : next, memory_order_relaxed);
	cp_errno_restore(saved);
}

CP_PARENT_ONLY void cp_drain_service_now(void)
{
	uint64_t due = atomic_load_explicit(&DUE, memory_order_relaxed);
	if (due != 0 && cp_now_ns() >= due)
		round_here(0);
}

CP_PARENT_ONLY void cp_drain_before_fork(void)
{
	if (atomic_load_explicit(&cp_perproc.forked, memory_order_relaxed) == 0)
		atomic_store_explicit(&cp_perproc.forked, 1, memory_order_relaxed);
	if (atomic_load_explicit(&DUE, memory_order_relaxed) != 0)
		round_here(CP_ROUND_FIRST_NOW);
}
