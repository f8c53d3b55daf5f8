/* closepolicy — the background drainer (see drainer.h).
 *
 * Hand-over is lock-free (a Treiber stack of pending sockets plus an eventfd to wake the thread),
 * so close() never waits on the drainer. The thread alone owns the active list; it holds
 * `active_lock` only while it works on the list (never while it sleeps in epoll_wait), and fork
 * takes that lock so the child sees a consistent list to clean up. */
#include "shim/drainer.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <linux/futex.h>
#include <limits.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim/actions.h"
#include "shim/config.h"
#include "shim/events.h"
#include "shim/ownfd.h"
#include "shim/real.h"

#define IDLE_EXIT_MS 1000 /* the thread exits after this long with nothing to drain */
#define MAX_EVENTS 64

static _Atomic(struct cp_sock *) pending;
static atomic_int running;         /* a drainer thread exists (or is being started) */
static atomic_int sleeping;        /* the thread is (about to be) in epoll_wait: wake it */
static atomic_uint in_progress;    /* reserved places: background and synchronous drains */
static atomic_int epfd = -1, evfd = -1;
static pthread_mutex_t active_lock = PTHREAD_MUTEX_INITIALIZER;
static struct cp_drain *active;    /* the thread's list; guarded by active_lock */

uint64_t cp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static struct cp_sock *sock_of(struct cp_drain *d)
{
	return (struct cp_sock *)(void *)((char *)d - offsetof(struct cp_sock, drain));
}

