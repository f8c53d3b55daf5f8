/* closepolicy — the per-process page (see perproc.h). */
#include "shim/perproc.h"
#include "shim/hot.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

/* In .bss past the file's last page: an anonymous mapping, which MADV_WIPEONFORK requires; and
 * last there (the link sorts .bss sections by name), so the mark splits that mapping in two,
 * not three: each mapping is copied by every fork. */
struct cp_perproc cp_perproc __attribute__((aligned(CP_PERPROC_SIZE), section(".bss.~perproc")));

/* Set once, in the first process that forks; inherited with the mark, never written again. */
static atomic_int armed; /* 0 not yet, 1 marked, -1 the kernel refused (before Linux 4.14) */

void cp_perproc_arm(void)
{
	if (atomic_load_explicit(&armed, memory_order_relaxed) != 0)
		return;
	int r = madvise(&cp_perproc, sizeof cp_perproc, MADV_WIPEONFORK) == 0 ? 1 : -1;
	atomic_store(&armed, r);
}

CP_CHILD void cp_perproc_child(void)
{
	if (atomic_load_explicit(&armed, memory_order_relaxed) != 1)
		memset(&cp_perproc, 0, sizeof cp_perproc);
}

int cp_perproc_pid(void)
{
	int pid = atomic_load_explicit(&cp_perproc.pid, memory_order_relaxed);
	if (pid == 0) {
		pid = (int)getpid();
		atomic_store_explicit(&cp_perproc.pid, pid, memory_order_relaxed);
	}
	return pid;
}
