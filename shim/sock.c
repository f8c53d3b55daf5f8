/* closepolicy — socket objects: allocation by recycling, reference counts, epoll registrations. */
#include "shim/sock.h"
#include "shim/hot.h"
#include "shim/perproc.h"
#include "shim/sockinfo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Released objects go on a lock-free stack (push only, safe in a signal handler); allocation
 * takes the whole stack at once (exchange: no ABA problem) into a private list under a mutex.
 *
 * The private list and its mutex are on the per-process page: a forked child starts with an
 * empty list and an unlocked mutex, whatever another thread of the parent was doing with them
 * (the objects on the parent's list are lost to the child: a few, once).
 *
 * The stack's head is not: it is on the page of the descriptor table's first entries, which a
 * close writes anyway (hot.h), so the child's first release writes no page of its own (on the
 * per-process page it was two faults: the load mapped the zero page, the exchange copied it).
 * A child may inherit the stack as it is: a push writes the object's link, then swings the head
 * with one compare-and-swap, and a fork's copy cannot show the head's write without the link's
 * (the pushing thread's later write waits for the fork, or reaches both copies); a take is one
 * exchange. So the child's stack is always a whole stack of objects free in the child too: no
 * descriptor of its table points at one (the entry is cleared before the release). */
#define P cp_perproc
static _Atomic(struct cp_sock *) released CP_HOT_DATA(00);

/* The first objects are on the same page too (after its other data, before the table's entries):
 * a forking server's parent and child both write the accepted connection's object at their close
 * (its count), and with the object on the heap that was a second page copied in each process.
 * Recycled like any other, never freed; a server that closes in the parent after each fork uses
 * two (the listener's and one connection's) over and over. */
#define POOL_SIZE 4
static struct cp_sock pool[POOL_SIZE] CP_HOT_DATA(01);
static atomic_uint pool_used CP_HOT_DATA(00);

static struct cp_sock *from_pool(void)
{
	unsigned i = atomic_load_explicit(&pool_used, memory_order_relaxed);
	while (i < POOL_SIZE && !atomic_compare_exchange_weak(&pool_used, &i, i + 1))
		;
	return i < POOL_SIZE ? &pool[i] : NULL;
}

struct cp_sock *cp_sock_new(void)
{
	struct cp_sock *s;
	pthread_mutex_lock(&P.spare_lock);
	if (P.spare == NULL)
		P.spare = atomic_exchange(&released, NULL);
	s = P.spare;
	if (s != NULL)
		P.spare = s->link;
	pthread_mutex_unlock(&P.spare_lock);
	if (s == NULL)
		s = from_pool();
	if (s == NULL) {
		s = malloc(sizeof *s);
		if (s == NULL)
			return NULL;
	}
	memset(s, 0, sizeof *s);
	atomic_init(&s->refs, 1);
	atomic_flag_clear(&s->eplock);
	s->slot = -1;
	s->drain.fd = -1;
	return s;
}

CP_CHILD void cp_sock_release(struct cp_sock *s)
{
	struct cp_sock *head = atomic_load(&released);
	do
		s->link = head;
	while (!atomic_compare_exchange_weak(&released, &head, s));
}

CP_CHILD void cp_sock_ref(struct cp_sock *s)
{
	atomic_fetch_add(&s->refs, 1);
}

CP_CHILD bool cp_sock_unref_is_last(struct cp_sock *s)
{
	return atomic_fetch_sub(&s->refs, 1) == 1;
}

bool cp_sock_still_registered(int fd, const struct cp_sock *s)
{
	if (s->cookie != 0)
		return cp_info_cookie(fd) == s->cookie;
	return s->ident_peer.family == 0 || cp_info_peer_is(fd, &s->ident_peer, s->ident_port);
}

CP_CHILD bool cp_sock_still_open_as(int fd, const struct cp_sock *s)
{
	if (s->cookie != 0 || s->ident_peer.family != 0)
		return cp_sock_still_registered(fd, s);
	if (!cp_info_is_tcp(fd)) /* closed, or another kind of file took the number */
		return false;
	return s->facts.peer.family == 0 || cp_info_peer_is(fd, &s->facts.peer, s->facts.peer_port);
}

static void eplock(struct cp_sock *s)
{
	while (atomic_flag_test_and_set_explicit(&s->eplock, memory_order_acquire))
		;
}

static void epunlock(struct cp_sock *s)
{
	atomic_flag_clear_explicit(&s->eplock, memory_order_release);
}

void cp_sock_epreg_add(struct cp_sock *s, int epfd, int fd)
{
	eplock(s);
	unsigned i;
	for (i = 0; i < s->n_epreg; i++)
		if (s->epreg[i].epfd == epfd && s->epreg[i].fd == fd)
			break;
	if (i == s->n_epreg) {
		if (s->n_epreg < CP_EPREG_MAX) {
			s->epreg[s->n_epreg].epfd = epfd;
			s->epreg[s->n_epreg].fd = fd;
			s->n_epreg++;
		} else {
			s->epreg_overflow = true;
		}
	}
	epunlock(s);
}

void cp_sock_epreg_del(struct cp_sock *s, int epfd, int fd)
{
	eplock(s);
	for (unsigned i = 0; i < s->n_epreg; i++) {
		if (s->epreg[i].epfd == epfd && s->epreg[i].fd == fd) {
			s->epreg[i] = s->epreg[--s->n_epreg];
			break;
		}
	}
	epunlock(s);
}
