/* closepolicy — the graceful close's drain without a thread, in a process that forks.
 *
 * A second thread never goes away for the C library: from the first pthread_create on, every
 * fork takes its multi-threaded path (the other thread's stack, the allocator's and stdio's
 * locks, ...), some ten page faults more in each child of a forking server. So a process that
 * has one thread and has forked hands its closed sockets to no thread: they wait on the
 * drainer's lists (drainer.c), and the calls a forking server makes anyway (accept, close of a
 * socket, fork, socket, connect) run the drainer's rounds, a tick apart, until they end; exit
 * finishes what is left. Every byte and the FIN are sent at the close either way: only the
 * reading of the peer's late bytes, and the copy's close, wait for the program's next call. */
#ifndef CLOSEPOLICY_DRAINNOW_H
#define CLOSEPOLICY_DRAINNOW_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "shim/perproc.h"

/* Code only a process that forks runs, never its child: kept out of the 64 KiB block of the code
 * a child runs (the link sorts these sections after every object's .text; see the Makefile). */
#define CP_PARENT_ONLY __attribute__((noinline, section(".text.~parent")))

/* A graceful close in this process drains without a thread (one thread, and it has forked). */
static inline bool cp_drain_here_wanted(void)
{
	return cp_single_threaded() && atomic_load_explicit(&cp_perproc.forked, memory_order_relaxed) != 0;
}

/* A socket was handed over without a thread: the next round is due by at_ns. */
void cp_drain_waiting(uint64_t at_ns);

void cp_drain_service_now(void);

/* 0: nothing waits; else the next round's time. On the page of the descriptor table's first
 * entries (hot.h), not the per-process page: a forked child's first touch of that page would be
 * this load (the zero page mapped, then a second fault at its first write there). A child
 * inherits it set when its parent had sockets waiting; cp_drain_atfork_child clears it. */
extern _Atomic uint64_t cp_drain_due_ns;

/* In the wrappers a forking server calls anyway: one load of a word on a page those calls read
 * anyway when nothing waits. Preserves errno. */
static inline void cp_drain_service(void)
{
	if (__builtin_expect(atomic_load_explicit(&cp_drain_due_ns, memory_order_relaxed) != 0, 0))
		cp_drain_service_now();
}

/* The fork wrapper, before the fork: this process has forked from now on; the sockets waiting
 * are read first (their first read now, however young), so that a child seldom inherits one. */
void cp_drain_before_fork(void);

#endif
