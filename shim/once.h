/* closepolicy — a function run once per process image, as pthread_once runs it, minus two costs
 * every process paid at start: pthread_once wakes waiters with a futex system call each time,
 * and it reads its control word before writing it (two page faults, the word being in .bss). */
#ifndef CLOSEPOLICY_ONCE_H
#define CLOSEPOLICY_ONCE_H

#include <stdatomic.h>

#define CP_ONCE_DONE 2

/* The slow path: run fn, or wait for the thread running it (a futex wait, woken only when
 * someone waits). Like pthread_once, fn must not reach the same once again. */
void cp_once_run(atomic_int *state, void (*fn)(void));

static inline void cp_once(atomic_int *state, void (*fn)(void))
{
	if (atomic_load_explicit(state, memory_order_acquire) != CP_ONCE_DONE)
		cp_once_run(state, fn);
}

#endif
