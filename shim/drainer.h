/* closepolicy — the graceful close's second half: read and throw away what the peer still sends
 * until its EOF, `drain_timeout` of silence or `drain_max`, then close.
 * close() sends the FIN itself and queues the socket. One background thread, started on demand,
 * reads each once a tick later, watches the few still open with one epoll set, and exits when it
 * has had nothing to do for a while (a permanent thread hangs programs whose main()
 * calls pthread_exit). Past `max_draining`, the caller drains synchronously instead. */
#ifndef CLOSEPOLICY_DRAINER_H
#define CLOSEPOLICY_DRAINER_H

#include <poll.h>
#include <stdint.h>

#include "shim/sock.h"

/* Read and discard what is queued now, without waiting.
 * Returns 1 at the peer's EOF, 0 when nothing more is there, -1 on an error (*err set). */
int cp_drain_discard(int fd, uint64_t *bytes, int *err);

/* Take a place among the `max_draining` (false: full, drain synchronously). */
bool cp_drain_reserve(void);
void cp_drain_unreserve(void);

/* Hand a socket to the background drainer, with a reserved place, its FIN sent. fd is the
 * shim's own copy (cp_ownfd_dup_high); prog_fd the number the program closed (for the log);
 * s->rule gives the timeouts; s->drain.note the close line still to write, if any. The drainer owns s and fd from now on. Returns 0, or -1 when no thread could be
 * started (the caller still owns both and drains synchronously). */
int cp_drain_start(struct cp_sock *s, int fd, int prog_fd);

/* Before draining: undo the program's SO_LINGER {1, 0} and shut the sending side (unless the
 * program did); the peer then gets everything queued, then FIN. */
void cp_drain_prepare(int fd, struct cp_sock *s);

/* Drain fd in the calling thread (its write side already shut) within the rule's timeouts.
 * Returns the outcome ("eof", "idle", "max", "reset"); *err is the errno of a failed read. */
const char *cp_drain_sync(int fd, const struct cp_rule *rule, uint64_t *bytes, int *err);
/* ms until d's drain ends by time under rule (0: now), and which end: "idle" or "max". */
int cp_drain_ms_left(const struct cp_drain *d, const struct cp_rule *r, uint64_t now, const char **outcome);

/* A round of the drainer in the calling thread, for the sockets no thread watches (drainnow.h):
 * those handed over are taken, each read when its first read is due (CP_ROUND_FIRST_NOW: now,
 * however young) and those watched without epoll once a tick (CP_ROUND_POLLED_NOW: now); the
 * deadlines applied, the lines written. Returns when the next round is due (UINT64_MAX: nothing
 * left for one; 0: the lists are busy, try again), and in p (at most max) what to wait on. */
#define CP_ROUND_FIRST_NOW 1u
#define CP_ROUND_POLLED_NOW 2u
uint64_t cp_drain_round_here(unsigned how, struct pollfd *p, unsigned max, unsigned *np);

/* One of the drainer's descriptors (its epoll set, a draining socket's copy) moved
 * from `from` to `to` (the program took the number with dup2). False when it holds no `from`. */
bool cp_drain_fd_moved(int from, int to);

/* The close lines of sockets handed over and not read yet, written now (exec, a death by
 * SIGPIPE: nothing of the drainer survives those). Never waits for the drainer. */
void cp_drain_log_pending(void);

/* Process exit: wait (a futex, no lock) until every drain in progress has ended or deadline_ns
 * has passed; then log what is left with outcome "exit". With no thread, drain them here
 * meanwhile. */
void cp_drain_finish_at_exit(uint64_t deadline_ns);

/* fork: the drainer thread does not exist in the child; its copies must not keep sockets open
 * there, and the epoll set it inherits is the parent's. */
/* Nothing was ever handed to the drainer in this process (no thread, no descriptor, no drain):
 * a fork then has nothing of it to hold or clean up. */
bool cp_drain_untouched(void);
void cp_drain_atfork_prepare(void);
void cp_drain_atfork_parent(void);
void cp_drain_atfork_child(void);

uint64_t cp_now_ns(void);

#endif
