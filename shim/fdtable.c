/* closepolicy — the descriptor table (see fdtable.h). */
#include "shim/fdtable.h"

#include <stdatomic.h>
#include <stdlib.h>

#include "shim/hot.h"

/* 2^16 chunks of 2^10 entries cover 2^26 descriptors (far above fs.nr_open's default of 2^20).
 * The top array is 512 KiB of zeroed .bss: untouched pages cost no memory. */
#define CHUNK_BITS 10
#define CHUNK_SIZE (1u << CHUNK_BITS)
#define TOP_SIZE (1u << 16)

typedef _Atomic(struct cp_sock *) entry_t;
static _Atomic(entry_t *) top[TOP_SIZE];
/* The first chunk, where nearly every program's descriptors are, is static: a look-up there
 * touches one page, not the top array's and a heap chunk's (see hot.h for why pages count). */
static entry_t low[CHUNK_SIZE] CP_HOT_DATA(1);

static inline entry_t *slot(int fd, bool create)
{
	if (fd < 0 || (unsigned)fd >= TOP_SIZE * CHUNK_SIZE)
		return NULL;
	unsigned hi = (unsigned)fd >> CHUNK_BITS, lo = (unsigned)fd & (CHUNK_SIZE - 1);
	if (hi == 0)
		return &low[lo];
	entry_t *chunk = atomic_load_explicit(&top[hi], memory_order_acquire);
	if (chunk == NULL) {
		if (!create)
			return NULL;
		entry_t *fresh = calloc(CHUNK_SIZE, sizeof *fresh);
		if (fresh == NULL)
			return NULL;
		if (atomic_compare_exchange_strong(&top[hi], &chunk, fresh))
			chunk = fresh;
		else
			free(fresh); /* another thread won; chunk now holds its pointer */
	}
	return &chunk[lo];
}

CP_HOT struct cp_sock *cp_fd_get(int fd)
{
	entry_t *e = slot(fd, false);
	return e ? atomic_load_explicit(e, memory_order_acquire) : NULL;
}

struct cp_sock *cp_fd_take(int fd)
{
	entry_t *e = slot(fd, false);
	return e ? atomic_exchange(e, NULL) : NULL;
}

int cp_fd_put(int fd, struct cp_sock *s, struct cp_sock **old)
{
	entry_t *e = slot(fd, s != NULL);
	*old = NULL;
	if (e == NULL)
		return s == NULL ? 0 : -1;
	*old = atomic_exchange(e, s);
	return 0;
}

void cp_fd_foreach(unsigned first, unsigned last, void (*fn)(int fd, struct cp_sock *s, void *arg),
		   void *arg)
{
	if (last >= TOP_SIZE * CHUNK_SIZE)
		last = TOP_SIZE * CHUNK_SIZE - 1;
	for (unsigned fd = first; fd <= last;) {
		entry_t *chunk = fd < CHUNK_SIZE ? low : atomic_load_explicit(&top[fd >> CHUNK_BITS], memory_order_acquire);
		if (chunk == NULL) {
			unsigned next = ((fd >> CHUNK_BITS) + 1) << CHUNK_BITS;
			if (next == 0 || next > last)
				break;
			fd = next;
			continue;
		}
		struct cp_sock *s = atomic_load_explicit(&chunk[fd & (CHUNK_SIZE - 1)], memory_order_acquire);
		if (s != NULL)
			fn((int)fd, s, arg);
		if (fd == last)
			break;
		fd++;
	}
}
