/* closepolicy — the background drainer (see drainer.h).
 *
 * Hand-over is lock-free (a Treiber stack of sockets whose FIN close() has sent), and close() does
 * not wake the thread while it is busy: it looks for new sockets on a short tick while it has had
 * work lately. After a quiet spell it sleeps on a futex, and the close() that finds the queue
 * empty and the thread asleep wakes it (one wake per burst); after a second of nothing it exits. A socket's first read waits FIRST_READ_NS, by when most peers have
 * answered the FIN: one recv finds EOF and the socket is closed without epoll; only the rest are
 * watched (one-shot). The thread alone owns its lists and its batch of log lines; it holds
 * `cp_dr_active_lock` only while it works on them (never while it sleeps in epoll_wait), writes the
 * batch before it lets the lock go, and fork takes that lock so the child sees consistent lists. */
#include "shim/drainer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <linux/futex.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim/actions.h"
#include "shim/config.h"
#include "shim/counters.h"
#include "shim/drainer_int.h"
#include "shim/drainnow.h"
#include "shim/events.h"
#include "shim/ownfd.h"
#include "shim/real.h"

#define FIRST_READ_NS 2000000u /* a socket's first read waits at least this long after its FIN */
#define BUSY_SPELL_MS 100      /* "lately"; after that, the thread sleeps until woken */
#define IDLE_EXIT_MS 1000      /* the thread exits after this long with nothing to drain */
#define MAX_EVENTS 64

/* the state drainend.c shares (drainer_int.h says what each is) */
_Atomic(struct cp_sock *) cp_dr_pending;
atomic_int cp_dr_running;
atomic_uint cp_dr_sleeping;
atomic_uint cp_dr_in_progress;
atomic_int cp_dr_epfd = -1;
atomic_int cp_dr_exit_waiting;
atomic_bool cp_dr_in_round;
pthread_mutex_t cp_dr_active_lock = PTHREAD_MUTEX_INITIALIZER;
/* guarded by cp_dr_active_lock: */
struct cp_drain *cp_dr_active;
struct cp_drain *cp_dr_fresh, *cp_dr_fresh_tail;
struct cp_drain *cp_dr_polled;
static uint64_t next_poll_ns;      /* when the polled ones are read next */
unsigned cp_dr_ended;
/* last, after the small state a fork's child reads (every page it reads first is a fault) */
static char batch_buf[16384];
struct cp_log_batch cp_dr_batch = { batch_buf, sizeof batch_buf, 0 }; /* written before the lock goes */

bool cp_drain_reserve(void)
{
	unsigned max = cp_cfg.policy ? cp_cfg.policy->max_draining : CP_DEFAULT_MAX_DRAINING;
	unsigned n = atomic_load(&cp_dr_in_progress);
	do {
		if (n >= max)
			return cp_ctr_max_draining_hit(), false;
	} while (!atomic_compare_exchange_weak(&cp_dr_in_progress, &n, n + 1));
	return true;
}

long cp_dr_futex(atomic_uint *addr, int op, unsigned val, const struct timespec *timeout)
{
	return cp_real_syscall(SYS_futex, addr, op, val, timeout, NULL, 0);
}

