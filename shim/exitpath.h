/* closepolicy — process exit: exit(), return from main, _exit() and _Exit() apply each rule's
 * on_exit to the sockets still open, then finish every graceful close in progress, all in
 * parallel, within exit_wait. No allocation, no stdio, no lock that another thread could hold
 * for long: this runs where the program is already going away (even from a signal handler). */
#ifndef CLOSEPOLICY_EXITPATH_H
#define CLOSEPOLICY_EXITPATH_H

#include "shim/sock.h"

/* Run once; later calls (exit() reaching _exit) return at once. errno is preserved. */
void cp_exit_run(void);

/* Graceful closes at exit: drained by the exiting thread itself, side by side. verified: the
 * caller found fd still the socket registered (issue 11's check) and nothing ran since. */
struct cp_exit_set;
void cp_exit_set_add(struct cp_exit_set *set, int fd, struct cp_sock *s, bool verified);
/* A socket left as it is at exit: the kernel's close at exit closes it, unless something that
 * waits comes first (a drain or a lingering close: cp_exit_close_left_open). */
void cp_exit_leave_open(struct cp_exit_set *set, int fd);
void cp_exit_close_left_open(struct cp_exit_set *set);
/* A linger time that does not outlast exit_wait (seconds, at least 1 when time is left). */
int cp_exit_linger_s(const struct cp_exit_set *set, uint32_t linger_s);

#endif
