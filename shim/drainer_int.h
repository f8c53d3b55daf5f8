/* closepolicy — the drainer's own state, shared by its two files and nobody else: drainer.c (the
 * hand-over, the rounds, the thread) and drainend.c (exit, exec, a death by signal, fork).
 * The lists and the batch are guarded by cp_dr_active_lock (see drainer.c). */
#ifndef CLOSEPOLICY_DRAINER_INT_H
#define CLOSEPOLICY_DRAINER_INT_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "shim/log.h"
#include "shim/sock.h"

#define BUSY_TICK_MS 10 /* with work done lately, new sockets are looked for this often */

extern _Atomic(struct cp_sock *) cp_dr_pending; /* handed over, not taken yet (newest first) */
extern atomic_int cp_dr_running;       /* a drainer thread exists (or is being started) */
extern atomic_uint cp_dr_sleeping;     /* the thread sleeps on this futex word: wake it */
extern atomic_uint cp_dr_in_progress;  /* reserved places: background and synchronous drains */
extern atomic_int cp_dr_epfd;
extern atomic_int cp_dr_exit_waiting;  /* the exit path sleeps on in_progress: wake it at zero */
extern pthread_mutex_t cp_dr_active_lock;
/* a thread-less round (cp_drain_round_here) holds the lock: what a fork from a signal handler
 * that interrupted it cannot trust (drainend.c) */
extern atomic_bool cp_dr_in_round;
/* guarded by cp_dr_active_lock: */
extern struct cp_drain *cp_dr_active;  /* watched in epoll */
extern struct cp_drain *cp_dr_fresh, *cp_dr_fresh_tail; /* first read still to come (oldest first) */
extern struct cp_drain *cp_dr_polled;  /* read once a tick, no epoll (no thread: drainnow.h) */
extern unsigned cp_dr_ended;           /* drains ended this round */
extern struct cp_log_batch cp_dr_batch; /* the round's lines */

static inline struct cp_sock *cp_dr_sock_of(struct cp_drain *d)
{
	return (struct cp_sock *)(void *)((char *)d - offsetof(struct cp_sock, drain));
}

long cp_dr_futex(atomic_uint *addr, int op, unsigned val, const struct timespec *timeout);
/* Sockets handed over since the last round join the end of the fresh queue. */
void cp_dr_take_pending(void);
/* The first read of the fresh ones old enough (all: every one). */
void cp_dr_read_fresh(uint64_t now, bool all);
/* The round's lines written, then the places of the drains that ended given back. */
void cp_dr_end_round(void);
/* The close line first: the order within one socket is close, then drain. */
void cp_dr_log_close_note(struct cp_drain *d);

#endif
