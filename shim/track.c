/* closepolicy — following sockets (see track.h). */
#include "shim/track.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/epoll.h>

#include "shim/actions.h"
#include "shim/close.h"
#include "shim/config.h"
#include "shim/counters.h"
#include "shim/drainer.h"
#include "shim/events.h"
#include "shim/fdtable.h"
#include "shim/hot.h"
#include "shim/log.h"
#include "shim/ownfd.h"
#include "shim/real.h"
#include "shim/refs.h"
#include "shim/shtable.h"
#include "shim/sockinfo.h"
#include "shim/errsave.h"

/* What a forking server's child runs of this file (dup2 of the connection onto 0 and 1, as
 * inetd-style servers and busybox httpd do; shutdown before its exit) is CP_HOT: linked with the code a child runs, not
 * in this file's block (Makefile, COLD_OBJ), which would be a second block of the shim's code
 * faulted in by every child. */

/* Inside the gate: drop one descriptor's reference to s. */
CP_HOT static void drop(struct cp_sock *s)
{
	if (s != NULL && s != CP_SOCK_SHIM && cp_refs_release(s) != CP_NOT_LAST)
		cp_sock_release(s);
}

/* A number just returned by the kernel is free of any earlier socket: an entry still there was
 * left by a close the shim did not see (glibc-internal, a raw syscall). Inside the gate, so a
 * fork counts the socket for its child exactly when the child's table has it. */
CP_HOT static void store(int fd, struct cp_sock *s)
{
	struct cp_sock *old;
	cp_refs_gate_enter();
	if (cp_fd_put(fd, s, &old) < 0) { /* no memory for the table: not followed */
		drop(s);
		old = cp_fd_take(fd);
	}
	drop(old);
	cp_refs_gate_leave();
}

CP_HOT bool cp_track_is_shim_fd(int fd)
{
	return cp_fd_get(fd) == CP_SOCK_SHIM;
}

void cp_track_socket(int fd, int domain, int type, int protocol)
{
	int saved = errno;
	struct cp_sock *s = NULL;
	if ((domain == AF_INET || domain == AF_INET6) && (type & 0xf) == SOCK_STREAM &&
	    (protocol == 0 || protocol == IPPROTO_TCP)) {
		s = cp_sock_new();
		if (s != NULL)
			s->kind = CP_KIND_TCP;
		cp_ctr_ensure();
	}
	store(fd, s);
	cp_errno_restore(saved);
}

/* A socket becomes one the policy may act on: record who it is, match, apply options. */
static void become_connection(int fd, struct cp_sock *s, enum cp_role role,
			      const struct sockaddr *peer, socklen_t peer_len)
{
	cp_ctr_ensure(); /* a prefork server's worker: its own counters file and reload thread */
	s->role = (uint8_t)role;
	s->facts.role = role;
	s->born_ns = cp_now_ns();
	if (cp_cfg.match_needs_addresses) {
		cp_info_facts(fd, &s->facts);
		s->facts_known = true;
	}
	/* The peer as accept() returned it, or as the program named it to connect() (getpeername
	 * fails until a non-blocking connect completes): no system call, and the log's events
	 * need it later, when getpeername no longer answers. */
	if (s->facts.peer.family == 0 && peer != NULL)
		cp_info_addr(peer, peer_len, &s->facts.peer, &s->facts.peer_port);
	s->rule = cp_matcher_match(cp_cfg_matcher(), &s->facts);
	/* The identity to check before anything destructive; a rule that never acts needs none.
	 * An accepted socket's is its peer. A connected one's peer may differ from what the
	 * program named (0.0.0.0 reaches 127.0.0.1): its cookie. */
	if (s->rule != NULL && (s->rule->action != CP_ACTION_PASSTHROUGH ||
				s->rule->on_exit != CP_ACTION_PASSTHROUGH) && s->cookie == 0) {
		if (role == CP_ROLE_SERVER) {
			s->ident_peer = s->facts.peer;
			s->ident_port = s->facts.peer_port;
		}
		if (s->ident_peer.family == 0)
			s->cookie = cp_info_cookie(fd);
	}
	if (s->rule != NULL && (s->rule->keepalive.set || s->rule->user_timeout_set)) {
		int err = cp_cfg.dry_run ? 0 : cp_act_apply_options(fd, s->rule);
		if (err != 0)
			cp_event_error(fd, "cannot set keepalive / user_timeout", err, "left the kernel's");
		if (cp_log_enabled(CP_LEVEL_DEBUG)) { /* reading back costs five system calls */
			struct cp_sockopts o;
			if (!s->facts_known)
				cp_info_facts(fd, &s->facts);
			cp_info_options(fd, &o);
			cp_event_options(fd, s, &o, err);
		}
	}
	s->kind = CP_KIND_TCP_CONN;
}

