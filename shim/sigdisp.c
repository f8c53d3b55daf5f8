/* closepolicy — the program's SIGPIPE disposition (see sigdisp.h). */
#include "shim/sigdisp.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "shim/hot.h"
#include "shim/once.h"
#include "shim/perproc.h"
#include "shim/real.h"
#include "shim/sigpipe.h"

/* The record is a sequence lock: `seq` is odd while `words` is being changed. Writers hold
 * the writers' lock (WLOCK, below) with every signal blocked in their thread (so no handler of theirs can spin on an odd
 * `seq`); readers, handlers included, copy and retry until `seq` is even and unchanged. The copy
 * readers take is made of relaxed atomic words: a plain copy racing with the writer is a data
 * race in C (and ThreadSanitizer says so), even when the sequence check throws it away. */
#define ACT_WORDS ((sizeof(struct sigaction) + sizeof(unsigned long) - 1) / sizeof(unsigned long))
static struct {
	atomic_uint seq;
	_Atomic unsigned long words[ACT_WORDS]; /* `act`, for readers */
	struct sigaction act; /* the program's action, exactly as sigaction() would read it back;
			       * the writers' own copy, read and written under the lock */
	bool interrupt;       /* siginterrupt(SIGPIPE, 1): signal() installs without SA_RESTART */
	bool learned;         /* added_flags and restorer are known */
	int added_flags;      /* what the C library adds to every action (x86: SA_RESTORER) */
	void (*restorer)(void);
} prog CP_HOT_DATA(00); /* on the page every process writes at start */

static atomic_int once CP_HOT_DATA(00);

/* The writers' lock is on the per-process page (perproc.h): a fork holds it across the fork, so
 * that no other thread is half-way through a change, and lets go in the parent without a page
 * copied; the child starts with it open. */
#define WLOCK cp_perproc.sigdisp_lock
static __thread char self_marker __attribute__((tls_model("initial-exec"))); /* this thread, as the fork holder names it */

/* true when it took the lock (false: this thread's own fork holds it; a handler of the forking
 * thread changes the record before the fork goes on, while no other writer can) */
static bool begin(sigset_t *old)
{
	sigset_t all;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, old);
	if (atomic_load(&cp_perproc.sigdisp_fork_holder) == &self_marker)
		return false;
	while (atomic_flag_test_and_set_explicit(&WLOCK, memory_order_acquire))
		;
	return true;
}

static void end(const sigset_t *old, bool took)
{
	if (took)
		atomic_flag_clear_explicit(&WLOCK, memory_order_release);
	pthread_sigmask(SIG_SETMASK, old, NULL);
}

static void publish(const struct sigaction *a)
{
	unsigned long w[ACT_WORDS] = { 0 };
	prog.act = *a;
	memcpy(w, a, sizeof *a);
	atomic_fetch_add_explicit(&prog.seq, 1, memory_order_relaxed);
	atomic_thread_fence(memory_order_release);
	for (size_t i = 0; i < ACT_WORDS; i++)
		atomic_store_explicit(&prog.words[i], w[i], memory_order_relaxed);
	atomic_fetch_add_explicit(&prog.seq, 1, memory_order_release);
}

void cp_sigdisp_get(struct sigaction *out)
{
	unsigned long w[ACT_WORDS];
	for (;;) {
		unsigned before = atomic_load_explicit(&prog.seq, memory_order_acquire);
		if (before & 1)
			continue;
		for (size_t i = 0; i < ACT_WORDS; i++)
			w[i] = atomic_load_explicit(&prog.words[i], memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&prog.seq, memory_order_relaxed) == before)
			break;
	}
	memcpy(out, w, sizeof *out);
}

enum cp_disp cp_sigdisp_of(const struct sigaction *a)
{
	if (a->sa_handler == SIG_IGN)
		return CP_DISP_IGNORE;
	return a->sa_handler == SIG_DFL ? CP_DISP_DEFAULT : CP_DISP_HANDLER;
}

enum cp_disp cp_sigdisp_now(void)
{
	struct sigaction a;
	cp_sigdisp_get(&a);
	return cp_sigdisp_of(&a);
}

const char *cp_disp_name(enum cp_disp d)
{
	return d == CP_DISP_IGNORE ? "ignore" : d == CP_DISP_HANDLER ? "handler" : "default";
}

/* Set the kernel's action (lock held). The first call asked to learn also learns what the C
 * library adds to every action, so the program's record reads back with it as without the shim. */
