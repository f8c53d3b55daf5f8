/* closepolicy — the process's live counters (closepolicy stat / top).
 * A small file of the process's own in the run directory (rundir.h; layout in counters_file.h),
 * made when the process first creates a TCP socket or first counts something, never at start-up:
 * a program that makes no TCP connection pays nothing. Counting is one relaxed atomic add on the
 * file's pages: no system call, no lock. A forked child makes a file of its own at its first
 * count; an exec'd image too (it replaces the old image's file, which has its PID). The file is
 * removed at exit; the command removes those of processes that died without exiting.
 * Every cp_ctr_* call is safe in a signal handler and preserves errno. */
#ifndef CLOSEPOLICY_COUNTERS_H
#define CLOSEPOLICY_COUNTERS_H

#include <stdbool.h>
#include <stdint.h>

#include "policy/policy.h"
#include "shim/counters_file.h"

struct cp_close_facts;

/* The file: this process's own, else the one its parent made (a forked child that made no socket
 * of its own counts there), else made now: never NULL (an in-memory stand-in when no file can be
 * made: the counts are then kept but nobody can see them). */
struct cp_ctr_file *cp_ctr(void);
/* The first TCP socket: make the file (so an idle server can be seen and reloaded) and start the
 * thread that answers reloads. Not for signal handlers. */
void cp_ctr_ensure(void);
/* The process has a second thread now (the drainer's): the reload thread may start, in the
 * process's own file if it has one. */
void cp_ctr_second_thread(void);

void cp_ctr_close(const struct cp_close_facts *c);
void cp_ctr_risk(const struct cp_close_facts *c);
void cp_ctr_drain(const char *outcome, uint64_t ms, int err);
void cp_ctr_max_draining_hit(void);
/* err EPIPE or ECONNRESET; call NULL = unknown */
void cp_ctr_epipe(const char *call, int err);
void cp_ctr_sigpipe(const char *call);
void cp_ctr_error(void);
void cp_ctr_log_line(bool written);

/* The policy in force changed (a reload): generation, file, time. Start-up's policy needs no
 * call (cp_cfg.policy, generation 1, loaded_ns 0: the process's start, which `closepolicy stat`
 * reads from /proc): a process that never counts touches neither these nor the clock. */
void cp_ctr_policy_loaded(const struct cp_policy *p);
/* A reload was refused: the old policy stays; message says why. */
void cp_ctr_policy_rejected(const char *message);

/* fork: a child counts in the file its parent counts in, until it makes a socket of its own
 * (cp_ctr_ensure: then a file of its own). exit: the process that made its file removes it. */
void cp_ctr_at_exit(void);
/* The file this process made, NULL in a forked child: set when it is made, cleared by the fork's
 * child handler (inline there: a call would run a page of the shim's code a child needs for
 * nothing else). On the hot page (hot.h), which a child that counts writes anyway. */
extern struct cp_ctr_file *cp_ctr_made;
static inline void cp_ctr_forked_child(void)
{
	if (__atomic_load_n(&cp_ctr_made, __ATOMIC_RELAXED) != NULL)
		__atomic_store_n(&cp_ctr_made, NULL, __ATOMIC_RELAXED);
}

static inline void cp_ctr_add(uint64_t *counter, uint64_t n)
{
	__atomic_fetch_add(counter, n, __ATOMIC_RELAXED);
}

#endif
