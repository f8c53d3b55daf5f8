/* closepolicy — the SIGPIPE handler and the re-delivery (see sigpipe.h). */
#include "shim/sigpipe.h"
#include "shim/real.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim/config.h"
#include "shim/drainer.h"
#include "shim/events.h"
#include "shim/sigdisp.h"
#include "shim/writes.h"
#include "shim/errsave.h"

__thread struct cp_call *cp_cur_call __attribute__((tls_model("initial-exec")));
/* > 0 while this thread writes a log line of the shim's own */
static __thread int own_write __attribute__((tls_model("initial-exec")));

/* si_value of a SIGPIPE the shim re-delivers. Only this process can send itself an SI_USER signal
 * that carries a value (rt_tgsigqueueinfo refuses it across processes), so nothing else has it. */
#define REDELIVERED ((void *)(uintptr_t)0x63707069u)

/* rt_sigtimedwait and rt_sigprocmask take the kernel's sigset size: 64 signals */
#define KERNEL_SIGSET_SIZE 8

static pid_t tid(void)
{
	return (pid_t)cp_real_syscall(SYS_gettid);
}

uint64_t cp_call_bytes(const struct cp_call *c)
{
	uint64_t n = c->bytes;
	for (int i = 0; c->iov != NULL && i < c->iovcnt; i++)
		n += c->iov[i].iov_len;
	for (size_t i = 0; c->msg != NULL && i < c->msg->msg_iovlen; i++)
		n += c->msg->msg_iov[i].iov_len;
	return n;
}

enum cp_sigpipe cp_sigpipe_mode(void)
{
	const struct cp_policy *p = cp_cfg.policy;
	return p != NULL ? p->sigpipe : CP_SIGPIPE_LOG;
}

/* The siginfo the kernel gives the SIGPIPE of a failed write: SI_USER, sent by this process. */
static bool from_kernel(const siginfo_t *si)
{
	return si->si_code == SI_USER && si->si_pid == getpid() && si->si_value.sival_ptr != REDELIVERED;
}

/* Who sent a SIGPIPE that is not a wrapped call's, for the log. */
static const char *origin(const siginfo_t *si, int *sender)
{
	bool self = si->si_pid == getpid();
	*sender = 0;
	switch (si->si_code) {
	case SI_USER:
		if (self)
			return "not from a call the shim wraps: stdio, a raw syscall, or kill() by this "
			       "process";
		*sender = si->si_pid;
		return "sent with kill() by another process";
	case SI_TKILL:
		*sender = self ? 0 : si->si_pid;
		return "sent with raise(), pthread_kill() or tgkill()";
	case SI_QUEUE:
		*sender = self ? 0 : si->si_pid;
		return "sent with sigqueue()";
	default:
		return "sent by the kernel";
	}
}

/* Log one SIGPIPE that was not re-delivered by the shim. False when it is to be dropped. */
static bool account(const siginfo_t *si, enum cp_disp disp)
{
	struct cp_call *c = cp_cur_call;
	struct cp_write_facts w;
	if (c != NULL && from_kernel(si)) {
		if (cp_sigpipe_mode() == CP_SIGPIPE_IGNORE) {
			c->seen |= CP_CALL_DROPPED;
			return false;
		}
		c->seen |= CP_CALL_LOGGED;
		cp_writes_describe(c->fd, c->name, cp_call_bytes(c), &w);
		/* the call will never return to log its EPIPE: the process dies of this SIGPIPE */
		if (disp == CP_DISP_DEFAULT)
			cp_event_epipe(&w, EPIPE, NULL);
		cp_event_sigpipe(&w, cp_disp_name(disp), NULL, 0);
		return true;
	}
	int sender;
	const char *why = origin(si, &sender);
	cp_writes_describe(-1, NULL, 0, &w);
	if (from_kernel(si) && cp_sigpipe_mode() == CP_SIGPIPE_IGNORE) {
		/* most likely a write the shim does not see (stdio, a raw syscall): sigpipe: ignore
		 * holds for it too (a kill(getpid(), SIGPIPE) looks the same and is dropped as well) */
		cp_event_sigpipe(&w, cp_disp_name(CP_DISP_IGNORE),
				 "dropped (sigpipe: ignore): from a write the shim does not wrap (stdio, "
				 "a raw syscall), or kill() by this process",
				 0);
		return false;
	}
	cp_event_sigpipe(&w, cp_disp_name(disp), why, sender);
	return true;
}

