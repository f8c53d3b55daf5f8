/* closepolicy — the close path (see close.h).
 *
 * Order matters everywhere here: the table entry is taken (atomic exchange) before anything
 * else, so the number carries no state once the real close releases it; epoll registrations are
 * deleted while the program's number still names the socket; the shim's own copy is taken
 * before the program's number goes. */
#include "shim/close.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/close_range.h>
#include <stdatomic.h>
#include <sys/socket.h>

#include "shim/actions.h"
#include "shim/config.h"
#include "shim/counters.h"
#include "shim/drainer.h"
#include "shim/drainnow.h"
#include "shim/events.h"
#include "shim/exitpath.h"
#include "shim/fdtable.h"
#include "shim/hot.h"
#include "shim/log.h"
#include "shim/ownfd.h"
#include "shim/real.h"
#include "shim/refs.h"
#include "shim/sockinfo.h"
#include "shim/errsave.h"

/* The program's number goes: with close(), or not at all when the caller releases it.
 * At process exit (`exiting`), on_exit decides instead of action, and graceful closes join
 * the exit path's drain set instead of the background drainer. */
struct release {
	bool real;
	int ret, err;
	struct cp_exit_set *exiting;
	bool verified; /* the exit path found the number still the socket just now (one check) */
};

static void release_number(int fd, struct release *r)
{
	if (!r->real)
		return;
	r->ret = cp_real_close(fd);
	r->err = r->ret < 0 ? errno : 0;
}

/* The whole graceful close in the calling thread: past max_draining, or when the shim cannot
 * hand the socket over. fd is the socket (the program's number, or the shim's copy once the
 * program's is gone); prog_fd the number the program closed, for the log. */
static void drain_here(int fd, int prog_fd, struct cp_sock *s, struct release *r)
{
	int err = 0;
	uint64_t bytes = 0, t0 = cp_now_ns();
	cp_drain_prepare(fd, s);
	const char *outcome = cp_drain_sync(fd, s->rule, &bytes, &err);
	cp_event_drain(s, prog_fd, bytes, outcome, (cp_now_ns() - t0) / 1000000u, err);
	release_number(fd, r);
	cp_sock_release(s);
}

/* Remove the program's epoll registrations of fd. False when one cannot be removed: it was made
 * through another descriptor of the socket that is closed already (epoll keys on the number and
 * the open file, so only the kernel's final release of the file removes it). */
static bool forget_epoll(int fd, struct cp_sock *s)
{
	bool all = !s->epreg_overflow;
	for (unsigned i = 0; i < s->n_epreg; i++) {
		if (s->epreg[i].fd == fd)
			cp_real_epoll_ctl(s->epreg[i].epfd, EPOLL_CTL_DEL, fd, NULL);
		else
			all = false;
	}
	s->n_epreg = 0;
	return all;
}

/* Peeking costs a call on every close and saves three (shutdown, copy, the drainer's read) where
 * the peer closed first: worth it while at least a third of peeks find the peer gone. A score over
 * recent peeks decides (+8 for a hit, -4 for a miss); at zero, one close in 64 peeks again, to
 * notice when the ending changes. (At level info, TCP_INFO answers the same question for free.) */
static atomic_int peek_score = 16;
static atomic_uint peek_skipped;

static bool peek_worth_it(void)
{
	return atomic_load_explicit(&peek_score, memory_order_relaxed) > 0 ||
	       (atomic_fetch_add_explicit(&peek_skipped, 1, memory_order_relaxed) & 63) == 0;
}

static void peek_learn(bool hit)
{
	int v = atomic_load_explicit(&peek_score, memory_order_relaxed);
	v = hit ? (v > 56 ? 64 : v + 8) : (v < 4 ? 0 : v - 4);
	atomic_store_explicit(&peek_score, v, memory_order_relaxed); /* a lost update is harmless */
}

/* The states in which the peer has sent its FIN (or reset): nothing more can arrive. */
static bool peer_finished(uint8_t state)
{
	return state == CP_TCP_CLOSE_WAIT || state == CP_TCP_CLOSE || state == 6 /* TIME_WAIT */ ||
	       state == 9 /* LAST_ACK */ || state == 11 /* CLOSING */;
}

