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
#include "shim/hot.h"
#include "shim/perproc.h"
#include "shim/real.h"
#include "shim/shtable.h"
#include "shim/sockinfo.h"
#include "shim/errsave.h"

#define TLS __thread __attribute__((tls_model("initial-exec")))

static bool tracking = true;

/* ---- the gate ---- */

/* Its shared state is on the per-process page (perproc.h): a fork writes it in the parent
 * without a page fault, and the child starts with it open and empty. */
#define G cp_perproc
static TLS unsigned depth;    /* nesting in this thread (a signal handler inside a close) */
static TLS bool counted_in;   /* this thread's outermost enter is one of G.readers */
/* Passes that mark sockets (ref_epoch). Not on the per-process page: a forked child inherits
 * marked objects, and its own passes must never reuse their numbers. */
static atomic_uint epoch;

/* This thread, as the gate knows it: the address of its own TLS (no system call). */
static void *self(void)
{
	return (void *)&depth;
}

static void futex_wait(atomic_int *w, int val)
{
	(void)cp_real_syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(atomic_int *w)
{
	(void)cp_real_syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

CP_CHILD void cp_refs_gate_enter(void)
{
	/* Alone, this thread cannot be racing a fork: only a fork from its own signal handler could
	 * come, and that one waits for no reader (counted_in stays false, readers at 0: they are
	 * counted only with other threads, and the C library's flag never comes back once cleared;
	 * no thread is started inside the gate). Nothing written: a forking server's parent would
	 * copy the page after every fork. */
	if (cp_single_threaded())
		return;
	if (depth++ > 0)
		return;
	for (;;) {
		atomic_fetch_add(&G.readers, 1);
		if (atomic_load(&G.held_off) == 0) {
			counted_in = true;
			return;
		}
		atomic_fetch_sub(&G.readers, 1);
		if (atomic_load(&G.holder) == self()) { /* its own pass (a close inside a hand-over) */
			counted_in = false;
			return;
		}
		int v = 1; /* say there is a waiter, then sleep while it is held */
		if (atomic_compare_exchange_strong(&G.held_off, &v, 2) || v == 2)
			futex_wait(&G.held_off, 2);
	}
}

CP_CHILD void cp_refs_gate_leave(void)
{
	if (cp_single_threaded())
		return;
	if (--depth > 0 || !counted_in)
		return;
	atomic_fetch_sub(&G.readers, 1);
}

static unsigned new_epoch(void)
{
	return atomic_fetch_add(&epoch, 1) + 1;
}

static void hold(void)
{
	int v = 0;
	if (!atomic_compare_exchange_strong(&G.held_off, &v, 1)) { /* another pass is counting */
		if (v != 2)
			v = atomic_exchange(&G.held_off, 2);
		while (v != 0) {
			futex_wait(&G.held_off, 2);
			v = atomic_exchange(&G.held_off, 2);
		}
	}
	/* a fork from a signal handler that interrupted this thread inside the gate: itself */
	unsigned mine = depth > 0 && counted_in ? 1 : 0;
	while (atomic_load(&G.readers) != mine)
		sched_yield(); /* readers never block inside: a few microseconds at most */
	atomic_store(&G.holder, self());
}

unsigned cp_refs_hold_off(void)
{
	hold();
	return new_epoch();
}

void cp_refs_resume(void)
{
	atomic_store(&G.holder, NULL);
	if (atomic_exchange(&G.held_off, 0) == 2) /* a system call only when someone waits */
		futex_wake_all(&G.held_off);
}

/* ---- counting ---- */

void cp_refs_init(void)
{
	const char *off = secure_getenv("CLOSEPOLICY_TEST_NO_SHARED_REFS");
	tracking = !(off != NULL && strcmp(off, "1") == 0);
	/* Counted under every policy, one that never acts too: the count is what tells a close that
	 * another process still holds the socket, so that the kernel sends no RST and the close
	 * logs no risk (without it, a forking server's every close in the parent warned of one). */
}

bool cp_refs_tracking(void)
{
	return tracking;
}

/* What the release of this process's last descriptor of s means. A socket given away keeps its
 * count in the shared table: the receiver holds it where the shim cannot see, so the other
 * processes that hold it must never come to act on it either. */
CP_CHILD static enum cp_last last_in_process(struct cp_sock *s)
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

CP_CHILD enum cp_last cp_refs_release(struct cp_sock *s)
{
	if (!cp_sock_unref_is_last(s))
		return CP_NOT_LAST;
	return last_in_process(s);
}

CP_CHILD enum cp_last cp_refs_release_at_exit(struct cp_sock *s)
{
	/* every descriptor of s gives the same answer: the first one decides. A socket with one
	 * descriptor, which the caller took, in a process with one thread: no other release can
	 * come, and the object is not written (a forked child that exits would copy each page of
	 * them) */
	bool alone = cp_single_threaded() && atomic_load(&s->refs) <= 1;
	if (!alone && atomic_exchange(&s->exit_released, true))
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
	if (s->shared) {
		cp_sht_add(s->slot, 1);
		return true;
	}
	/* A rule that never acts took no cookie at accept/connect. A fork's child finds the slot by
	 * its number: the cookie is asked only when an exec'd image must find it (cp_refs_cookie),
	 * a system call saved per connection of a forking server. */
	(void)fd;
	int slot = cp_sht_ensure() == 0 ? cp_sht_insert(s->cookie, 2) : -1;
	if (slot < 0) {
		s->unknown_holders = true;
		return false;
	}
	s->slot = slot;
	s->shared = true;
	return true;
}

uint64_t cp_refs_cookie(struct cp_sock *s, int fd)
{
	if (s->cookie == 0)
		s->cookie = cp_info_cookie(fd);
	if (s->shared)
		cp_sht_name(s->slot, s->cookie);
	return s->cookie;
}

/* Once per socket in a pass: a socket with one descriptor is seen once anyway; only the others
 * are stamped, with a number the pass takes when it meets the first of them. Writing to every
 * object, or to the counter, would cost a page fault per page at every fork (the parent's pages
 * are write-protected by the previous fork). */
static bool first_sight(struct cp_sock *s, unsigned *e)
{
	if (atomic_load_explicit(&s->refs, memory_order_relaxed) <= 1)
		return true;
	if (*e == 0)
		*e = new_epoch();
	if (s->ref_epoch == *e)
		return false;
	s->ref_epoch = *e;
	return true;
}

/* The sockets the last fork pass counted, as (descriptor, slot). A child that has not changed
 * its descriptor table since (the table's generation is the one the pass saw) holds exactly
 * these: at its exit it releases them from
 * this list, without reading 200 objects (a cache miss each, on the other CPU) or taking their
 * entries (a page copied). Written only when a fork gives sockets away. */
#define GIVEN_MAX 1024
/* The first few, with the count, on the page of the descriptor table's first entries: the
 * parent of a server that forks a child per connection rebuilds a list of one at each fork,
 * and its close writes that page anyway (one page copied after the fork, not two). */
#define GIVEN_NEAR 8
struct given {
	int fd, slot;
};
static struct {
	unsigned n;
	unsigned generation; /* the table as the pass saw it (fdtable.h) */
	bool overflow;
	struct given near[GIVEN_NEAR];
} gl CP_HOT_DATA(00);
static struct given given_far[GIVEN_MAX - GIVEN_NEAR];

static struct given *given_at(unsigned i)
{
	return i < GIVEN_NEAR ? &gl.near[i] : &given_far[i - GIVEN_NEAR];
}

static void note_given(int fd, int slot)
{
	if (gl.n < GIVEN_MAX)
		*given_at(gl.n++) = (struct given){ fd, slot };
	else
		gl.overflow = true;
}

CP_CHILD bool cp_refs_release_given(void (*last)(int fd, void *arg), void *arg)
{
	if (!tracking || gl.overflow)
		return false;
	/* With other threads (a library's, or the program's started since), their closes and new
	 * descriptors wait at the gate while the table is compared and the list used, and each
	 * entry released is taken: a later close of that number by them is a plain one. Alone,
	 * nothing can come between. */
	bool alone = cp_single_threaded();
	if (!alone)
		hold();
	if (cp_fd_generation() != gl.generation) {
		if (!alone)
			cp_refs_resume();
		return false;
	}
	unsigned n_last = 0;
	for (unsigned i = 0; i < gl.n; i++) {
		struct cp_sock *s = alone ? NULL : cp_fd_take(given_at(i)->fd), *old;
		if (!alone && s == NULL)
			continue; /* (the table is as the pass saw it: not reached) */
		if (cp_sht_release_if_held(given_at(i)->slot))
			continue;
		if (s != NULL) /* perhaps its last holder: released the ordinary way, which takes it */
			cp_fd_put(given_at(i)->fd, s, &old);
		if (n_last != i) /* (written only then: a page copied otherwise) */
			*given_at(n_last) = *given_at(i);
		n_last++;
	}
	if (!alone)
		cp_refs_resume();
	for (unsigned i = 0; i < n_last; i++) /* outside the gate: the ordinary way may drain */
		last(given_at(i)->fd, arg);
	return true;
}

struct pass {
	unsigned epoch; /* first_sight's mark, 0 until the pass needs one */
	bool note;      /* rebuild the list of what is given */
};

/* One socket (seen through descriptor fd) goes to the child as well. */
static void count_for_child(int fd, struct cp_sock *s, void *arg)
{
	struct pass *p = arg;
	if (s == CP_SOCK_SHIM || !first_sight(s, &p->epoch))
		return;
	if (s->kind == CP_KIND_TCP) {
		/* not connected yet: whichever process connects it, the other may hold it */
		if (!s->unknown_holders)
			s->unknown_holders = true;
		return;
	}
	if (s->kind == CP_KIND_TCP_CONN && cp_refs_share(s, fd) && p->note)
		note_given(fd, s->slot);
}

/* The fork failed: take back what count_for_child added (the gate was held all along, so the
 * same sockets are there, each shared now unless it could not be counted). */
static void uncount(int fd, struct cp_sock *s, void *arg)
{
	(void)fd;
	if (s == CP_SOCK_SHIM || !first_sight(s, arg))
		return;
	if (s->kind == CP_KIND_TCP_CONN && s->shared && !s->unknown_holders)
		cp_sht_add(s->slot, -1);
}

void cp_refs_fork_prepare(void)
{
	if (!tracking)
		return;
	hold();
	/* The list is rebuilt only when the table changed since the last pass: the same table gives
	 * the same list, and a list written at every fork is a page copied at every fork. */
	struct pass p = { .epoch = 0, .note = cp_fd_generation() != gl.generation || gl.overflow };
	if (!p.note) {
		/* the table as the list's pass saw it: the list is what this pass would give (every
		 * connection counted then is shared; the others were marked unknown, and stay so) */
		for (unsigned i = 0; i < gl.n; i++)
			cp_sht_add(given_at(i)->slot, 1);
		return;
	}
	gl.n = 0;
	gl.overflow = false;
	cp_fd_foreach(0, ~0U, count_for_child, &p);
	/* after the pass: the first one makes the table's descriptor, a change too */
	gl.generation = cp_fd_generation();
}

void cp_refs_fork_parent(void)
{
	/* The fork wrapper sees whether fork failed and undoes the counts first; a glibc-internal
	 * fork (daemon()) cannot be seen failing: its counts stay, and those sockets are then never
	 * acted on (the safe side). */
	if (atomic_load(&G.holder) == self() && atomic_load(&G.fork_caller) != self())
		cp_refs_resume();
}

CP_CHILD void cp_refs_fork_child(void)
{
	/* the child is single-threaded, and its gate open (a fresh page): nothing to do unless it
	 * was forked from a signal handler that interrupted a close, which is inside */
	cp_perproc_child();
	if (depth > 0 && counted_in)
		atomic_store(&G.readers, 1);
}

CP_CHILD pid_t cp_fork(void)
{
	cp_init_ensure(); /* the atfork handlers are registered there */
	void *me = self(), *expected = me;
	atomic_store(&G.fork_caller, me);
	pid_t pid = cp_real_fork();
	if (pid == 0)
		return 0;
	atomic_compare_exchange_strong(&G.fork_caller, &expected, NULL);
	if (atomic_load(&G.holder) == me) { /* this fork's pass counted: undo it if it failed */
		int saved = errno;
		if (pid < 0) {
			unsigned e = 0;
			cp_fd_foreach(0, ~0U, uncount, &e);
		}
		cp_refs_resume();
		cp_errno_restore(saved);
	}
	return pid;
}
