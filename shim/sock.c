/* closepolicy — socket objects: allocation by recycling, reference counts, epoll registrations. */
#include "shim/sock.h"
#include "shim/perproc.h"
#include "shim/sockinfo.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

/* Released objects go on a lock-free stack (push only, safe in a signal handler); allocation
 * takes the whole stack at once (exchange: no ABA problem) into a private list under a mutex.
 * All three are on the per-process page: a forked child starts with empty lists and an unlocked
 * mutex (whatever another thread of the parent was doing with them), and a fork takes no lock. */
#define P cp_perproc

struct cp_sock *cp_sock_new(void)
{
	struct cp_sock *s;
	pthread_mutex_lock(&P.spare_lock);
	if (P.spare == NULL)
		P.spare = atomic_exchange(&P.released, NULL);
	s = P.spare;
	if (s != NULL)
		P.spare = s->link;
	pthread_mutex_unlock(&P.spare_lock);
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

void cp_sock_release(struct cp_sock *s)
{
	struct cp_sock *head = atomic_load(&P.released);
	do
		s->link = head;
	while (!atomic_compare_exchange_weak(&P.released, &head, s));
}

void cp_sock_ref(struct cp_sock *s)
{
	atomic_fetch_add(&s->refs, 1);
}

bool cp_sock_unref_is_last(struct cp_sock *s)
{
	return atomic_fetch_sub(&s->refs, 1) == 1;
}

bool cp_sock_still_registered(int fd, const struct cp_sock *s)
{
	if (s->cookie != 0)
		return cp_info_cookie(fd) == s->cookie;
	return s->ident_peer.family == 0 || cp_info_peer_is(fd, &s->ident_peer, s->ident_port);
}

bool cp_sock_still_open_as(int fd, const struct cp_sock *s)
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
