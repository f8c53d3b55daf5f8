/* closepolicy — last-reference semantics (see refs.h). */
#include "shim/refs.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/config.h"
#include "shim/fdtable.h"
#include "shim/real.h"
#include "shim/shtable.h"
#include "shim/sockinfo.h"

#define TLS __thread __attribute__((tls_model("initial-exec")))

static bool tracking = true;
static bool policy_can_act;

/* ---- the gate ---- */

static atomic_uint readers;   /* threads between enter and leave */
static atomic_int held_off;   /* 1 while a fork/exec/spawn counts (futex word) */
static atomic_uint epoch;
static TLS unsigned depth;    /* nesting in this thread (a signal handler inside a close) */
static TLS bool exclusive;    /* this thread holds the gate closed */
static TLS bool in_fork_wrapper, fork_counted;
static TLS unsigned fork_epoch;

static void futex_wait(atomic_int *w, int val)
{
	(void)cp_real_syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(atomic_int *w)
{
	(void)cp_real_syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

void cp_refs_gate_enter(void)
{
	if (depth++ > 0 || exclusive)
		return;
	for (;;) {
		atomic_fetch_add(&readers, 1);
		if (atomic_load(&held_off) == 0)
			return;
		atomic_fetch_sub(&readers, 1);
		futex_wait(&held_off, 1);
	}
}

void cp_refs_gate_leave(void)
{
	if (--depth > 0 || exclusive)
		return;
	atomic_fetch_sub(&readers, 1);
}

unsigned cp_refs_hold_off(void)
{
	int open = 0;
	while (!atomic_compare_exchange_strong(&held_off, &open, 1)) { /* another fork is counting */
		futex_wait(&held_off, 1);
		open = 0;
	}
	/* a fork from a signal handler that interrupted this thread inside the gate: itself */
	unsigned mine = depth > 0 ? 1 : 0;
	while (atomic_load(&readers) != mine)
		sched_yield(); /* readers never block inside: a few microseconds at most */
	exclusive = true;
	return atomic_fetch_add(&epoch, 1) + 1;
}

void cp_refs_resume(void)
{
	exclusive = false;
	atomic_store(&held_off, 0);
	futex_wake_all(&held_off);
}

/* ---- counting ---- */

void cp_refs_init(const struct cp_policy *p)
{
	const char *off = secure_getenv("CLOSEPOLICY_TEST_NO_SHARED_REFS");
	tracking = !(off != NULL && strcmp(off, "1") == 0);
	for (size_t i = 0; i < p->n_rules; i++)
		if (p->rules[i].action != CP_ACTION_PASSTHROUGH || p->rules[i].on_exit != CP_ACTION_PASSTHROUGH)
			policy_can_act = true;
}

void cp_refs_policy_can_act(void)
{
	__atomic_store_n(&policy_can_act, true, __ATOMIC_RELAXED);
}

bool cp_refs_tracking(void)
{
	return tracking;
}

/* What the release of this process's last descriptor of s means. A socket given away keeps its
 * count in the shared table: the receiver holds it where the shim cannot see, so the other
 * processes that hold it must never come to act on it either. */
static enum cp_last last_in_process(struct cp_sock *s)
{
	if (!tracking)
		return CP_LAST;
	if (atomic_load_explicit(&s->given_away, memory_order_relaxed))
		return CP_GIVEN_AWAY;
	if (s->unknown_holders)
		return CP_LAST_UNKNOWN;
	if (s->shared && cp_sht_add(s->slot, -1) > 0)
		return CP_HELD_ELSEWHERE;
	return CP_LAST;
}

enum cp_last cp_refs_release(struct cp_sock *s)
{
	if (!cp_sock_unref_is_last(s))
		return CP_NOT_LAST;
	return last_in_process(s);
}

enum cp_last cp_refs_release_at_exit(struct cp_sock *s)
{
	/* every descriptor of s gives the same answer: the first one decides */
	if (atomic_exchange(&s->exit_released, true))
		return CP_NOT_LAST;
	cp_refs_gate_enter();
	enum cp_last last = last_in_process(s);
	cp_refs_gate_leave();
	return last;
}

bool cp_refs_share(struct cp_sock *s, int fd)
{
	if (s->unknown_holders)
		return false;
	if (!policy_can_act) { /* nothing will ever act: counting would be wasted */
		s->unknown_holders = true;
		return false;
	}
	if (s->shared) {
		cp_sht_add(s->slot, 1);
		return true;
	}
	/* a rule that never acts took no cookie at accept/connect; a new image may match one */
	if (s->cookie == 0)
		s->cookie = cp_info_cookie(fd);
	int slot = s->cookie != 0 && cp_sht_ensure() == 0 ? cp_sht_insert(s->cookie, 2) : -1;
	if (slot < 0) {
		s->unknown_holders = true;
		return false;
	}
	s->slot = slot;
	s->shared = true;
	return true;
}

/* Once per socket in a pass: a socket with one descriptor is seen once anyway; only the others
 * are stamped. Writing to every object would cost a page fault per page of objects at every
 * fork (the parent's pages are write-protected by the previous fork). */
static bool first_sight(struct cp_sock *s, unsigned e)
{
	if (atomic_load_explicit(&s->refs, memory_order_relaxed) <= 1)
		return true;
	if (s->ref_epoch == e)
		return false;
	s->ref_epoch = e;
	return true;
}

/* One socket (seen through descriptor fd) goes to the child as well. */
static void count_for_child(int fd, struct cp_sock *s, void *arg)
{
	if (s == CP_SOCK_SHIM || !first_sight(s, *(unsigned *)arg))
		return;
	if (s->kind == CP_KIND_TCP) {
		/* not connected yet: whichever process connects it, the other may hold it */
		if (!s->unknown_holders)
			s->unknown_holders = true;
		return;
	}
	if (s->kind == CP_KIND_TCP_CONN)
		(void)cp_refs_share(s, fd);
}

/* The fork failed: take back what count_for_child added (the gate was held all along, so the
 * same sockets are there, each shared now unless it could not be counted). */
static void uncount(int fd, struct cp_sock *s, void *arg)
{
	(void)fd;
	if (s == CP_SOCK_SHIM || !first_sight(s, *(unsigned *)arg))
		return;
	if (s->kind == CP_KIND_TCP_CONN && s->shared && !s->unknown_holders)
		cp_sht_add(s->slot, -1);
}

void cp_refs_fork_prepare(void)
{
	if (!tracking)
		return;
	fork_epoch = cp_refs_hold_off();
	fork_counted = true;
	cp_fd_foreach(0, ~0U, count_for_child, &fork_epoch);
}

void cp_refs_fork_parent(void)
{
	/* The fork wrapper sees whether fork failed and undoes the counts first; a glibc-internal
	 * fork (daemon()) cannot be seen failing: its counts stay, and those sockets are then never
	 * acted on (the safe side). */
	if (fork_counted && !in_fork_wrapper) {
		fork_counted = false;
		cp_refs_resume();
	}
}

void cp_refs_fork_child(void)
{
	/* the child is single-threaded: no one else is inside the gate */
	if (!fork_counted)
		return;
	fork_counted = false;
	exclusive = false;
	atomic_store(&readers, depth > 0 ? 1 : 0);
	atomic_store(&held_off, 0);
}

pid_t cp_fork(void)
{
	cp_init_ensure(); /* the atfork handlers are registered there */
	in_fork_wrapper = true;
	pid_t pid = cp_real_fork();
	in_fork_wrapper = false;
	if (pid != 0 && fork_counted) {
		int saved = errno;
		fork_counted = false;
		if (pid < 0) {
			unsigned e = atomic_fetch_add(&epoch, 1) + 1;
			cp_fd_foreach(0, ~0U, uncount, &e);
		}
		cp_refs_resume();
		errno = saved;
	}
	return pid;
}