/* The close line's facts: TCP_INFO (state, counters, unsent), SIOCINQ (unread), and only the
 * addresses accept/connect did not give. */
static void close_facts(int fd, struct cp_sock *s, struct cp_close_facts *c)
{
	c->unread = cp_info_unread(fd);
	cp_info_summary(fd, &c->tcp);
	c->unsent = c->tcp.unsent >= 0 ? c->tcp.unsent : cp_info_unsent(fd);
	if (!s->facts_known) {
		cp_info_facts_missing(fd, &s->facts);
		s->facts_known = true;
	}
	if (s->born_ns != 0)
		c->age_ms = (cp_now_ns() - s->born_ns) / 1000000u;
}

/* Not handed over: the close line now (the drain writes its own). */
static void log_close_now(const struct cp_close_facts *c, bool log_close)
{
	if (log_close)
		cp_event_close(c);
}

static void handed_over_note(struct cp_sock *s, const struct cp_close_facts *c, bool log_close)
{
	struct cp_close_note *n = &s->drain.note;
	n->pending = log_close;
	if (!log_close)
		return;
	n->action = (uint8_t)c->action;
	n->tid = cp_log_tid();
	n->ts_us = cp_log_now_us();
	n->unread = c->unread;
	n->unsent = c->unsent;
	n->age_ms = c->age_ms;
	n->tcp = c->tcp;
}

/* The graceful close: close() sends the FIN itself (shutdown), moves the socket to a number of
 * the shim's and lets the program's number go; the drainer reads it a tick later, when most
 * peers have answered, and closes it. Where the peer has closed already and nothing is unread,
 * the plain close is graceful as it is.
 * No identity check here: shutdown answers ENOTSOCK when another kind of file took the number
 * after a close the shim did not see, and then the close is a plain one; another
 * connected socket that took it ends as this one would (every byte, then FIN) — what the
 * program asked for by closing it — unless a holder the shim saw neither dup nor fork nor send
 * shares it (refs.h counts those on the entry). */
static void graceful(int fd, struct cp_sock *s, struct cp_close_facts *c, bool log_close, struct release *r)
{
	cp_ctr_close(c);
	bool peer_gone = false;
	if (log_close) {
		close_facts(fd, s, c);
		peer_gone = c->tcp.valid && c->unread == 0 && peer_finished(c->tcp.state);
	} else if (peek_worth_it()) {
		char byte;
		peer_gone = recv(fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT) == 0;
		peek_learn(peer_gone);
	}
	bool linger0 = atomic_load(&s->linger0); /* the policy's graceful close wins over the program's RST */
	if (peer_gone) {
		if (linger0)
			cp_act_linger(fd, 0, 0);
		if (log_close) { /* both lines in one write */
			char buf[CP_LOG_LINE_MAX];
			struct cp_log_batch two = { buf, sizeof buf, 0 };
			handed_over_note(s, c, true);
			cp_event_close_note(s, fd, &s->drain.note, &two);
			cp_event_drain_into(&two, s, fd, 0, "eof", 0, 0);
			cp_log_batch_flush(&two);
		} else { /* counted all the same: the close was counted as a drain begun */
			cp_event_drain(s, fd, 0, "eof", 0, 0);
		}
		release_number(fd, r);
		cp_sock_release(s);
		return;
	}
	if (!cp_drain_reserve()) { /* max_draining reached */
		log_close_now(c, log_close);
		return drain_here(fd, fd, s, r);
	}
	if (!forget_epoll(fd, s)) {
		cp_drain_unreserve();
		log_close_now(c, log_close);
		cp_event_error(fd, "an epoll registration of this socket was made through a descriptor "
				   "closed earlier and cannot be removed",
			       0, "drained before close returned");
		return drain_here(fd, fd, s, r);
	}
	if (linger0)
		cp_act_linger(fd, 0, 0);
	if (!atomic_load(&s->shut_wr)) {
		int err = cp_act_shutdown_wr(fd);
		if (err == ENOTSOCK) { /* not a socket any more: nothing to drain */
			cp_event_stale(fd, s, "the table's entry is stale: this number is no longer a socket "
					      "(closed by a route the shim does not see); only closed");
			cp_drain_unreserve();
			log_close_now(c, log_close);
			release_number(fd, r);
			cp_sock_release(s);
			return;
		}
		if (err != 0 && err != ENOTCONN) /* ENOTCONN: reset; the drainer reads how it ended */
			cp_event_error(fd, "shutdown(SHUT_WR) failed", err, "went on draining");
	}
	int copy = cp_ownfd_dup_high(fd);
	if (copy < 0) {
		cp_drain_unreserve();
		log_close_now(c, log_close);
		cp_event_error(fd, "no descriptor for a background drain", errno,
			       "drained before close returned");
		return drain_here(fd, fd, s, r);
	}
	handed_over_note(s, c, log_close);
	release_number(fd, r);
	if (cp_drain_start(s, copy, fd) < 0) {
		cp_drain_unreserve();
		if (s->drain.note.pending)
			cp_event_close_note(s, fd, &s->drain.note, NULL);
		drain_here(copy, fd, s, &(struct release){ .real = false });
		cp_ownfd_close(copy);
	}
}

