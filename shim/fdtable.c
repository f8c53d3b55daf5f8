/* closepolicy — the descriptor table (see fdtable.h). */
#include "shim/fdtable.h"

#include <stdatomic.h>
#include <stdint.h>
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

/* Where entries have ever been, set before an entry is stored and never cleared, so that a walk
 * (every fork, exec, exit and close_range) reads only those, not the whole table (the top array
 * alone is 128 pages, and the shim's own descriptors sit far above the program's): in the first
 * chunk, a bit per descriptor; above it, a bit per group of 64 numbers, and the highest chunk.
 * (Walking each group of 64 of the first chunk cost a forked child that exits with five
 * descriptors 2,000 instructions, and its parent's fork pass as much: a fork-per-connection
 * server's every request.) */
#define USED_WORDS (CHUNK_SIZE / 64)
#define GROUP_BITS 6
#define GROUP_SIZE (1u << GROUP_BITS)
typedef uint16_t groups_t; /* CHUNK_SIZE / GROUP_SIZE bits */
static _Atomic groups_t groups[TOP_SIZE]; /* [0] unused: the first chunk has low_used */
/* what every process reads at exit, on the page it writes at start (hot.h) */
static _Atomic uint64_t low_used[USED_WORDS] CP_HOT_DATA(00);
static atomic_uint hi_chunk CP_HOT_DATA(00);
static atomic_bool held_socket CP_HOT_DATA(00);

static void note_use(unsigned fd, bool socket)
{
	unsigned hi = fd >> CHUNK_BITS;
	if (socket && !atomic_load_explicit(&held_socket, memory_order_relaxed))
		atomic_store(&held_socket, true);
	if (hi == 0) {
		_Atomic uint64_t *w = &low_used[fd >> 6];
		uint64_t bit = 1ull << (fd & 63);
		if (!(atomic_load_explicit(w, memory_order_relaxed) & bit))
			atomic_fetch_or(w, bit);
		return;
	}
	groups_t bit = (groups_t)(1u << ((fd & (CHUNK_SIZE - 1)) >> GROUP_BITS));
	if (!(atomic_load_explicit(&groups[hi], memory_order_relaxed) & bit))
		atomic_fetch_or(&groups[hi], bit);
	unsigned seen = atomic_load_explicit(&hi_chunk, memory_order_relaxed);
	while (hi > seen && !atomic_compare_exchange_weak(&hi_chunk, &seen, hi))
		;
}

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

/* Changes of the table, counted. A fork's pass records the count it saw (refs.c); a child reads
 * both without a fault (inherited pages it only reads). On the page the table's first entries
 * are on, which a change writes anyway, on a cache line of its own. */
static _Alignas(64) atomic_uint generation CP_HOT_DATA(00);

static void changed(void)
{
	atomic_fetch_add_explicit(&generation, 1, memory_order_relaxed);
}

void cp_fd_note_change(void)
{
	changed();
}

CP_CHILD unsigned cp_fd_generation(void)
{
	return atomic_load_explicit(&generation, memory_order_relaxed);
}

CP_CHILD struct cp_sock *cp_fd_take(int fd)
{
	entry_t *e = slot(fd, false);
	struct cp_sock *s = e ? atomic_exchange(e, NULL) : NULL;
	if (s != NULL)
		changed();
	return s;
}

CP_CHILD int cp_fd_put(int fd, struct cp_sock *s, struct cp_sock **old)
{
	entry_t *e = slot(fd, s != NULL);
	*old = NULL;
	if (e == NULL)
		return s == NULL ? 0 : -1;
	if (s != NULL)
		note_use((unsigned)fd, s != CP_SOCK_SHIM);
	*old = atomic_exchange(e, s);
	if (s != NULL || *old != NULL)
		changed();
	return 0;
}

/* Where the walk stands at fd: before the range (skip), past it (stop), or in it. */
enum step { SKIP, STOP, VISIT };

CP_CHILD static enum step step_at(unsigned fd, unsigned first, unsigned last)
{
	return fd < first ? SKIP : fd > last ? STOP : VISIT;
}

/* Every non-empty entry with first <= fd <= last, in increasing order, until visit says stop
 * (then true). */
CP_CHILD static bool walk(unsigned first, unsigned last, bool (*visit)(int fd, struct cp_sock *s, void *arg),
			  void *arg)
{
	if (last >= TOP_SIZE * CHUNK_SIZE)
		last = TOP_SIZE * CHUNK_SIZE - 1;
	if (first < CHUNK_SIZE) { /* the first chunk: the entries ever stored */
		for (unsigned w = first >> 6; w < USED_WORDS && w <= last >> 6; w++)
			for (uint64_t bits = atomic_load(&low_used[w]); bits != 0; bits &= bits - 1) {
				unsigned fd = w << 6 | (unsigned)__builtin_ctzll(bits);
				enum step at = step_at(fd, first, last);
				if (at == STOP)
					return false;
				struct cp_sock *s = atomic_load_explicit(&low[fd], memory_order_acquire);
				if (at == VISIT && s != NULL && visit((int)fd, s, arg))
					return true;
			}
		first = CHUNK_SIZE;
	}
	unsigned hi = atomic_load(&hi_chunk);
	for (unsigned c = first >> CHUNK_BITS; c <= hi && c <= last >> CHUNK_BITS; c++) {
		groups_t mask = atomic_load_explicit(&groups[c], memory_order_acquire);
		entry_t *chunk = atomic_load_explicit(&top[c], memory_order_acquire);
		if (mask == 0 || chunk == NULL)
			continue;
		for (unsigned i = 0; i < CHUNK_SIZE; i++) {
			if (!(mask & (1u << (i >> GROUP_BITS)))) {
				i |= GROUP_SIZE - 1;
				continue;
			}
			enum step at = step_at(c << CHUNK_BITS | i, first, last);
			if (at == STOP)
				return false;
			struct cp_sock *s = atomic_load_explicit(&chunk[i], memory_order_acquire);
			if (at == VISIT && s != NULL && visit((int)(c << CHUNK_BITS | i), s, arg))
				return true;
		}
	}
	return false;
}

struct each {
	void (*fn)(int fd, struct cp_sock *s, void *arg);
	void *arg;
};

CP_CHILD static bool call_each(int fd, struct cp_sock *s, void *arg)
{
	struct each *e = arg;
	e->fn(fd, s, e->arg);
	return false;
}

CP_CHILD void cp_fd_foreach(unsigned first, unsigned last,
			    void (*fn)(int fd, struct cp_sock *s, void *arg), void *arg)
{
	struct each e = { fn, arg };
	(void)walk(first, last, call_each, &e);
}

struct test {
	bool (*pred)(const struct cp_sock *s);
};

CP_CHILD static bool holds(int fd, struct cp_sock *s, void *arg)
{
	(void)fd;
	return s != CP_SOCK_SHIM && ((struct test *)arg)->pred(s);
}

CP_CHILD bool cp_fd_any(bool (*pred)(const struct cp_sock *s))
{
	struct test t = { pred };
	return walk(0, ~0U, holds, &t);
}

CP_CHILD bool cp_fd_ever_held_socket(void)
{
	return atomic_load(&held_socket);
}
