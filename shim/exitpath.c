/* closepolicy — process exit (see exitpath.h).
 *
 * exit() and return from main reach the destructor below, after the program's atexit handlers;
 * _exit() and _Exit() reach cp_exit_run() from their wrappers, since they skip destructors. The
 * kernel's own close of everything at exit is what the program would get without the shim:
 * each socket whose rule says otherwise is closed here first, by its on_exit. */
#include "shim/exitpath.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdio.h>

#include "shim/close.h"
#include "shim/counters.h"
#include "shim/config.h"
#include "shim/drainer.h"
#include "shim/quiet.h"
#include "shim/events.h"
#include "shim/fdtable.h"
#include "shim/hot.h"
#include "shim/real.h"
#include "shim/refs.h"
#include "shim/errsave.h"

#define EXIT_SET_MAX 4096 /* graceful closes drained side by side; beyond, one last read each */

struct exit_drain {
	int fd;
	struct cp_sock *s;
	uint64_t start_ns, last_ns, bytes;
};

/* The first few drains, and their poll entries, on the page of the descriptor table's first
 * entries, which the exit path writes anyway (hot.h): a forking server's child that drains its
 * connection at exit writes no other page of the set (two faults, where each child has ~40). */
#define EXIT_SET_NEAR 4

struct cp_exit_set {
	uint64_t deadline_ns;
	size_t n;
	struct exit_drain near[EXIT_SET_NEAR];
	struct pollfd p_near[EXIT_SET_NEAR];
};

/* Static, not on the stack or the heap: the exit path allocates nothing. */
static struct cp_exit_set exit_set CP_HOT_DATA(00);
static struct {
	struct exit_drain d[EXIT_SET_MAX - EXIT_SET_NEAR];
	struct pollfd p[EXIT_SET_MAX];
} exit_far;

static struct exit_drain *drain_at(struct cp_exit_set *set, size_t i)
{
	return i < EXIT_SET_NEAR ? &set->near[i] : &exit_far.d[i - EXIT_SET_NEAR];
}
/* On the page of the descriptor table's first entries, which the exit path writes anyway: a
 * forked child that exits with connections copies one page for both (hot.h). */
static atomic_int exit_started CP_HOT_DATA(00);

/* Sockets left as they are (passthrough) at exit: the kernel's close at exit is the close the
 * program gets without the shim, and a close here would be one system call more per process
 * (a forking server's child, every connection). Closed here only before something that waits
 * (a drain, a lingering close), so that nothing holds them open longer than without the shim. */
#define LEFT_OPEN_MAX 64
static struct {
	unsigned n;
	int fd[LEFT_OPEN_MAX];
} left_open CP_HOT_DATA(00);

/* The end of the wait, from the clock's first reading: a process that exits with nothing to act
 * on never reads it (a forked child would fault the clock's pages in for nothing). */
static uint64_t deadline_of(struct cp_exit_set *set)
{
	if (set->deadline_ns == 0)
		set->deadline_ns = cp_now_ns() + (uint64_t)cp_cfg.policy->exit_wait_ms * 1000000u;
	return set->deadline_ns;
}

int cp_exit_linger_s(const struct cp_exit_set *set, uint32_t linger_s)
{
	(void)set; /* the only set there is */
	uint64_t now = cp_now_ns(), end = deadline_of(&exit_set);
	uint64_t left_s = end > now ? (end - now + 999999999u) / 1000000000u : 1;
	return (int)(linger_s < left_s ? linger_s : left_s);
}

CP_CHILD static void finish(struct cp_exit_set *set, size_t i, const char *outcome, bool eof, int err,
			    uint64_t now)
{
	struct exit_drain *d = drain_at(set, i);
	cp_event_drain(d->s, d->fd, d->bytes, outcome, (now - d->start_ns) / 1000000u, err);
	/* At EOF nothing is unread and nothing more can come, and the FIN is sent (the drain's
	 * shutdown, or the program's): the kernel's close at exit puts nothing different on the wire,
	 * and the number is often one of several for the socket (inetd-style, busybox: 0 and 1), so
	 * the close would only be a system call more per connection. Closed here where it can
	 * matter: unread data (its close sends RST), a reset, a drain cut short. */
	if (!eof)
		cp_real_close(d->fd);
	cp_sock_release(d->s);
	*d = *drain_at(set, --set->n);
}

CP_CHILD void cp_exit_leave_open(struct cp_exit_set *set, int fd)
{
	(void)set; /* the only set there is */
	if (left_open.n < LEFT_OPEN_MAX)
		left_open.fd[left_open.n++] = fd;
	else
		cp_real_close(fd);
}

void cp_exit_close_left_open(struct cp_exit_set *set)
{
	(void)set;
	for (unsigned i = 0; i < left_open.n; i++)
		cp_real_close(left_open.fd[i]);
	left_open.n = 0;
}

CP_CHILD void cp_exit_set_add(struct cp_exit_set *set, int fd, struct cp_sock *s, bool verified)
{
	cp_exit_close_left_open(set);
	if (!verified && !cp_sock_still_registered(fd, s)) { /* another file has the number now: only close */
		cp_real_close(fd);
		cp_sock_release(s);
		return;
	}
	cp_drain_prepare(fd, s);
	uint64_t now = cp_now_ns();
	*drain_at(set, set->n++) = (struct exit_drain){ .fd = fd, .s = s, .start_ns = now, .last_ns = now };
	if (set->n == EXIT_SET_MAX) {
		/* full: one last read, so the kernel's close sends FIN rather than RST */
		int err = 0;
		int got = cp_drain_discard(fd, &drain_at(set, set->n - 1)->bytes, &err);
		finish(set, set->n - 1, got > 0 ? "eof" : got < 0 ? "reset" : "exit", got > 0, err, now);
	}
}

