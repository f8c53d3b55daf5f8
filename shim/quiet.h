/* closepolicy — a quieter log: one `policy loaded` line per `closepolicy run` (the processes it
 * starts say it at debug), and `log: {rate: N}`: at most N lines a second per event kind, with one
 * `suppressed` line per kind and second that dropped some. The counters stay exact either way. */
#ifndef CLOSEPOLICY_QUIET_H
#define CLOSEPOLICY_QUIET_H

#include <stdbool.h>

#include "policy/policy.h"

/* info for the process `closepolicy run` started (CLOSEPOLICY_ANNOUNCE holds its PID) or any
 * process not started by it; debug for the processes those start. */
enum cp_log_level cp_quiet_load_level(void);
/* Whether a line of this event kind may be written now (counts the dropped ones). May write a
 * `suppressed` line first. Safe in signal handlers; errno preserved. */
bool cp_quiet_admit(const char *event);
/* Process exit: the `suppressed` lines still owed. */
void cp_quiet_at_exit(void);

#endif
