/* closepolicy — the drainer at the ends of a process (see drainer.h): exit, exec and a death by
 * signal (what is still draining finished or cut within the exit's wait, the close lines not yet
 * written), and fork (the child closes the copies it inherits). */
#include "shim/drainer.h"

#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <linux/futex.h>
#include <time.h>

#include "shim/drainer_int.h"
#include "shim/drainnow.h"
#include "shim/events.h"
#include "shim/hot.h"
#include "shim/ownfd.h"
#include "shim/perproc.h"

/* ---- exit, exec, a death by signal ---- */

/* The lock without waiting on it for long: the exit path never blocks on the drainer, but a
 * round (a few system calls per socket) is worth a few milliseconds for its lines. */
static bool lock_briefly(void)
{
	for (int i = 0; i < 20; i++) {
		if (pthread_mutex_trylock(&cp_dr_active_lock) == 0)
			return true;
		struct timespec ms = { 0, 1000000 };
		nanosleep(&ms, NULL);
	}
	return false;
}

/* Time is up: what is still draining is left to the kernel's close, read one last time so that
 * close sends FIN, not RST. */
static void cut_at_exit(uint64_t now)
{
	if (!lock_briefly())
		return;
	cp_dr_take_pending();
	struct cp_drain *lists[] = { cp_dr_active, cp_dr_polled, cp_dr_fresh };
	for (int list = 0; list < 3; list++) {
		for (struct cp_drain *d = lists[list]; d != NULL; d = d->next) {
			int err = 0;
			(void)cp_drain_discard(d->fd, &d->bytes, &err);
			cp_dr_log_close_note(d);
			cp_event_drain_into(&cp_dr_batch, cp_dr_sock_of(d), d->prog_fd, d->bytes, "exit",
					    (now - d->start_ns) / 1000000u, err);
		}
	}
	cp_dr_active = cp_dr_polled = cp_dr_fresh = cp_dr_fresh_tail = NULL; /* the process is ending: the descriptors go with it */
	cp_log_batch_flush(&cp_dr_batch);
	pthread_mutex_unlock(&cp_dr_active_lock);
}

/* No thread: what is left is drained here, as the thread would (its rounds, every socket read at
 * each, waiting in poll between them), until the deadline. */
CP_PARENT_ONLY static void finish_here(uint64_t deadline_ns)
{
	struct pollfd p[64]; /* more are read at each round all the same (a tick at most apart) */
	for (;;) {
		unsigned n;
		uint64_t next = cp_drain_round_here(CP_ROUND_FIRST_NOW | CP_ROUND_POLLED_NOW, p, 64, &n);
		uint64_t now = cp_now_ns();
		if (next == UINT64_MAX)
			return;
		if (now >= deadline_ns) {
			cut_at_exit(now);
			return;
		}
		uint64_t until = next == 0 ? now + 1000000u : next < deadline_ns ? next : deadline_ns;
		uint64_t ms = until > now ? (until - now + 999999u) / 1000000u : 0;
		(void)poll(p, n, (int)(ms < BUSY_TICK_MS ? ms : BUSY_TICK_MS));
	}
}

void cp_drain_finish_at_exit(uint64_t deadline_ns)
{
	atomic_store(&cp_dr_exit_waiting, 1);
	if (atomic_load(&cp_dr_running) == 0)
		return finish_here(deadline_ns);
	/* the sockets closed just before exit need not wait for the thread's tick. Only those not
	 * watched yet: a watched one may be in the events the thread holds, and only the thread
	 * ends those. */
	if (atomic_load(&cp_dr_in_progress) != 0 && pthread_mutex_trylock(&cp_dr_active_lock) == 0) {
		cp_dr_take_pending();
		cp_dr_read_fresh(cp_now_ns(), true);
		cp_dr_end_round();
		pthread_mutex_unlock(&cp_dr_active_lock);
	}
	for (;;) {
		unsigned n = atomic_load(&cp_dr_in_progress);
		uint64_t now = cp_now_ns();
		if (n == 0)
			return;
		if (now >= deadline_ns) {
			cut_at_exit(now);
			return;
		}
		uint64_t left = deadline_ns - now;
		struct timespec ts = { .tv_sec = (time_t)(left / 1000000000u), .tv_nsec = (long)(left % 1000000000u) };
		cp_dr_futex(&cp_dr_in_progress, FUTEX_WAIT_PRIVATE, n, &ts);
	}
}

