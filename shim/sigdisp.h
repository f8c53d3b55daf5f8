/* closepolicy — the program's SIGPIPE disposition, kept as the program set it.
 *
 * The program installs, reads back and restores its SIGPIPE disposition through sigaction(),
 * signal(), sigset() and the rest exactly as without the shim: it always reads back what it set
 * (its handler, SIG_IGN or SIG_DFL, with its flags and mask), never the shim's handler. In the
 * kernel, the shim's handler (sigpipe.c) stands in front of the program's handler and of SIG_DFL,
 * so every SIGPIPE is logged before the program's disposition acts on it. When the program
 * ignores SIGPIPE the kernel ignores it too: SIG_IGN survives exec (a handler does not), and the
 * program's children expect to inherit it; the write wrappers log those EPIPEs instead.
 *
 * Every reader here is async-signal-safe and never waits: it reads a published copy of the record,
 * which no change writes (sigdisp.c tells how changes, nested ones from a handler included, keep
 * the record and the kernel in agreement). */
#ifndef CLOSEPOLICY_SIGDISP_H
#define CLOSEPOLICY_SIGDISP_H

#include <signal.h>
#include <stdbool.h>

enum cp_disp { CP_DISP_DEFAULT, CP_DISP_IGNORE, CP_DISP_HANDLER };

/* Read the inherited disposition and put the shim's handler in front of it (once; idempotent).
 * Also resolves every real signal installer now, so none is resolved inside a handler. */
void cp_sigdisp_init(void);

/* The shim's handler, first: true when the SIGPIPE came while start-up does not know the
 * inherited disposition yet; start-up then sends it again. Async-signal-safe. */
bool cp_sigdisp_defer(const siginfo_t *si);

/* A consistent copy of the program's action (async-signal-safe). */
void cp_sigdisp_get(struct sigaction *out);
enum cp_disp cp_sigdisp_of(const struct sigaction *a);
enum cp_disp cp_sigdisp_now(void);
/* "default", "ignore", "handler": the log's `disposition` values */
const char *cp_disp_name(enum cp_disp d);

/* SA_RESETHAND: the program's handler `ran` is being run once; from now on its disposition is
 * SIG_DFL (flags and mask stay, as the kernel does it), unless the program has installed
 * something else meanwhile. Async-signal-safe. */
void cp_sigdisp_reset_to_default(const struct sigaction *ran);
/* The kernel's SIGPIPE action becomes SIG_DFL (the program's is SIG_DFL already): the shim is about
 * to let SIGPIPE kill the process as it would have without the shim. Async-signal-safe. */
void cp_sigdisp_kernel_default(void);

/* The program's calls (SIGPIPE only; the wrappers pass every other signal straight through). */
typedef void (*cp_handler_t)(int);
int cp_sigdisp_sigaction(const struct sigaction *act, struct sigaction *old);
/* signal(), bsd_signal(), ssignal(): BSD semantics (SA_RESTART unless siginterrupt() said
 * otherwise; SIGPIPE blocked in the handler). sysv: sysv_signal() (SA_RESETHAND | SA_NODEFER). */
cp_handler_t cp_sigdisp_signal(cp_handler_t handler, bool sysv);
cp_handler_t cp_sigdisp_sigset(cp_handler_t disp);
int cp_sigdisp_sigignore(void);
int cp_sigdisp_siginterrupt(int interrupt);

#endif