static const char *const UNREAD_RISK =
	"data left unread: the kernel answers the close with RST and the peer may lose data it has "
	"not read yet";

/* Take fd's entry and drop its reference, with forks held off (refs.h): the socket, NULL when
 * fd has no entry, CP_SOCK_SHIM (entry kept) when it is the shim's own. */
static struct cp_sock *take(int fd, enum cp_last *last)
{
	cp_refs_gate_enter();
	struct cp_sock *s = cp_fd_take(fd), *old;
	if (s == CP_SOCK_SHIM)
		cp_fd_put(fd, s, &old);
	else if (s != NULL)
		*last = cp_refs_release(s);
	cp_refs_gate_leave();
	return s;
}

/* Why a close leaves the socket to others, for the debug line (NULL: this one decides). */
static const char *held_by(enum cp_last last)
{
	if (last == CP_NOT_LAST)
		return "held elsewhere: another descriptor of this process still holds the socket";
	if (last == CP_HELD_ELSEWHERE)
		return "held elsewhere: another process still holds the socket";
	return NULL;
}

/* A plain close that leaves the socket to its other holders: visible at debug level, so a policy
 * that did not act can be seen not acting. */
CP_CHILD static void log_held(int fd, const struct cp_sock *s, enum cp_last last, bool exiting)
{
	if (s->kind != CP_KIND_TCP_CONN || !cp_log_enabled(CP_LEVEL_DEBUG))
		return;
	const struct cp_rule *rule = s->rule;
	struct cp_close_facts c = { .fd = fd, .sock = s, .message = held_by(last) };
	c.action = rule ? (exiting ? rule->on_exit : rule->action) : CP_ACTION_PASSTHROUGH;
	cp_event_close_held(&c);
}

static const char *const GIVEN_AWAY =
	"given away: sent to another process over a UNIX socket (SCM_RIGHTS), which holds it where "
	"the shim cannot count; closed as without the shim";

/* A descriptor of socket s is going, and `last` says whether it was the socket's last in every
 * process: decide and act. */