void cp_track_connect(int fd, const struct sockaddr *addr, socklen_t len, int ret, int err)
{
	if (ret != 0 && err != EINPROGRESS)
		return;
	int saved = errno;
	struct cp_sock *s = cp_fd_get(fd);
	if (s == NULL && cp_info_is_tcp(fd)) {
		/* a socket made where the shim did not see it: perhaps inherited from a process
		 * without the shim, which may hold it too */
		s = cp_sock_new();
		if (s != NULL) {
			s->kind = CP_KIND_TCP;
			s->unknown_holders = true;
			store(fd, s);
		}
	}
	if (s != NULL && s != CP_SOCK_SHIM && s->kind == CP_KIND_TCP) {
		cp_init_ensure();
		become_connection(fd, s, CP_ROLE_CLIENT, addr, len);
	}
	cp_errno_restore(saved);
}

/* An accepted socket's local address is its listener's, unless that is a wildcard: asked of the
 * listener once, it saves the close line a getsockname per connection. */
static void listener_local(int listen_fd, struct cp_sock *ls, struct cp_sock *s)
{
	if (ls == NULL || ls == CP_SOCK_SHIM || !cp_log_enabled(CP_LEVEL_INFO))
		return;
	int state = atomic_load(&ls->listen_local), none = 0;
	if (state == 0 && atomic_compare_exchange_strong(&ls->listen_local, &none, 1)) {
		struct sockaddr_storage ss;
		socklen_t len = sizeof ss;
		if (getsockname(listen_fd, (struct sockaddr *)&ss, &len) == 0)
			cp_info_addr((struct sockaddr *)&ss, len, &ls->facts.local, &ls->facts.local_port);
		atomic_store(&ls->listen_local, state = 2);
	}
	static const uint8_t zero[16];
	if (state == 2 && ls->facts.local.family != 0 && memcmp(ls->facts.local.bytes, zero, sizeof zero) != 0) {
		s->facts.local = ls->facts.local;
		s->facts.local_port = ls->facts.local_port;
	}
}

void cp_track_accept(int listen_fd, int fd, const struct sockaddr *peer, socklen_t peer_len)
{
	int saved = errno;
	struct cp_sock *ls = cp_fd_get(listen_fd);
	bool tcp;
	if (ls == NULL) {
		/* a listener made where the shim did not see it (inherited): ask once, remember */
		tcp = cp_info_is_tcp(fd);
		ls = cp_sock_new();
		if (ls != NULL) {
			ls->kind = tcp ? CP_KIND_TCP : CP_KIND_OTHER;
			store(listen_fd, ls);
		}
	} else {
		tcp = ls != CP_SOCK_SHIM && ls->kind == CP_KIND_TCP;
	}
	struct cp_sock *s = tcp ? cp_sock_new() : NULL;
	if (s != NULL) {
		cp_init_ensure();
		listener_local(listen_fd, ls, s);
		become_connection(fd, s, CP_ROLE_SERVER, peer, peer_len);
	}
	store(fd, s);
	cp_errno_restore(saved);
}

void cp_track_adopt(int fd, struct cp_sock *s, enum cp_role role)
{
	become_connection(fd, s, role, NULL, 0);
}

CP_HOT void cp_track_dup(int oldfd, int newfd)
{
	int saved = errno;
	cp_refs_gate_enter(); /* the reference and the entry go to a fork's child together */
	struct cp_sock *s = cp_fd_get(oldfd);
	if (s == CP_SOCK_SHIM)
		s = NULL;
	if (s != NULL)
		cp_sock_ref(s);
	store(newfd, s);
	cp_refs_gate_leave();
	cp_errno_restore(saved);
}

/* The program's dup2/dup3 onto one of the shim's numbers: as without the shim, the program gets
 * that number. The shim's file moves to another number of its own first, and its holder (the log,
 * the drainer) is told; the old number is unmarked for the program's copy to take. Without a
 * number to move to, the program's call fails with EMFILE rather than take the shim's file away
 * from under it. */