/* When the drain of d ends by time (0 = not yet), and which end it is. */
static uint64_t time_end(struct cp_exit_set *set, const struct exit_drain *d, const char **outcome)
{
	const struct cp_rule *r = d->s->rule;
	uint64_t idle_end = d->last_ns + (uint64_t)r->drain_timeout_ms * 1000000u;
	uint64_t max_end = d->start_ns + (uint64_t)r->drain_max_ms * 1000000u;
	uint64_t end = idle_end < max_end ? idle_end : max_end;
	*outcome = max_end <= idle_end ? "max" : "idle";
	if (deadline_of(set) <= end) {
		end = set->deadline_ns;
		*outcome = "exit";
	}
	return end;
}

/* Read and discard on every socket of the set until each reaches EOF or its time is up. */
static void drain_set(struct cp_exit_set *set)
{
	while (set->n > 0) {
		uint64_t now = cp_now_ns(), next = UINT64_MAX;
		for (size_t i = set->n; i-- > 0;) { /* downwards: finish() moves the last entry to i */
			struct exit_drain *d = drain_at(set, i);
			int err = 0;
			uint64_t before = d->bytes;
			int got = cp_drain_discard(d->fd, &d->bytes, &err);
			if (d->bytes != before)
				d->last_ns = now;
			const char *outcome;
			uint64_t end = time_end(set, d, &outcome);
			if (got != 0)
				finish(set, i, got > 0 ? "eof" : "reset", got > 0, err, now);
			else if (end <= now)
				finish(set, i, outcome, false, 0, now);
			else if (end < next)
				next = end;
		}
		struct pollfd *p = set->n <= EXIT_SET_NEAR ? set->p_near : exit_far.p;
		for (size_t i = 0; i < set->n; i++)
			p[i] = (struct pollfd){ .fd = drain_at(set, i)->fd, .events = POLLIN | POLLRDHUP };
		if (set->n > 0) {
			uint64_t ms = (next - now + 999999u) / 1000000u;
			(void)poll(p, set->n, ms > INT_MAX ? INT_MAX : (int)ms);
		}
	}
}

static void at_exit_last(int fd, void *arg)
{
	cp_close_at_exit(fd, arg);
}

CP_CHILD static void at_exit_entry(int fd, struct cp_sock *s, void *arg)
{
	if (s != CP_SOCK_SHIM && s->kind == CP_KIND_TCP_CONN)
		cp_close_at_exit(fd, arg);
}

/* one whose holders cannot be known is never acted on, at exit either (refs.h) */
CP_CHILD static bool actionable_connection(const struct cp_sock *s)
{
	return s->kind == CP_KIND_TCP_CONN && !s->unknown_holders;
}

/* A process with no connection it could act on and no drain (a forked child that never used
 * one, any child under a policy that never acts) writes nothing here and asks nothing of the
 * kernel: every page it wrote would be copied. */
CP_CHILD static bool has_work(void)
{
	if (!cp_fd_ever_held_socket()) /* then no drain was ever started either */
		return false;
	return cp_fd_any(actionable_connection) || !cp_drain_untouched();
}

/* The lines log.rate held back, and the counters file: every process that has them. Asked
 * first on pages the exit path has read already: a forked child without either touches no
 * page more (each would be a fault). */
CP_CHILD static void say_goodbye(void)
{
	const struct cp_policy *p = cp_cfg.policy;
	if (p->log.rate != 0)
		cp_quiet_at_exit();
	if (cp_fd_ever_held_socket()) /* a counters file is made at the first TCP socket */
		cp_ctr_at_exit();
}

CP_CHILD void cp_exit_run(void)
{
	if (cp_cfg.policy == NULL)
		return;
	int saved = errno;
	if (has_work() && !atomic_exchange(&exit_started, 1)) {
		struct cp_exit_set *set = &exit_set; /* empty: the exit path runs once per process */
		if (!cp_refs_release_given(at_exit_last, set))
			cp_fd_foreach(0, UINT_MAX, at_exit_entry, set);
		if (set->n > 0 || !cp_drain_untouched())
			cp_exit_close_left_open(set);
		drain_set(set);
		if (!cp_drain_untouched())
			cp_drain_finish_at_exit(deadline_of(set));
	}
	say_goodbye();
	cp_errno_restore(saved);
}

/* Flush a standard stream unless another thread holds it (one blocked reading stdin, say):
 * fflush(NULL) would wait for every stream's lock, where exit() itself takes none. */
static void flush_unless_busy(FILE *f)
{
	if (ftrylockfile(f) == 0) {
		fflush_unlocked(f);
		funlockfile(f);
	}
}

/* exit() and return from main. exit() flushes stdio only after the destructors have run, and a
 * program's stdout may be one of the sockets closed here (inetd, CGI): flush stdout and stderr
 * first, as exit() was about to. (_exit() does not flush, and neither does its path here.) */
CP_CHILD __attribute__((destructor)) static void cp_exit_destructor(void)
{
	if (cp_cfg.policy != NULL && atomic_load(&exit_started) == 0 && has_work()) {
		flush_unless_busy(stdout);
		flush_unless_busy(stderr);
	}
	cp_exit_run();
}