void cp_drain_log_pending(void)
{
	if (pthread_mutex_trylock(&cp_dr_active_lock) != 0)
		return; /* the thread is in a round: it writes its lines before it lets go */
	cp_dr_take_pending();
	for (struct cp_drain *d = cp_dr_fresh; d != NULL; d = d->next)
		cp_dr_log_close_note(d);
	cp_log_batch_flush(&cp_dr_batch);
	pthread_mutex_unlock(&cp_dr_active_lock);
}

/* ---- fork ---- */

CP_CHILD bool cp_drain_untouched(void)
{
	return atomic_load(&cp_dr_running) == 0 && atomic_load(&cp_dr_epfd) < 0 && atomic_load(&cp_dr_in_progress) == 0 &&
	       atomic_load(&cp_dr_pending) == NULL;
}

/* Forks take the lock from the first with another thread on (set once, never cleared). Alone,
 * nothing else changes the lists during a fork; and a lock taken here would be a page written in
 * both processes at every fork (and a fork from a handler that interrupted a round would wait
 * for itself). */
static bool fork_locks;

void cp_drain_atfork_prepare(void)
{
	if (!fork_locks && cp_single_threaded())
		return;
	if (!fork_locks)
		fork_locks = true;
	pthread_mutex_lock(&cp_dr_active_lock);
}

void cp_drain_atfork_parent(void)
{
	if (fork_locks)
		pthread_mutex_unlock(&cp_dr_active_lock);
}

CP_CHILD void cp_drain_atfork_child(void)
{
	/* The child's copies would keep half-closed sockets alive until it exits: close them. The
	 * sockets (and their lines) stay the parent's to finish. Each is written only when set:
	 * every page written here is copied in every child.
	 * Alone, a fork takes no lock: one from a signal handler that interrupted this thread's
	 * thread-less round finds the lists perhaps half-changed. They are not walked then: their
	 * copies stay open in the child until it exits or execs (close-on-exec) — a close of the
	 * parent's delayed, never an RST (the parent drains them) — and the lock the round held is
	 * made anew. */
	bool half_changed = !fork_locks && atomic_load_explicit(&cp_dr_in_round, memory_order_relaxed);
	for (struct cp_drain *d = half_changed ? NULL : cp_dr_active, *n; d != NULL; d = n) {
		n = d->next;
		cp_ownfd_close(d->fd);
	}
	for (struct cp_drain *d = half_changed ? NULL : cp_dr_fresh, *n; d != NULL; d = n) {
		n = d->next;
		cp_ownfd_close(d->fd);
	}
	for (struct cp_drain *d = half_changed ? NULL : cp_dr_polled, *n; d != NULL; d = n) {
		n = d->next;
		cp_ownfd_close(d->fd);
	}
	if (half_changed) {
		pthread_mutex_init(&cp_dr_active_lock, NULL);
		atomic_store_explicit(&cp_dr_in_round, false, memory_order_relaxed);
	}
	if (cp_dr_active != NULL || cp_dr_fresh != NULL || cp_dr_polled != NULL)
		cp_dr_active = cp_dr_polled = cp_dr_fresh = cp_dr_fresh_tail = NULL;
	if (cp_dr_batch.len != 0) /* (empty outside a round anyway) */
		cp_dr_batch.len = 0;
	if (cp_dr_ended != 0)
		cp_dr_ended = 0;
	if (atomic_load(&cp_dr_pending) != NULL)
		for (struct cp_sock *s = atomic_exchange(&cp_dr_pending, NULL); s != NULL; s = s->link)
			cp_ownfd_close(s->drain.fd);
	/* the epoll set is the parent's open file: never touch it from here */
	int ep = atomic_load(&cp_dr_epfd) >= 0 ? atomic_exchange(&cp_dr_epfd, -1) : -1;
	if (ep >= 0)
		cp_ownfd_close(ep);
	if (atomic_load(&cp_dr_running) != 0)
		atomic_store(&cp_dr_running, 0);
	if (atomic_load(&cp_dr_sleeping) != 0)
		atomic_store(&cp_dr_sleeping, 0);
	if (atomic_load(&cp_dr_in_progress) != 0)
		atomic_store(&cp_dr_in_progress, 0);
	if (atomic_load_explicit(&cp_drain_due_ns, memory_order_relaxed) != 0) /* the lists are gone */
		atomic_store_explicit(&cp_drain_due_ns, 0, memory_order_relaxed);
	if (fork_locks)
		pthread_mutex_unlock(&cp_dr_active_lock);
}