/* SIG_DFL: die of SIGPIPE, as the program would have without the shim (the exit status says
 * "killed by SIGPIPE"). The signal is sent again with the same siginfo, SIGPIPE unblocked. */
static void die(siginfo_t *si)
{
	cp_drain_log_pending(); /* the close lines the drainer still holds would die with it */
	cp_sigdisp_kernel_default();
	sigset_t only;
	sigemptyset(&only);
	sigaddset(&only, SIGPIPE);
	pthread_sigmask(SIG_UNBLOCK, &only, NULL);
	cp_real_syscall(SYS_rt_tgsigqueueinfo, getpid(), tid(), SIGPIPE, si);
	/* not reached unless another thread put a handler back in between: it has the signal */
}

void cp_sigpipe_handler(int sig, siginfo_t *si, void *ctx)
{
	int saved = errno;
	if (cp_sigdisp_defer(si)) {
		cp_errno_restore(saved);
		return;
	}
	struct sigaction prog;
	cp_sigdisp_get(&prog);
	enum cp_disp disp = cp_sigdisp_of(&prog);

	if (si->si_code == SI_USER && si->si_value.sival_ptr == REDELIVERED) {
		si->si_value.sival_ptr = NULL; /* as the kernel's: the write site logged it */
	} else if (own_write > 0 && from_kernel(si)) {
		cp_errno_restore(saved); /* the shim's own log write: never the program's business */
		return;
	} else if (!account(si, disp)) {
		cp_errno_restore(saved);
		return;
	}

	if (disp == CP_DISP_IGNORE) { /* the program ignored it since the kernel picked us */
		cp_errno_restore(saved);
		return;
	}
	if (disp == CP_DISP_DEFAULT) {
		die(si);
		cp_errno_restore(saved);
		return;
	}
	if (prog.sa_flags & SA_RESETHAND)
		cp_sigdisp_reset_to_default(&prog);
	/* The program's handler is not inside the marked call (its own wrapped calls mark their
	 * own), and may never return to it (siglongjmp): the mark must not outlive the call. */
	struct cp_call *outer = cp_cur_call;
	cp_cur_call = NULL;
	cp_errno_restore(saved);
	if (prog.sa_flags & SA_SIGINFO)
		prog.sa_sigaction(sig, si, ctx);
	else
		prog.sa_handler(sig);
	cp_cur_call = outer;
}

void cp_sigpipe_deliver(void)
{
	int saved = errno;
	siginfo_t si;
	memset(&si, 0, sizeof si);
	si.si_signo = SIGPIPE;
	si.si_code = SI_USER;
	si.si_pid = getpid();
	si.si_uid = getuid();
	si.si_value.sival_ptr = REDELIVERED;
	cp_real_syscall(SYS_rt_tgsigqueueinfo, si.si_pid, tid(), SIGPIPE, &si);
	cp_errno_restore(saved);
}

void cp_sigpipe_take_back(void)
{
	int saved = errno;
	sigset_t cur, only;
	pthread_sigmask(SIG_BLOCK, NULL, &cur);
	if (sigismember(&cur, SIGPIPE)) {
		sigemptyset(&only);
		sigaddset(&only, SIGPIPE);
		siginfo_t si;
		struct timespec zero = { 0, 0 };
		if (cp_real_syscall(SYS_rt_sigtimedwait, &only, &si, &zero, KERNEL_SIGSET_SIZE) == SIGPIPE &&
		    !from_kernel(&si))
			cp_real_syscall(SYS_rt_tgsigqueueinfo, getpid(), tid(), SIGPIPE, &si); /* not ours */
	}
	cp_errno_restore(saved);
}

ssize_t cp_sigpipe_quiet_write(int fd, const void *buf, size_t n)
{
	cp_sigdisp_init(); /* the handler in front before the first line can break a pipe */
	own_write++;
	ssize_t w = cp_real_syscall(SYS_write, fd, buf, n);
	int err = errno;
	own_write--;
	/* not blocked: the handler dropped it; blocked (the drainer thread, a SIGPIPE handler of
	 * the program, or the program's mask): it is pending, take it back */
	if (w < 0 && err == EPIPE && cp_sigdisp_now() != CP_DISP_IGNORE)
		cp_sigpipe_take_back();
	errno = err;
	return w;
}
