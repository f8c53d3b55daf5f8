/* closepolicy — what the shim knows about one TCP socket of the program.
 * One object per open socket (not per descriptor): dup'd descriptors point at the same object
 * and share its reference count. Objects are recycled, never returned to malloc, so a thread that
 * reads a stale pointer from the descriptor table still reads valid (if outdated) memory. */
#ifndef CLOSEPOLICY_SOCK_H
#define CLOSEPOLICY_SOCK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"
#include "shim/sockinfo.h"

enum cp_kind {
	CP_KIND_OTHER = 0, /* a socket the shim probed and will never change (UNIX, UDP, SCTP...) */
	CP_KIND_TCP,       /* TCP, not (yet) connected: new, bound or listening */
	CP_KIND_TCP_CONN,  /* TCP, connected or accepted: the only kind a policy acts on */
};

/* An epoll registration made by the program: (epoll descriptor, the number it registered). */
struct cp_epreg {
	int epfd, fd;
};
#define CP_EPREG_MAX 8

/* The close event of a socket handed to the drainer, as close() found it: the drainer writes the
 * line (info lines go in batches), before the drain's own. */
struct cp_close_note {
	bool pending;       /* to be written */
	uint8_t action;     /* enum cp_action */
	int tid;            /* the program's thread that closed */
	int unread, unsent;
	uint64_t ts_us, age_ms;
	struct cp_tcp_summary tcp;
};

/* Background drain state, used once the socket has been handed to the drainer. */
struct cp_drain {
	struct cp_drain *next, *prev; /* the drainer's active list (next: also its queue of new ones) */
	int fd;                       /* the shim's own descriptor for the socket */
	int prog_fd;                  /* the number the program closed, for the log */
	uint64_t start_ns, last_ns, bytes;
	bool armed;                   /* its one-shot epoll registration can still fire */
	bool watched;                 /* on the active list (else still waiting for its first read) */
	struct cp_close_note note;
};

struct cp_sock {
	struct cp_sock *link;  /* free list / pending drains (lock-free stacks) */
	atomic_int refs;       /* descriptors for this socket in this process; see refs below */
	uint64_t cookie;       /* SO_COOKIE at registration: recognises the socket again */
	/* or, for an accepted one, the peer accept() returned (no system call at accept): the
	 * same socket has the same peer until it is closed */
	struct cp_addr ident_peer;
	uint16_t ident_port;
	/* other processes (refs.h): */
	bool shared;           /* counted in the cross-process table, at `slot` */
	bool unknown_holders;  /* holders the shim cannot count may exist: never act on it */
	int32_t slot;
	unsigned ref_epoch;    /* the fork/exec/spawn pass that last looked at it */
	uint8_t ref_mark;      /* what that pass did (CP_REF_*) */
	atomic_bool exit_released; /* the exit path dropped this process's reference */
	_Atomic uint8_t kind;  /* enum cp_kind; atomic: a fork's counting pass reads it while connect() sets it */
	uint8_t role;          /* enum cp_role: ANY until connected or accepted */
	bool facts_known;
	atomic_bool shut_wr;   /* the program called shutdown(SHUT_WR or SHUT_RDWR) */
	atomic_bool linger0;   /* the program set SO_LINGER {1, 0} itself */
	/* sent to another process over a UNIX socket (SCM_RIGHTS): its receiver holds it too,
	 * where the shim cannot count it, so no close in this process ever acts on it */
	atomic_bool given_away;
	struct cp_socket_facts facts;
	const struct cp_rule *rule; /* matched at connect/accept; NULL = no rule */
	uint64_t born_ns;           /* CLOCK_MONOTONIC at connect/accept */

	atomic_flag eplock; /* guards the registrations below (held for a few instructions) */
	uint8_t n_epreg;
	bool epreg_overflow;
	struct cp_epreg epreg[CP_EPREG_MAX];

	struct cp_drain drain;
	/* a listener: its local address, asked once (0 not yet, 1 being asked, 2 in facts.local) */
	atomic_int listen_local;
};

/* The table's marker for the shim's own descriptors (log, drainer, drain copies). */
#define CP_SOCK_SHIM ((struct cp_sock *)1)

/* A zeroed object with refs = 1 (may allocate: never call from a signal handler). */
struct cp_sock *cp_sock_new(void);
/* Give an object back for reuse. Lock-free; safe anywhere. */
void cp_sock_release(struct cp_sock *s);

/* References of this process: dup'd descriptors share the object. Other processes: refs.h. */
void cp_sock_ref(struct cp_sock *s);
bool cp_sock_unref_is_last(struct cp_sock *s);

/* ref_mark bits, set by a fork/exec/spawn pass under the gate (refs.c, inherit.c) */
#define CP_REF_COUNTED 1u  /* one reference added for a child */
#define CP_REF_KEEP 2u     /* a descriptor without FD_CLOEXEC: survives exec */
#define CP_REF_DONE 4u     /* handled by the pass */
#define CP_REF_RELEASED 8u /* close-on-exec: its reference dropped before the exec */

/* Before anything destructive: is fd still the socket registered (SO_COOKIE, or the peer an
 * accepted socket had), and not another file that took its number after a close the shim did not
 * see (fclose of an fdopen'd socket, glibc-internal closes)? True when neither was recorded (a
 * rule that never acts), and when the socket has no peer any more (reset: nothing to harm). */
bool cp_sock_still_registered(int fd, const struct cp_sock *s);

/* Where the table may be stale (at exit: a close by io_uring or another route the shim does
 * not see): is fd still open as the socket registered? As above, and without a recorded
 * identity: fd is a TCP socket with the peer the shim noted, if it noted one. */
bool cp_sock_still_open_as(int fd, const struct cp_sock *s);

/* epoll registrations of the program (set by the epoll_ctl wrapper, used at close). */
void cp_sock_epreg_add(struct cp_sock *s, int epfd, int fd);
void cp_sock_epreg_del(struct cp_sock *s, int epfd, int fd);

#endif
