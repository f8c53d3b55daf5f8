/* closepolicy — SIGPIPE: the shim's handler in front of the program's disposition (sigdisp.h),
 * and the SIGPIPE the write wrappers owe the program.
 *
 * A SIGPIPE reaches the program in one of two ways:
 *  - re-delivered by the shim: a socket write the shim made with MSG_NOSIGNAL failed with EPIPE
 *    (writes.c); after logging, the shim sends the SIGPIPE the kernel would have sent, to the same
 *    thread, with the kernel's si_code (SI_USER) and pid. A mark in si_value tells the handler it
 *    is logged already; the handler clears it before the program's handler sees the siginfo.
 *  - from the kernel or anyone else (a pipe, a descriptor the table does not know, stdio, a raw
 *    syscall, kill()): the handler logs it — naming the descriptor and the call when the thread is
 *    inside a wrapped write-type call (cp_cur_call) and the siginfo is the kernel's (SI_USER from
 *    this very process) — then does what the program's disposition says: call its handler, or
 *    die of SIGPIPE (after the log line is written), or nothing.
 * With `sigpipe: ignore` the kernel's SIGPIPE of a wrapped call is dropped instead.
 * Everything here is async-signal-safe and leaves errno as it found it. */
#ifndef CLOSEPOLICY_SIGPIPE_H
#define CLOSEPOLICY_SIGPIPE_H

#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include "policy/policy.h"

/* The wrapped write-type call the thread is in, for the handler: on the wrapper's stack, pointed
 * to by cp_cur_call around the real call (a pointer: the hot path sets one word, copies nothing). */
struct cp_call {
	const char *name;         /* NULL: not inside a wrapped call */
	int fd;
	uint64_t bytes;           /* attempted, plus the iovecs' lengths below */
	const struct iovec *iov;  /* writev: summed only when needed (a bad pointer is EFAULT's) */
	int iovcnt;
	const struct msghdr *msg; /* sendmmsg: its first message, likewise */
	volatile unsigned seen;   /* what the handler did during the call: CP_CALL_* */
};
#define CP_CALL_LOGGED 1u  /* the call's SIGPIPE arrived and was logged */
#define CP_CALL_DROPPED 2u /* the call's SIGPIPE arrived and was dropped (sigpipe: ignore) */

extern __thread struct cp_call *cp_cur_call __attribute__((tls_model("initial-exec")));

uint64_t cp_call_bytes(const struct cp_call *c);

/* The kernel's action for SIGPIPE whenever the program does not ignore it (sigdisp.c). */
void cp_sigpipe_handler(int sig, siginfo_t *si, void *ctx);

/* `sigpipe:` of the policy (log before the policy is loaded). */
enum cp_sigpipe cp_sigpipe_mode(void);

/* Send this thread the SIGPIPE the kernel would have sent with the failed call. The program's
 * handler may run before this returns, or the process may die of it. */
void cp_sigpipe_deliver(void);

/* This thread blocks SIGPIPE and a call just failed with EPIPE: take back the SIGPIPE the kernel
 * made pending for it (one that is not the kernel's is put back). */
void cp_sigpipe_take_back(void);

/* write(2) for the shim's own log line: a SIGPIPE it causes never reaches the program. */
ssize_t cp_sigpipe_quiet_write(int fd, const void *buf, size_t n);

#endif