static int kernel_set(const struct sigaction *k, bool learn)
{
	if (cp_real_sigaction(SIGPIPE, k, NULL) < 0)
		return -1;
	struct sigaction back;
	if (learn && !prog.learned && cp_real_sigaction(SIGPIPE, NULL, &back) == 0) {
		prog.added_flags = back.sa_flags & ~k->sa_flags;
		prog.restorer = back.sa_restorer;
		prog.learned = true;
	}
	return 0;
}

/* What the kernel gets for the program's action rec (lock held). */
static int install(const struct sigaction *rec, bool learn)
{
	struct sigaction k;
	if (rec->sa_handler == SIG_IGN) {
		k = *rec;
		k.sa_flags &= ~prog.added_flags;
		return kernel_set(&k, learn);
	}
	memset(&k, 0, sizeof k);
	k.sa_sigaction = cp_sigpipe_handler;
	if (rec->sa_handler == SIG_DFL) {
		sigemptyset(&k.sa_mask);
		k.sa_flags = SA_SIGINFO | SA_RESTART;
	} else {
		/* The kernel applies the program's mask, SA_NODEFER, SA_RESTART and SA_ONSTACK to the
		 * shim's handler, which calls the program's: it runs exactly as if the kernel had
		 * called it. SA_RESETHAND is done by the shim, which must stay in front. */
		k.sa_mask = rec->sa_mask;
		k.sa_flags = (rec->sa_flags & ~(SA_RESETHAND | prog.added_flags)) | SA_SIGINFO;
	}
	return kernel_set(&k, learn);
}

/* The program's act as the kernel would keep it and sigaction() read it back. */
static struct sigaction as_read_back(const struct sigaction *act)
{
	struct sigaction a = *act;
	sigdelset(&a.sa_mask, SIGKILL);
	sigdelset(&a.sa_mask, SIGSTOP);
	/* the kernel keeps 64 signals; the rest of a sigset_t reads back as zero */
	memset((char *)&a.sa_mask + 8, 0, sizeof a.sa_mask - 8);
	if (prog.learned && prog.added_flags != 0) {
		a.sa_flags |= prog.added_flags;
		a.sa_restorer = prog.restorer;
	}
	return a;
}

/* Only another thread can be half-way through a change when this one forks (a writer blocks
 * its own signals while it holds the lock): alone, a fork takes nothing. With other threads it
 * waits for the lock (a writer holds it for a few instructions) and marks itself its holder:
 * no system call, nothing written but the per-process page. */
static void fork_prepare(void)
{
	if (cp_single_threaded())
		return;
	while (atomic_flag_test_and_set_explicit(&WLOCK, memory_order_acquire))
		;
	atomic_store(&cp_perproc.sigdisp_fork_holder, &self_marker);
}

/* the parent's (the child's page is a fresh one, holder and lock clear: nothing to do there) */
static void fork_after(void)
{
	if (atomic_load(&cp_perproc.sigdisp_fork_holder) != &self_marker)
		return;
	atomic_store(&cp_perproc.sigdisp_fork_holder, NULL);
	atomic_flag_clear_explicit(&WLOCK, memory_order_release);
}

/* What the record holds before anything is published: SIG_DFL, no flags, no restorer, an empty
 * mask (the kernel keeps 64 signals; the C library leaves the rest of a sigset_t as it finds it). */
static bool is_initial_record(const struct sigaction *a)
{
	static const char none[8];
	return a->sa_handler == SIG_DFL && a->sa_flags == 0 && a->sa_restorer == NULL &&
	       memcmp(&a->sa_mask, none, sizeof none) == 0;
}

/* Two system calls at start, one when SIGPIPE is ignored, and nothing written when the
 * disposition is SIG_DFL (what exec leaves of any handler): the record starts as SIG_DFL, no flags,
 * no mask, which is what the kernel holds then. No lock and no blocked signals: this runs under
 * the once that every other writer passes first, and the record is complete before the shim's
 * handler (the only reader that runs in a signal) is in the kernel. What the C library adds to
 * every action is learned at the program's first change (cp_sigdisp_sigaction), not here. */
