/* closepolicy — `closepolicy reload`: a running program takes a policy again.
 * The command writes the file's path into the process's counters file, bumps the request number
 * and wakes the futex on it; a thread of the shim's (started with the counters file, blocked on
 * that futex, all signals blocked) loads the policy — never in a signal handler, never inside a
 * wrapper of the program's calls — and swaps it in. Sockets keep the rule they matched (their
 * rule stays valid: a policy once in force is never freed); new connections get the new rules. */
#ifndef CLOSEPOLICY_RELOAD_H
#define CLOSEPOLICY_RELOAD_H

#include <stdbool.h>

#include "shim/counters_file.h"

/* Start the thread that answers reload requests written into f (once per process). */
void cp_reload_thread_start(struct cp_ctr_file *f);
bool cp_reload_thread_started(void);
/* fork: the thread is not in the child, whose state (on the per-process page) starts zeroed; its
 * own starts with its own counters file. */
/* pthread_exit(): when main() leaves that way, the process must end with the program's last
 * thread, so the shim's thread leaves too. */
__attribute__((noreturn)) void cp_reload_pthread_exit(void *ret);
/* The main thread leaves (pthread_exit, a raw SYS_exit): the shim's thread is gone on return,
 * so the process ends with the program's last thread and "the only thread" means the program's. */
void cp_reload_main_leaving(void);

#endif
