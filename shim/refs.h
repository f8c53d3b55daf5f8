/* closepolicy — last-reference semantics: is this close the socket's last descriptor in every
 * process that holds it (libclosepolicy(7), LAST-REFERENCE SEMANTICS)?
 *
 * Two levels. In one process, dup'd descriptors share one struct cp_sock and its count (sock.h).
 * Across processes, a socket that a fork or posix_spawn gave to a child, or that an exec handed
 * to a new image, has a slot in the shared table (shtable.h) counting the processes holding it;
 * a socket never shared has none and costs nothing. A process's last close of a shared socket
 * decrements the slot, and only the one that brings it to zero acts.
 *
 * The gate: fork/exec/spawn count the sockets they give away in one pass over the descriptor
 * table, and that pass plus the fork itself must see no close half-done (a socket counted for a
 * child whose snapshot no longer has it would never be released: a lost close). Closes, and the
 * stores of new descriptors, pass through the gate (two atomic operations, no lock); a fork
 * closes it for the length of its pass and the fork system call. Nothing inside the gate
 * blocks, so a fork never waits for long, and nothing inside takes a lock. */
#ifndef CLOSEPOLICY_REFS_H
#define CLOSEPOLICY_REFS_H

#include <stdbool.h>
#include <sys/types.h>

#include "shim/sock.h"

/* What a close of one descriptor means for its socket. */
enum cp_last {
	CP_NOT_LAST,       /* another descriptor of this process holds it */
	CP_HELD_ELSEWHERE, /* this process's last descriptor; another process still holds it */
	CP_LAST_UNKNOWN,   /* this process's last; holders the shim cannot count may exist */
	CP_GIVEN_AWAY,     /* this process's last; it was sent to another process (SCM_RIGHTS) */
	CP_LAST,           /* the last descriptor in every process: the policy acts now */
};

/* At start-up: the test-only switch CLOSEPOLICY_TEST_NO_SHARED_REFS=1 (no cross-process counting
 * at all: every process acts at its own last close, as a naive shim would; for the tests that
 * prove the tracking). Sockets are counted under every policy, so a reload needs nothing here. */
void cp_refs_init(void);
bool cp_refs_tracking(void);

/* Around taking a table entry and releasing it, or storing a new one. Reentrant. */
void cp_refs_gate_enter(void);
void cp_refs_gate_leave(void);

/* The caller took fd's table entry (inside the gate): drop that descriptor's reference. */
enum cp_last cp_refs_release(struct cp_sock *s);

/* For the exit path: the process is ending with s still open (through fd and perhaps other
 * descriptors). Drops this process's reference to s once, whatever the number of its
 * descriptors: CP_NOT_LAST for the other descriptors of the same socket; otherwise what the
 * release means (CP_LAST exactly once per socket when this process was its last holder in every
 * process, so on_exit applies). Lock-free, no allocation (the gate is entered: it only ever
 * waits for a fork in progress). */
enum cp_last cp_refs_release_at_exit(struct cp_sock *s);

/* At exit, in a process whose descriptor table is as the fork that made it left it: release
 * each socket that fork counted for it, straight from the fork's list; where this process may
 * be the last holder, last(fd, arg) releases it the ordinary way. False (nothing done) when
 * that does not apply: the caller walks the table. */
bool cp_refs_release_given(void (*last)(int fd, void *arg), void *arg);

/* Exclusive use by fork/exec/spawn: returns a fresh epoch for marking sockets (ref_epoch). */
unsigned cp_refs_hold_off(void);
void cp_refs_resume(void);
/* s (open as fd) is given to one more process (fork child, spawned child): count it. False when
 * it cannot be counted (no table, table full): it is then marked unknown_holders, in both
 * processes. Only with the gate held off. */
bool cp_refs_share(struct cp_sock *s, int fd);
/* s's SO_COOKIE, asked now if it was not (0 when fd is no socket), and given to its slot in the
 * table: what an exec'd image is told, and finds the slot by. */
uint64_t cp_refs_cookie(struct cp_sock *s, int fd);

/* fork: the wrapper, and the atfork handlers (init.c), which also cover glibc-internal forks. */
pid_t cp_fork(void);
void cp_refs_fork_prepare(void);
void cp_refs_fork_parent(void);
void cp_refs_fork_child(void);

#endif