CP_CHILD static void close_socket(int fd, struct cp_sock *s, enum cp_last last, struct release *r)
{
	const struct cp_rule *rule = s->rule;
	if (held_by(last) != NULL) {
		log_held(fd, s, last, r->exiting != NULL);
		release_number(fd, r);
		if (last == CP_HELD_ELSEWHERE)
			cp_sock_release(s);
		return;
	}
	if (s->kind != CP_KIND_TCP_CONN) { /* never connected, or listening: nothing to do */
		release_number(fd, r);
		cp_sock_release(s);
		return;
	}

	struct cp_close_facts c = { .fd = fd, .sock = s, .dry_run = cp_cfg.dry_run, .unsent = -1 };
	c.action = rule ? (r->exiting ? rule->on_exit : rule->action) : CP_ACTION_PASSTHROUGH;
	if (r->exiting)
		c.message = "process exit (on_exit)";
	/* never shut down, drain or reset under the feet of a holder the shim cannot see */
	if (last == CP_GIVEN_AWAY) {
		c.action = CP_ACTION_PASSTHROUGH;
		c.message = GIVEN_AWAY;
	} else if (c.action != CP_ACTION_PASSTHROUGH && last == CP_LAST_UNKNOWN) {
		c.action = CP_ACTION_PASSTHROUGH;
		c.message = "other holders of this socket cannot be known: left alone";
	}
	bool rst_by_kernel = c.dry_run || c.action == CP_ACTION_PASSTHROUGH || c.action == CP_ACTION_LINGER;
	bool log_close = cp_log_enabled(rule != NULL ? CP_LEVEL_INFO : CP_LEVEL_DEBUG);
	if (c.action == CP_ACTION_GRACEFUL && !c.dry_run && !r->exiting)
		return graceful(fd, s, &c, log_close, r); /* the drain owns s from here */
	/* unread data only matters where the kernel will answer the close with RST, or for the log */
	c.unread = (rst_by_kernel && last != CP_GIVEN_AWAY) || log_close ? cp_info_unread(fd) : -1;
	/* a socket given away stays open in its receiver: this close sends nothing at all */
	bool risk_unread = c.unread > 0 && rst_by_kernel && last != CP_GIVEN_AWAY;
	bool risk_linger0 = atomic_load(&s->linger0) && (c.dry_run || c.action == CP_ACTION_PASSTHROUGH) &&
			    last != CP_GIVEN_AWAY;

	if (log_close || risk_unread || risk_linger0) {
		if (!s->facts_known)
			cp_info_facts(fd, &s->facts);
		c.unsent = cp_info_unsent(fd);
		if (s->born_ns != 0)
			c.age_ms = (cp_now_ns() - s->born_ns) / 1000000u;
	}
	if (log_close) {
		cp_info_summary(fd, &c.tcp);
		cp_event_close(&c);
	}
	if (risk_unread)
		cp_event_risk(&c, UNREAD_RISK);
	if (risk_linger0)
		cp_event_risk(&c, "SO_LINGER {on, 0} set by the program: the close sends RST");

	cp_ctr_close(&c);
	int err = 0;
	switch (c.dry_run ? CP_ACTION_PASSTHROUGH : c.action) {
	case CP_ACTION_GRACEFUL: /* at exit (before, graceful() took the others) */
		cp_exit_set_add(r->exiting, fd, s, r->verified);
		return; /* the drain owns s from here */
	case CP_ACTION_LINGER:
		if (r->exiting != NULL) /* this close may wait: none left open waits behind it */
			cp_exit_close_left_open(r->exiting);
		if (r->verified || cp_sock_still_registered(fd, s))
			err = cp_act_linger(fd, 1, r->exiting ? cp_exit_linger_s(r->exiting, rule->linger_s)
							     : (int)rule->linger_s);
		break;
	case CP_ACTION_RESET:
		if (r->verified || cp_sock_still_registered(fd, s))
			err = cp_act_linger(fd, 1, 0);
		break;
	case CP_ACTION_PASSTHROUGH:
		if (r->exiting != NULL && r->real) { /* the kernel's close at exit, as without the shim */
			cp_exit_leave_open(r->exiting, fd);
			cp_sock_release(s);
			return;
		}
		break;
	}
	if (err != 0)
		cp_event_error(fd, "cannot set SO_LINGER", err, "closed without it");
	release_number(fd, r);
	cp_sock_release(s);
}

CP_HOT int cp_close(int fd)
{
	struct cp_sock *s = cp_fd_get(fd);
	if (s == NULL) /* the hot path: not a socket the shim follows */
		return cp_real_close(fd);
	if (s == CP_SOCK_SHIM) { /* as without the shim: that number is not open for the program */
		errno = EBADF;
		return -1;
	}
	int saved = errno;
	enum cp_last last = CP_NOT_LAST;
	s = take(fd, &last);
	if (s == NULL || s == CP_SOCK_SHIM) { /* lost a race with another close of the same number */
		errno = EBADF;
		return s == NULL ? cp_real_close(fd) : -1;
	}
	struct release r = { .real = true };
	close_socket(fd, s, last, &r);
	cp_drain_service(); /* the sockets closed earlier without a thread (drainnow.h) */
	cp_errno_restore(r.ret < 0 ? r.err : saved);
	return r.ret;
}

/* At exit each socket is released once for the whole process (refs.h): its on_exit applies
 * only where this process was the last holder anywhere; other descriptors are left to the
 * kernel's close. An entry whose number no longer is the socket registered (closed by io_uring or
 * another route the shim does not see, the number perhaps taken by another file since) is
 * dropped without a word at info level: it is no close of the program's. */
