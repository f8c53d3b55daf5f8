/* closepolicy — everything that changes a socket: the options applied at connect/accept and the
 * moves of the close actions. The only file that calls setsockopt/shutdown on the program's
 * sockets, so "what can the shim do to my socket" has one answer. */
#ifndef CLOSEPOLICY_ACTIONS_H
#define CLOSEPOLICY_ACTIONS_H

#include "policy/policy.h"

/* keepalive (SO_KEEPALIVE, TCP_KEEPIDLE/INTVL/CNT) and TCP_USER_TIMEOUT of the rule.
 * Returns 0, or the errno of the first setting that failed (the others are still tried). */
int cp_act_apply_options(int fd, const struct cp_rule *rule);
/* SO_LINGER {on, secs}: 0 or errno. */
int cp_act_linger(int fd, int on, int secs);
/* shutdown(SHUT_WR): queued data, then FIN. 0 or errno. */
int cp_act_shutdown_wr(int fd);

#endif