static int evict_shim_fd(int fd)
{
	int moved = cp_ownfd_dup_high(fd);
	if (moved < 0) {
		errno = EMFILE;
		return -1;
	}
	if (!cp_log_fd_moved(fd, moved) && !cp_drain_fd_moved(fd, moved) && !cp_sht_fd_moved(fd, moved))
		cp_ownfd_close(moved); /* held by nobody any more */
	struct cp_sock *s = cp_fd_take(fd);
	if (s != NULL && s != CP_SOCK_SHIM) /* not the shim's after all: put it back */
		cp_fd_put(fd, s, &s);
	return 0;
}

CP_HOT int cp_track_before_dup2(int oldfd, int newfd)
{
	struct cp_sock *t = cp_fd_get(newfd);
	if (t == NULL || oldfd == newfd)
		return 0;
	if (cp_real_fcntl(oldfd, F_GETFD, NULL) < 0) /* errno EBADF, as dup2 would say */
		return -1;
	if (t == CP_SOCK_SHIM)
		return evict_shim_fd(newfd);
	cp_close_implicit(newfd);
	return 0;
}

CP_HOT void cp_track_shutdown(int fd, int how)
{
	struct cp_sock *s = cp_fd_get(fd);
	if (s != NULL && s != CP_SOCK_SHIM && (how == SHUT_WR || how == SHUT_RDWR))
		atomic_store(&s->shut_wr, true);
}

CP_HOT void cp_track_epoll_ctl(int epfd, int op, int fd)
{
	struct cp_sock *s = cp_fd_get(fd);
	if (s == NULL || s == CP_SOCK_SHIM)
		return;
	if (op == EPOLL_CTL_ADD)
		cp_sock_epreg_add(s, epfd, fd);
	else if (op == EPOLL_CTL_DEL)
		cp_sock_epreg_del(s, epfd, fd);
}

void cp_track_setsockopt(int fd, int level, int name, const void *val, socklen_t len)
{
	if (level != SOL_SOCKET || name != SO_LINGER || val == NULL || len < sizeof(struct linger))
		return;
	struct cp_sock *s = cp_fd_get(fd);
	if (s == NULL || s == CP_SOCK_SHIM)
		return;
	const struct linger *lg = val;
	atomic_store(&s->linger0, lg->l_onoff != 0 && lg->l_linger == 0);
}

/* Each descriptor carried by msg's SCM_RIGHTS messages. The kernel has read (sent) or written
 * (received) the control data: it is readable. */
static void for_each_right(const struct msghdr *msg, void (*fn)(int fd))
{
	if (msg->msg_control == NULL || msg->msg_controllen < sizeof(struct cmsghdr))
		return;
	for (struct cmsghdr *c = CMSG_FIRSTHDR((struct msghdr *)msg); c != NULL;
	     c = CMSG_NXTHDR((struct msghdr *)msg, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS || c->cmsg_len < CMSG_LEN(0))
			continue;
		size_t n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		const unsigned char *data = CMSG_DATA(c);
		for (size_t i = 0; i < n; i++) {
			int fd;
			memcpy(&fd, data + i * sizeof fd, sizeof fd);
			fn(fd);
		}
	}
}

static void give_away(int fd)
{
	struct cp_sock *s = cp_fd_get(fd);
	if (s != NULL && s != CP_SOCK_SHIM && !atomic_load(&s->given_away)) {
		atomic_store(&s->given_away, true);
		cp_fd_note_change(); /* its count stays at exit: not the fork's quick release */
	}
}

static void note_received(int fd)
{
	if (cp_fd_get(fd) != NULL || !cp_info_is_tcp(fd))
		return;
	struct cp_sock *s = cp_sock_new();
	if (s == NULL)
		return;
	s->kind = CP_KIND_OTHER; /* its other holders are unknown: never acted on */
	s->unknown_holders = true;
	cp_info_facts(fd, &s->facts);
	s->facts_known = true;
	store(fd, s);
}

void cp_track_rights_sent(const struct msghdr *msg)
{
	int saved = errno;
	for_each_right(msg, give_away);
	cp_errno_restore(saved);
}

void cp_track_rights_received(const struct msghdr *msg)
{
	int saved = errno;
	for_each_right(msg, note_received);
	cp_errno_restore(saved);
}