static void unreserve(unsigned n)
{
	if (n != 0 && atomic_fetch_sub(&cp_dr_in_progress, n) == n && atomic_load(&cp_dr_exit_waiting))
		cp_dr_futex(&cp_dr_in_progress, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

void cp_drain_unreserve(void)
{
	unreserve(1);
}

/* ---- the thread ---- */

/* One-shot: an event is reported once, so a socket finished at its EOF needs no EPOLL_CTL_DEL
 * (its registration is spent, and goes with the close). */
#define WATCH (EPOLLIN | EPOLLRDHUP | EPOLLONESHOT)

/* No deadline on the active list comes before this (deadlines only move later: a read pushes
 * the idle one), so the list is walked only once this time has come. */
static uint64_t next_expiry_ns = UINT64_MAX;

/* The close line first: the order within one socket is close, then drain. */
void cp_dr_log_close_note(struct cp_drain *d)
{
	if (d->note.pending) {
		d->note.pending = false;
		cp_event_close_note(cp_dr_sock_of(d), d->prog_fd, &d->note, &cp_dr_batch);
	}
}

static void finish(struct cp_drain *d, const char *outcome, int err, uint64_t now)
{
	struct cp_sock *s = cp_dr_sock_of(d);
	if (d->watched) {
		if (d->prev)
			d->prev->next = d->next;
		else if (cp_dr_active == d)
			cp_dr_active = d->next;
		else
			cp_dr_polled = d->next;
		if (d->next)
			d->next->prev = d->prev;
	}
	/* an armed registration would go with the close, unless a fork briefly holds a copy of
	 * the socket: then it could still report d, recycled by then */
	if (d->armed)
		cp_real_epoll_ctl(atomic_load(&cp_dr_epfd), EPOLL_CTL_DEL, d->fd, NULL);
	cp_ownfd_close(d->fd);
	cp_dr_log_close_note(d);
	cp_event_drain_into(&cp_dr_batch, s, d->prog_fd, d->bytes, outcome, (now - d->start_ns) / 1000000u, err);
	cp_dr_ended++;
	cp_sock_release(s);
}

/* Write the round's lines, then give back the places of the drains that ended: the exit path,
 * waiting for those, must find their lines written. */
void cp_dr_end_round(void)
{
	cp_log_batch_flush(&cp_dr_batch);
	unsigned n = cp_dr_ended;
	cp_dr_ended = 0;
	unreserve(n);
}

/* Sockets handed over since the last round join the end of the queue, oldest first. */
void cp_dr_take_pending(void)
{
	struct cp_sock *s = atomic_exchange(&cp_dr_pending, NULL), *rev = NULL;
	while (s != NULL) { /* the stack is newest first */
		struct cp_sock *next = s->link;
		s->link = rev;
		rev = s;
		s = next;
	}
	for (; rev != NULL; rev = rev->link) {
		struct cp_drain *d = &rev->drain;
		d->next = NULL;
		if (cp_dr_fresh_tail)
			cp_dr_fresh_tail->next = d;
		else
			cp_dr_fresh = d;
		cp_dr_fresh_tail = d;
	}
}

static void watch(struct cp_drain *d, uint64_t now)
{
	const struct cp_rule *r = cp_dr_sock_of(d)->rule;
	uint64_t first = d->start_ns + 1000000u * (r->drain_timeout_ms < r->drain_max_ms ? r->drain_timeout_ms
											: r->drain_max_ms);
	if (first < next_expiry_ns)
		next_expiry_ns = first;
	/* no thread waits in epoll: the calls that run rounds read it once a tick */
	struct cp_drain **list = atomic_load(&cp_dr_running) != 0 ? &cp_dr_active : &cp_dr_polled;
	d->watched = true;
	d->prev = NULL;
	d->next = *list;
	if (*list)
		(*list)->prev = d;
	*list = d;
	if (list == &cp_dr_polled)
		return;
	struct epoll_event ev = { .events = WATCH, .data.ptr = d };
	d->armed = true;
	if (cp_real_epoll_ctl(atomic_load(&cp_dr_epfd), EPOLL_CTL_ADD, d->fd, &ev) < 0) {
		int e = errno;
		d->armed = false;
		cp_event_error(d->prog_fd, "epoll_ctl: cannot watch a draining socket", e, "closed it now");
		finish(d, "reset", e, now);
	}
}

/* Read what has come; finish d at its EOF or reset. True while it goes on. */
static bool read_once(struct cp_drain *d, uint64_t now)
{
	int err = 0;
	uint64_t before = d->bytes;
	int r = cp_drain_discard(d->fd, &d->bytes, &err);
	if (d->bytes != before)
		d->last_ns = now;
	if (r > 0)
		finish(d, "eof", 0, now);
	else if (r < 0)
		finish(d, "reset", err, now);
	return r == 0;
}

/* The first read: most peers have answered the FIN by now, and the socket ends here. */
static void first_read(struct cp_drain *d, uint64_t now)
{
	cp_dr_log_close_note(d);
	if (read_once(d, now))
		watch(d, now);
}

/* Read the queued sockets whose time has come (all of them: `all`). */
void cp_dr_read_fresh(uint64_t now, bool all)
{
	while (cp_dr_fresh != NULL && (all || cp_dr_fresh->start_ns + FIRST_READ_NS <= now)) {
		struct cp_drain *d = cp_dr_fresh;
		cp_dr_fresh = d->next;
		if (cp_dr_fresh == NULL)
			cp_dr_fresh_tail = NULL;
		first_read(d, now);
	}
}

/* Watch d again after its one-shot event brought data but no EOF. */
static void rearm(struct cp_drain *d, uint64_t now)
{
	struct epoll_event ev = { .events = WATCH, .data.ptr = d };
	int ep = atomic_load(&cp_dr_epfd);
	/* after a dup2 moved d->fd, the registration is under the old number: add one */
	if (cp_real_epoll_ctl(ep, EPOLL_CTL_MOD, d->fd, &ev) == 0 ||
	    (errno == ENOENT && cp_real_epoll_ctl(ep, EPOLL_CTL_ADD, d->fd, &ev) == 0)) {
		d->armed = true;
		return;
	}
	int e = errno;
	cp_event_error(d->prog_fd, "epoll_ctl: cannot watch a draining socket again", e, "closed it now");
	finish(d, "reset", e, now);
}

static void on_readable(struct cp_drain *d, uint64_t now)
{
	d->armed = false;
	if (read_once(d, now))
		rearm(d, now);
}

/* The sockets no epoll set watches: one read each (a tick's). */
CP_PARENT_ONLY static void read_polled(uint64_t now)
{
	for (struct cp_drain *d = cp_dr_polled, *n; d != NULL; d = n) {
		n = d->next;
		(void)read_once(d, now);
	}
	next_poll_ns = now + BUSY_TICK_MS * 1000000u;
}

static void expire_list(struct cp_drain *list, uint64_t now)
{
	for (struct cp_drain *d = list, *n; d != NULL; d = n) {
		n = d->next;
		const char *outcome;
		int left = cp_drain_ms_left(d, cp_dr_sock_of(d)->rule, now, &outcome);
		if (left == 0) {
			finish(d, outcome, 0, now);
			continue;
		}
		uint64_t at = now + (uint64_t)left * 1000000u;
		if (at < next_expiry_ns)
			next_expiry_ns = at;
	}
}

/* Finish what has run out of time; return the ms until the next deadline (-1: nothing watched). */
static int expire(uint64_t now)
{
	if (now >= next_expiry_ns) {
		next_expiry_ns = UINT64_MAX;
		expire_list(cp_dr_active, now);
		expire_list(cp_dr_polled, now);
	}
	if (cp_dr_active == NULL && cp_dr_polled == NULL) {
		next_expiry_ns = UINT64_MAX;
		return -1;
	}
	uint64_t ms = (next_expiry_ns - now + 999999u) / 1000000u;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static int min_timeout(int a, int b)
{
	return a < 0 ? b : b < 0 ? a : a < b ? a : b;
}

/* The thread's round under active_lock: what epoll reported, the new sockets, the deadlines, the
 * lines. Returns the ms until a deadline (-1: none). */
static int round_locked(const struct epoll_event *evs, int n)
{
	uint64_t now = cp_now_ns();
	for (int i = 0; i < n; i++)
		on_readable(evs[i].data.ptr, now);
	cp_dr_take_pending();
	cp_dr_read_fresh(now, false); /* the others wait for the next tick */
	if (cp_dr_polled != NULL && now >= next_poll_ns)
		read_polled(now);
	int due = expire(now);
	cp_dr_end_round();
	return due;
}

CP_PARENT_ONLY uint64_t cp_drain_round_here(unsigned how, struct pollfd *p, unsigned max, unsigned *np)
{
	*np = 0;
	if (pthread_mutex_trylock(&cp_dr_active_lock) != 0)
		return 0; /* a round is on (another thread's, or the one this signal handler interrupted) */
	atomic_store_explicit(&cp_dr_in_round, true, memory_order_relaxed);
	uint64_t now = cp_now_ns();
	cp_dr_take_pending();
	cp_dr_read_fresh(now, how & CP_ROUND_FIRST_NOW);
	if (cp_dr_polled != NULL && ((how & CP_ROUND_POLLED_NOW) || now >= next_poll_ns))
		read_polled(now);
	(void)expire(now);
	cp_dr_end_round();
	uint64_t next = cp_dr_fresh != NULL ? cp_dr_fresh->start_ns + FIRST_READ_NS : UINT64_MAX;
	if (cp_dr_polled != NULL) {
		next = next_poll_ns < next ? next_poll_ns : next;
		next = next_expiry_ns < next ? next_expiry_ns : next;
	}
	for (struct cp_drain *d = cp_dr_polled; d != NULL && *np < max; d = d->next)
		p[(*np)++] = (struct pollfd){ .fd = d->fd, .events = POLLIN | POLLRDHUP };
	atomic_store_explicit(&cp_dr_in_round, false, memory_order_relaxed);
	pthread_mutex_unlock(&cp_dr_active_lock);
	return next;
}

static void *drainer_main(void *arg)
{
	(void)arg;
	struct epoll_event evs[MAX_EVENTS];
	int n = 0;
	uint64_t busy_at = cp_now_ns();
	for (;;) {
		pthread_mutex_lock(&cp_dr_active_lock);
		int due = round_locked(evs, n);
		bool idle = cp_dr_fresh == NULL && cp_dr_active == NULL && cp_dr_polled == NULL;
		uint64_t now = cp_now_ns();
		if (!idle)
			busy_at = now;
		uint64_t quiet_ms = (now - busy_at) / 1000000u;
		if (idle && quiet_ms >= IDLE_EXIT_MS) {
			/* exit, unless a hand-over raced with the decision (it saw running == 1) */
			atomic_store(&cp_dr_running, 0);
			int expected = 0;
			if (atomic_load(&cp_dr_pending) == NULL ||
			    !atomic_compare_exchange_strong(&cp_dr_running, &expected, 1)) {
				pthread_mutex_unlock(&cp_dr_active_lock);
				return NULL;
			}
			busy_at = now;
			quiet_ms = 0;
		}
		pthread_mutex_unlock(&cp_dr_active_lock);

		if (idle && quiet_ms >= BUSY_SPELL_MS) {
			/* Nothing to watch: sleep until a close() wakes us, or until it is time to exit.
			 * Announce the sleep, then look once more: a hand-over in between either sees
			 * `sleeping` and wakes us, or its socket is seen here. */
			atomic_store(&cp_dr_sleeping, 1);
			if (atomic_load(&cp_dr_pending) == NULL) {
				uint64_t left = (IDLE_EXIT_MS - quiet_ms) * 1000000u;
				struct timespec ts = { (time_t)(left / 1000000000u), (long)(left % 1000000000u) };
				cp_dr_futex(&cp_dr_sleeping, FUTEX_WAIT_PRIVATE, 1, &ts);
			}
			atomic_store(&cp_dr_sleeping, 0);
			n = 0;
			continue;
		}
		/* busy: close() does not wake the thread; new sockets are looked for on a tick, and one
		 * due for its first read waits for the next (a round per tick, however many closes) */
		n = epoll_wait(atomic_load(&cp_dr_epfd), evs, MAX_EVENTS, min_timeout(due, BUSY_TICK_MS));
		if (n < 0)
			n = 0;
	}
}

/* The epoll set lives among the shim's high numbers, like the copies, or not at all: left at a
 * low number it would take one the program may count on (the program's just-closed one, at the
 * descriptor limit). */
static int make_epoll(void)
{
	if (atomic_load(&cp_dr_epfd) >= 0)
		return 0;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	if (ep < 0)
		return -1;
	int ep_high = cp_ownfd_move_high(ep);
	if (ep_high < 0) {
		int err = errno;
		cp_real_close(ep); /* not marked as the shim's: cp_ownfd_close would leave it open */
		errno = err;
		return -1;
	}
	int none = -1;
	if (!atomic_compare_exchange_strong(&cp_dr_epfd, &none, ep_high))
		cp_ownfd_close(ep_high); /* another thread made it first */
	return 0;
}

static int start_thread(void)
{
	pthread_t t;
	pthread_attr_t attr;
	sigset_t all, old;
	/* the program's signal handlers must never run on the shim's thread */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	pthread_attr_setstacksize(&attr, 64 * 1024);
	int rc = pthread_create(&t, &attr, drainer_main, NULL);
	pthread_attr_destroy(&attr);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return rc;
}

static int ensure_thread(int prog_fd)
{
	int expected = 0;
	if (atomic_load(&cp_dr_running) != 0 || !atomic_compare_exchange_strong(&cp_dr_running, &expected, 1))
		return 0;
	int rc = start_thread();
	if (rc == 0) {
		cp_ctr_second_thread(); /* the reload thread may start now */
		return 0;
	}
	atomic_store(&cp_dr_running, 0);
	cp_event_error(prog_fd, "cannot start the drainer thread", rc, "drained synchronously");
	return -1;
}

/* Onto the stack of sockets handed over; returns the head it found (NULL: the first of a burst). */
static struct cp_sock *push(struct cp_sock *s)
{
	struct cp_sock *head = atomic_load(&cp_dr_pending);
	do
		s->link = head;
	while (!atomic_compare_exchange_weak(&cp_dr_pending, &head, s));
	return head;
}

int cp_drain_start(struct cp_sock *s, int fd, int prog_fd)
{
	struct cp_drain *d = &s->drain;
	d->fd = fd;
	d->prog_fd = prog_fd;
	d->bytes = 0;
	d->armed = d->watched = false;
	d->start_ns = d->last_ns = cp_now_ns();
	if (cp_drain_here_wanted()) { /* no thread: the program's next calls drain it (drainnow.h) */
		push(s);
		cp_drain_waiting(d->start_ns + FIRST_READ_NS);
		return 0;
	}
	if (make_epoll() < 0) {
		cp_event_error(prog_fd, "cannot create the drainer's epoll set", errno,
			       "drained before close returned");
		return -1;
	}
	if (ensure_thread(prog_fd) < 0)
		return -1;
	struct cp_sock *head = push(s);
	/* The thread may have decided to exit just before the push (it clears `running`, then looks
	 * at `pending`; we push, then look at `running`): one of us sees the other. Should a new
	 * thread fail to start here, the socket waits for the next start or the exit path. */
	if (atomic_load(&cp_dr_running) == 0)
		(void)ensure_thread(prog_fd);
	/* Asleep after a quiet spell: the first socket of a burst wakes it (the queue was empty; the
	 * thread looks at the queue after announcing its sleep). Busy, it finds the socket on its
	 * next tick: no system call here. */
	if (head == NULL && atomic_load(&cp_dr_sleeping) != 0 && atomic_exchange(&cp_dr_sleeping, 0) != 0)
		cp_dr_futex(&cp_dr_sleeping, FUTEX_WAKE_PRIVATE, 1, NULL);
	return 0;
}

bool cp_drain_fd_moved(int from, int to)
{
	/* under the lock, the thread is not between reading a number and using it (but for its
	 * epoll_wait, which then fails once and comes round with the new number) */
	pthread_mutex_lock(&cp_dr_active_lock);
	int f = from;
	bool found = atomic_compare_exchange_strong(&cp_dr_epfd, &f, to);
	for (struct cp_drain *d = cp_dr_active; d != NULL && !found; d = d->next)
		if (d->fd == from)
			d->fd = to, found = true;
	for (struct cp_drain *d = cp_dr_fresh; d != NULL && !found; d = d->next)
		if (d->fd == from)
			d->fd = to, found = true;
	for (struct cp_drain *d = cp_dr_polled; d != NULL && !found; d = d->next)
		if (d->fd == from)
			d->fd = to, found = true;
	/* handed over, not taken yet: only pushes happen meanwhile, in front of what is read */
	for (struct cp_sock *s = atomic_load(&cp_dr_pending); s != NULL && !found; s = s->link)
		if (s->drain.fd == from)
			s->drain.fd = to, found = true;
	pthread_mutex_unlock(&cp_dr_active_lock);
	return found;
}