static void setup(void)
{
	for (int i = 0; i < CP_SIGFN_COUNT; i++)
		(void)cp_real_sigfn((enum cp_sigfn)i);
	struct sigaction cur;
	if (cp_real_sigaction(SIGPIPE, NULL, &cur) < 0) {
		memset(&cur, 0, sizeof cur);
		cur.sa_handler = SIG_DFL;
	}
	if (!is_initial_record(&cur))
		publish(&cur);
	if (cur.sa_handler != SIG_IGN)
		install(&cur, false);
	pthread_atfork(fork_prepare, fork_after, NULL);
}

void cp_sigdisp_init(void)
{
	cp_once(&once, setup);
}

int cp_sigdisp_sigaction(const struct sigaction *act, struct sigaction *old)
{
	cp_sigdisp_init();
	sigset_t mask;
	bool took = begin(&mask);
	struct sigaction prev = prog.act;
	int ret = 0;
	if (act != NULL) {
		struct sigaction rec = as_read_back(act);
		ret = install(&rec, true);
		if (ret == 0)
			publish((rec = as_read_back(act), &rec)); /* again: install may just have learned */
	}
	end(&mask, took);
	if (ret == 0 && old != NULL)
		*old = prev;
	return ret;
}

void cp_sigdisp_reset_to_default(const struct sigaction *ran)
{
	sigset_t mask;
	bool took = begin(&mask);
	/* only if the program has not installed something else meanwhile */
	if (prog.act.sa_handler == ran->sa_handler) {
		struct sigaction rec = prog.act;
		rec.sa_handler = SIG_DFL;
		if (install(&rec, true) == 0)
			publish(&rec);
	}
	end(&mask, took);
}

void cp_sigdisp_kernel_default(void)
{
	struct sigaction d;
	memset(&d, 0, sizeof d);
	d.sa_handler = SIG_DFL;
	cp_real_sigaction(SIGPIPE, &d, NULL);
}

/* glibc's signal() (BSD semantics) and sysv_signal(), made on the record. */
cp_handler_t cp_sigdisp_signal(cp_handler_t handler, bool sysv)
{
	if (handler == SIG_ERR) {
		errno = EINVAL;
		return SIG_ERR;
	}
	struct sigaction a, old;
	memset(&a, 0, sizeof a);
	a.sa_handler = handler;
	sigemptyset(&a.sa_mask);
	if (sysv) {
		a.sa_flags = SA_RESETHAND | SA_NODEFER;
	} else {
		sigaddset(&a.sa_mask, SIGPIPE);
		a.sa_flags = prog.interrupt ? 0 : SA_RESTART;
	}
	if (cp_sigdisp_sigaction(&a, &old) < 0)
		return SIG_ERR;
	return old.sa_handler;
}

/* glibc's sigset(): SIG_HOLD blocks; anything else installs (no flags, empty mask) and unblocks. */
cp_handler_t cp_sigdisp_sigset(cp_handler_t disp)
{
	sigset_t only, oset;
	sigemptyset(&only);
	sigaddset(&only, SIGPIPE);
	if (disp == SIG_ERR) {
		errno = EINVAL;
		return SIG_ERR;
	}
	cp_sigdisp_init();
	if (disp == SIG_HOLD) {
		if (sigprocmask(SIG_BLOCK, &only, &oset) < 0)
			return SIG_ERR;
		if (sigismember(&oset, SIGPIPE))
			return SIG_HOLD;
		struct sigaction cur;
		cp_sigdisp_get(&cur);
		return cur.sa_handler;
	}
	struct sigaction a, old;
	memset(&a, 0, sizeof a);
	a.sa_handler = disp;
	sigemptyset(&a.sa_mask);
	if (cp_sigdisp_sigaction(&a, &old) < 0 || sigprocmask(SIG_UNBLOCK, &only, &oset) < 0)
		return SIG_ERR;
	return sigismember(&oset, SIGPIPE) ? SIG_HOLD : old.sa_handler;
}

int cp_sigdisp_sigignore(void)
{
	struct sigaction a;
	memset(&a, 0, sizeof a);
	a.sa_handler = SIG_IGN;
	sigemptyset(&a.sa_mask);
	return cp_sigdisp_sigaction(&a, NULL);
}

int cp_sigdisp_siginterrupt(int interrupt)
{
	struct sigaction a;
	if (cp_sigdisp_sigaction(NULL, &a) < 0)
		return -1;
	if (interrupt)
		a.sa_flags &= ~SA_RESTART;
	else
		a.sa_flags |= SA_RESTART;
	prog.interrupt = interrupt != 0;
	return cp_sigdisp_sigaction(&a, NULL);
}