int cp_drain_discard(int fd, uint64_t *bytes, int *err)
{
	for (;;) {
		/* MSG_TRUNC on TCP discards without copying: no buffer needed */
		ssize_t n = recv(fd, NULL, 1 << 30, MSG_DONTWAIT | MSG_TRUNC);
		if (n > 0) {
			*bytes += (uint64_t)n;
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		*err = errno;
		return -1;
	}
}

bool cp_drain_reserve(void)
{
	unsigned max = cp_cfg.policy ? cp_cfg.policy->max_draining : CP_DEFAULT_MAX_DRAINING;
	unsigned n = atomic_load(&in_progress);
	do {
		if (n >= max)
			return false;
	} while (!atomic_compare_exchange_weak(&in_progress, &n, n + 1));
	return true;
}

static atomic_int exit_waiting; /* the exit path sleeps on in_progress: wake it at zero */

static long futex(atomic_uint *addr, int op, unsigned val, const struct timespec *timeout)
{
	return syscall(SYS_futex, addr, op, val, timeout, NULL, 0);
}

void cp_drain_unreserve(void)
{
	if (atomic_fetch_sub(&in_progress, 1) == 1 && atomic_load(&exit_waiting))
		futex(&in_progress, FUTEX_WAKE_PRIVATE, INT_MAX, NULL);
}

void cp_drain_prepare(int fd, struct cp_sock *s)
{
	if (atomic_load(&s->linger0)) /* the policy's graceful close wins over the program's RST */
		cp_act_linger(fd, 0, 0);
	if (!atomic_load(&s->shut_wr)) {
		int err = cp_act_shutdown_wr(fd);
		if (err != 0 && err != ENOTCONN)
			cp_event_error(fd, "shutdown(SHUT_WR) failed", err, "went on draining");
	}
}

static int deadline_ms_left(const struct cp_drain *d, const struct cp_rule *r, uint64_t now,
			    const char **outcome)
{
	uint64_t idle_end = d->last_ns + (uint64_t)r->drain_timeout_ms * 1000000u;
	uint64_t max_end = d->start_ns + (uint64_t)r->drain_max_ms * 1000000u;
	uint64_t end = idle_end < max_end ? idle_end : max_end;
	if (outcome != NULL)
		*outcome = max_end <= idle_end ? "max" : "idle";
	if (end <= now)
		return 0;
	uint64_t ms = (end - now + 999999u) / 1000000u;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

const char *cp_drain_sync(int fd, const struct cp_rule *rule, uint64_t *bytes, int *err)
{
	struct cp_drain d = { .start_ns = cp_now_ns() };
	d.last_ns = d.start_ns;
	for (;;) {
		uint64_t before = *bytes;
		int r = cp_drain_discard(fd, bytes, err);
		if (r > 0)
			return "eof";
		if (r < 0)
			return "reset";
		uint64_t now = cp_now_ns();
		if (*bytes != before)
			d.last_ns = now;
		const char *outcome;
		int left = deadline_ms_left(&d, rule, now, &outcome);
		if (left == 0)
			return outcome;
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
		if (poll(&p, 1, left) < 0 && errno != EINTR) {
			*err = errno;
			return "reset";
		}
	}
}

/* ---- the thread ---- */

/* One-shot: an event is reported once, so a socket finished at its EOF needs no EPOLL_CTL_DEL
 * (its registration is spent, and goes with the close). */
#define WATCH (EPOLLIN | EPOLLRDHUP | EPOLLONESHOT)

/* No deadline on the active list comes before this (deadlines only move later: a read pushes
 * the idle one), so the list is walked only once this time has come. */
static uint64_t next_expiry_ns = UINT64_MAX;

static void finish(struct cp_drain *d, const char *outcome, int err, uint64_t now)
{
	struct cp_sock *s = sock_of(d);
	if (d->prev)
		d->prev->next = d->next;
	else
		active = d->next;
	if (d->next)
		d->next->prev = d->prev;
	/* an armed registration would go with the close, unless a fork briefly holds a copy of
	 * the socket: then it could still report d, recycled by then */
	if (d->armed)
		cp_real_epoll_ctl(atomic_load(&epfd), EPOLL_CTL_DEL, d->fd, NULL);
	cp_ownfd_close(d->fd);
	cp_event_drain(s, d->prog_fd, d->bytes, outcome, (now - d->start_ns) / 1000000u, err);
	cp_drain_unreserve();
	cp_sock_release(s);
}

/* A socket that is not the one registered any more (its number was reused after a close the
 * shim did not see) is only closed, as the program asked. */
static void forget_stranger(struct cp_sock *s)
{
	cp_ownfd_close(s->drain.fd);
	cp_drain_unreserve();
	cp_sock_release(s);
}

/* Sockets handed over by close(): shut their sending side and watch them. epoll reports at once
 * what is already there (data, the peer's FIN), so nothing is read here. */
static void adopt_pending(uint64_t now)
{
	struct cp_sock *s = atomic_exchange(&pending, NULL);
	while (s != NULL) {
		struct cp_sock *next = s->link;
		struct cp_drain *d = &s->drain;
		if (!cp_sock_still_registered(d->fd, s)) {
			forget_stranger(s);
			s = next;
			continue;
		}
		cp_drain_prepare(d->fd, s);
		struct epoll_event ev = { .events = WATCH, .data.ptr = d };
		d->armed = true;
		uint64_t first = d->start_ns + 1000000u * (s->rule->drain_timeout_ms < s->rule->drain_max_ms
								  ? s->rule->drain_timeout_ms
								  : s->rule->drain_max_ms);
		if (first < next_expiry_ns)
			next_expiry_ns = first;
		d->prev = NULL;
		d->next = active;
		if (active)
			active->prev = d;
		active = d;
		if (cp_real_epoll_ctl(atomic_load(&epfd), EPOLL_CTL_ADD, d->fd, &ev) < 0) {
			int e = errno;
			d->armed = false;
			cp_event_error(d->prog_fd, "epoll_ctl: cannot watch a draining socket", e, "closed it now");
			finish(d, "reset", e, now);
		}
		s = next;
	}
}

/* Watch d again after its one-shot event brought data but no EOF. */
static void rearm(struct cp_drain *d, uint64_t now)
{
	struct epoll_event ev = { .events = WATCH, .data.ptr = d };
	int ep = atomic_load(&epfd);
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
	int err = 0;
	uint64_t before = d->bytes;
	d->armed = false;
	int r = cp_drain_discard(d->fd, &d->bytes, &err);
	if (d->bytes != before)
		d->last_ns = now;
	if (r > 0)
		finish(d, "eof", 0, now);
	else if (r < 0)
		finish(d, "reset", err, now);
	else
		rearm(d, now);
}

/* Finish what has run out of time; return the ms until the next deadline (-1: nothing active). */
static int expire(uint64_t now)
{
	if (now >= next_expiry_ns) {
		next_expiry_ns = UINT64_MAX;
		for (struct cp_drain *d = active, *n; d != NULL; d = n) {
			n = d->next;
			const char *outcome;
			int left = deadline_ms_left(d, sock_of(d)->rule, now, &outcome);
			if (left == 0) {
				finish(d, outcome, 0, now);
				continue;
			}
			uint64_t at = now + (uint64_t)left * 1000000u;
			if (at < next_expiry_ns)
				next_expiry_ns = at;
		}
	}
	if (active == NULL) {
		next_expiry_ns = UINT64_MAX;
		return -1;
	}
	uint64_t ms = (next_expiry_ns - now + 999999u) / 1000000u;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

static void *drainer_main(void *arg)
{
	(void)arg;
	struct epoll_event evs[MAX_EVENTS];
	for (;;) {
		pthread_mutex_lock(&active_lock);
		uint64_t now = cp_now_ns();
		adopt_pending(now);
		int timeout = expire(now);
		pthread_mutex_unlock(&active_lock);

		/* Announce the sleep, then look once more: a close() that handed a socket over in
		 * between either sees `sleeping` and wakes us, or its socket is seen here. */
		atomic_store(&sleeping, 1);
		if (atomic_load(&pending) != NULL)
			timeout = 0;
		int n = epoll_wait(atomic_load(&epfd), evs, MAX_EVENTS, timeout < 0 ? IDLE_EXIT_MS : timeout);
		atomic_store(&sleeping, 0);

		pthread_mutex_lock(&active_lock);
		now = cp_now_ns();
		for (int i = 0; i < n; i++) {
			if (evs[i].data.ptr == NULL) { /* the eventfd: new work was handed over */
				uint64_t v;
				(void)read(atomic_load(&evfd), &v, sizeof v);
			}
		}
		adopt_pending(now);
		for (int i = 0; i < n; i++)
			if (evs[i].data.ptr != NULL)
				on_readable(evs[i].data.ptr, now);
		bool idle = n == 0 && timeout < 0 && active == NULL;
		if (idle) {
			/* exit, unless a hand-over raced with the decision (it saw running == 1) */
			atomic_store(&running, 0);
			int expected = 0;
			if (atomic_load(&pending) == NULL ||
			    !atomic_compare_exchange_strong(&running, &expected, 1)) {
				pthread_mutex_unlock(&active_lock);
				return NULL;
			}
		}
		pthread_mutex_unlock(&active_lock);
	}
}

static int make_fds(void)
{
	if (atomic_load(&epfd) >= 0 && atomic_load(&evfd) >= 0)
		return 0;
	int ep = epoll_create1(EPOLL_CLOEXEC);
	int ev = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (ep < 0 || ev < 0) {
		/* not marked as the shim's yet: cp_ownfd_close would leave them open, leaked in the
		 * program's range */
		int err = errno;
		if (ep >= 0)
			cp_real_close(ep);
		if (ev >= 0)
			cp_real_close(ev);
		errno = err;
		return atomic_load(&epfd) >= 0 ? 0 : -1;
	}
	int ep_high = cp_ownfd_move_high(ep), ev_high = cp_ownfd_move_high(ev);
	if (ep_high >= 0)
		ep = ep_high;
	else
		cp_ownfd_mark(ep);
	if (ev_high >= 0)
		ev = ev_high;
	else
		cp_ownfd_mark(ev);
	struct epoll_event e = { .events = EPOLLIN, .data.ptr = NULL };
	if (cp_real_epoll_ctl(ep, EPOLL_CTL_ADD, ev, &e) < 0)
		goto fail;
	int none = -1;
	if (!atomic_compare_exchange_strong(&epfd, &none, ep))
		goto fail; /* another thread made them first */
	atomic_store(&evfd, ev);
	return 0;
fail:
	if (ep >= 0)
		cp_ownfd_close(ep);
	if (ev >= 0)
		cp_ownfd_close(ev);
	return atomic_load(&epfd) >= 0 ? 0 : -1;
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
	if (atomic_load(&running) != 0 || !atomic_compare_exchange_strong(&running, &expected, 1))
		return 0;
	int rc = start_thread();
	if (rc == 0)
		return 0;
	atomic_store(&running, 0);
	cp_event_error(prog_fd, "cannot start the drainer thread", rc, "drained synchronously");
	return -1;
}

int cp_drain_start(struct cp_sock *s, int fd, int prog_fd)
{
	struct cp_drain *d = &s->drain;
	d->fd = fd;
	d->prog_fd = prog_fd;
	d->bytes = 0;
	d->start_ns = d->last_ns = cp_now_ns();
	if (make_fds() < 0) {
		cp_event_error(prog_fd, "cannot create the drainer's epoll set and eventfd", errno,
			       "drained before close returned");
		return -1;
	}
	if (ensure_thread(prog_fd) < 0)
		return -1;
	struct cp_sock *head = atomic_load(&pending);
	do
		s->link = head;
	while (!atomic_compare_exchange_weak(&pending, &head, s));
	/* The thread may have decided to exit just before the push (it clears `running`, then looks
	 * at `pending`; we push, then look at `running`): one of us sees the other. Should a new
	 * thread fail to start here, the socket waits for the next start or the exit path. */
	if (atomic_load(&running) == 0)
		(void)ensure_thread(prog_fd);
	/* A busy drainer finds the socket on its next round: no system call here. The raw syscall
	 * because the shim's own writes never go through its wrappers. */
	if (atomic_exchange(&sleeping, 0)) {
		uint64_t one = 1;
		(void)syscall(SYS_write, atomic_load(&evfd), &one, sizeof one);
	}
	return 0;
}

bool cp_drain_fd_moved(int from, int to)
{
	/* under the lock, the thread is not between reading a number and using it (but for its
	 * epoll_wait, which then fails once and comes round with the new number) */
	pthread_mutex_lock(&active_lock);
	int f = from, g = from;
	bool found = atomic_compare_exchange_strong(&epfd, &f, to) ||
		     atomic_compare_exchange_strong(&evfd, &g, to);
	for (struct cp_drain *d = active; d != NULL && !found; d = d->next)
		if (d->fd == from)
			d->fd = to, found = true;
	/* handed over, not adopted yet: only pushes happen meanwhile, in front of what is read */
	for (struct cp_sock *s = atomic_load(&pending); s != NULL && !found; s = s->link)
		if (s->drain.fd == from)
			s->drain.fd = to, found = true;
	pthread_mutex_unlock(&active_lock);
	return found;
}

/* ---- exit ---- */

/* Time is up: what is still draining is left to the kernel's close, read one last time so that
 * close sends FIN, not RST. Only if the drainer is not in the middle of a round (trylock: the
 * exit path never waits for a lock). */
static void cut_at_exit(uint64_t now)
{
	if (pthread_mutex_trylock(&active_lock) != 0)
		return;
	adopt_pending(now);
	for (struct cp_drain *d = active; d != NULL; d = d->next) {
		int err = 0;
		(void)cp_drain_discard(d->fd, &d->bytes, &err);
		cp_event_drain(sock_of(d), d->prog_fd, d->bytes, "exit", (now - d->start_ns) / 1000000u, err);
	}
	active = NULL; /* the process is ending: the descriptors go with it */
	pthread_mutex_unlock(&active_lock);
}

void cp_drain_finish_at_exit(uint64_t deadline_ns)
{
	atomic_store(&exit_waiting, 1);
	for (;;) {
		unsigned n = atomic_load(&in_progress);
		uint64_t now = cp_now_ns();
		if (n == 0)
			return;
		if (now >= deadline_ns) {
			cut_at_exit(now);
			return;
		}
		uint64_t left = deadline_ns - now;
		struct timespec ts = { .tv_sec = (time_t)(left / 1000000000u), .tv_nsec = (long)(left % 1000000000u) };
		futex(&in_progress, FUTEX_WAIT_PRIVATE, n, &ts);
	}
}

/* ---- fork ---- */

bool cp_drain_untouched(void)
{
	return atomic_load(&running) == 0 && atomic_load(&epfd) < 0 && atomic_load(&evfd) < 0 &&
	       atomic_load(&in_progress) == 0 && atomic_load(&pending) == NULL;
}

void cp_drain_atfork_prepare(void)
{
	pthread_mutex_lock(&active_lock);
}

void cp_drain_atfork_parent(void)
{
	pthread_mutex_unlock(&active_lock);
}

void cp_drain_atfork_child(void)
{
	/* The child's copies would keep half-closed sockets alive until it exits: close them. The
	 * sockets stay the parent's to finish. */
	/* (each written only when set: every page written here is copied in every child) */
	for (struct cp_drain *d = active, *n; d != NULL; d = n) {
		n = d->next;
		cp_ownfd_close(d->fd);
	}
	if (active != NULL)
		active = NULL;
	if (atomic_load(&pending) != NULL)
		for (struct cp_sock *s = atomic_exchange(&pending, NULL); s != NULL; s = s->link)
			cp_ownfd_close(s->drain.fd);
	/* the epoll set is the parent's open file: never touch it from here */
	int ep = atomic_load(&epfd) >= 0 ? atomic_exchange(&epfd, -1) : -1;
	int ev = atomic_load(&evfd) >= 0 ? atomic_exchange(&evfd, -1) : -1;
	if (ep >= 0)
		cp_ownfd_close(ep);
	if (ev >= 0)
		cp_ownfd_close(ev);
	if (atomic_load(&running) != 0)
		atomic_store(&running, 0);
	if (atomic_load(&in_progress) != 0)
		atomic_store(&in_progress, 0);
	pthread_mutex_unlock(&active_lock);
}