CP_CHILD void cp_close_at_exit(int fd, struct cp_exit_set *set)
{
	struct cp_sock *s = cp_fd_get(fd);
	if (s == NULL || s == CP_SOCK_SHIM)
		return;
	/* Another descriptor of this socket decided for it already (busybox's children exit with
	 * the connection as stdin and stdout): this one changes nothing, and is not checked (a
	 * system call). */
	if (atomic_load_explicit(&s->exit_released, memory_order_relaxed))
		return;
	/* a socket no rule matched is only ever logged at debug level: checked only then */
	bool matters = s->rule != NULL || cp_log_enabled(CP_LEVEL_DEBUG);
	if (matters && !cp_sock_still_open_as(fd, s)) {
		cp_event_stale(fd, s, "the table's entry is stale: this number is no longer the socket "
				      "registered (closed by a route the shim does not see); dropped");
		struct cp_sock *old;
		cp_refs_gate_enter();
		if (cp_fd_take(fd) == CP_SOCK_SHIM)
			cp_fd_put(fd, CP_SOCK_SHIM, &old);
		cp_refs_gate_leave();
		return;
	}
	cp_refs_gate_enter();
	s = cp_fd_take(fd);
	enum cp_last last = CP_NOT_LAST;
	if (s == CP_SOCK_SHIM) {
		struct cp_sock *old;
		cp_fd_put(fd, s, &old);
	} else if (s != NULL) {
		last = cp_refs_release_at_exit(s);
	}
	cp_refs_gate_leave();
	if (last == CP_NOT_LAST || s == NULL || s == CP_SOCK_SHIM)
		return;
	if (last == CP_HELD_ELSEWHERE) /* the kernel's close at exit, as without the shim */
		log_held(fd, s, last, true);
	if (last == CP_LAST || last == CP_GIVEN_AWAY)
		close_socket(fd, s, last, &(struct release){ .real = true, .exiting = set, .verified = matters });
}

void cp_close_implicit(int fd)
{
	int saved = errno;
	enum cp_last last = CP_NOT_LAST;
	struct cp_sock *s = take(fd, &last);
	if (s != NULL && s != CP_SOCK_SHIM) {
		struct release r = { .real = false };
		close_socket(fd, s, last, &r);
	}
	cp_errno_restore(saved);
}

/* close_range: the policy's work for each followed socket in the range, then the real
 * close_range on the stretches between the shim's own descriptors. The stretch below a socket is
 * closed before that socket is handled, so a drain copy it takes (possibly below it, when the
 * program's numbers are above the shim's base) is never inside a stretch still to be closed. */
struct range {
	unsigned next, last;
	int flags, ret, err;
};

static void close_stretch(struct range *rg, unsigned upto)
{
	if (upto < rg->next)
		return;
	if (cp_real_close_range(rg->next, upto, rg->flags) < 0 && rg->ret == 0) {
		rg->ret = -1;
		rg->err = errno;
	}
}

static void range_entry(int fd, struct cp_sock *s, void *arg)
{
	struct range *rg = arg;
	if ((unsigned)fd < rg->next)
		return;
	if (fd > 0)
		close_stretch(rg, (unsigned)fd - 1);
	if (s == CP_SOCK_SHIM) {
		rg->next = (unsigned)fd + 1;
		return;
	}
	rg->next = (unsigned)fd;
	cp_close_implicit(fd);
}

int cp_close_range(unsigned int first, unsigned int last, int flags)
{
	if ((flags & CLOSE_RANGE_CLOEXEC) || first > last)
		return cp_real_close_range(first, last, flags);
	int saved = errno;
	struct range rg = { .next = first, .last = last, .flags = flags };
	cp_fd_foreach(first, last, range_entry, &rg);
	if (rg.next <= last && rg.next >= first)
		close_stretch(&rg, last);
	errno = rg.ret < 0 ? rg.err : saved;
	return rg.ret;
}

void cp_closefrom(int lowfd)
{
	int saved = errno;
	if (lowfd < 0)
		lowfd = 0;
	if (cp_close_range((unsigned)lowfd, ~0U, 0) < 0 && errno == ENOSYS)
		cp_real_closefrom(lowfd); /* a kernel without close_range: glibc's fallback */
	cp_errno_restore(saved);
}
