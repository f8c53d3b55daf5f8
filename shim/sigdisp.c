/* closepolicy — the program's SIGPIPE disposition (see sigdisp.h). */
#include "shim/sigdisp.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/hot.h"
#include "shim/once.h"
#include "shim/perproc.h"
#include "shim/real.h"
#include "shim/sigpipe.h"

/* The record: a few immutable copies (buffers) of the program's action and one atomic word, `cur`,
 * naming the published one and counting the changes (a generation, so the same buffer published
 * again is never mistaken for the old publication).
 *
 * Readers (the shim's handler among them) load `cur`, copy its buffer and load `cur` again: the
 * same word means the buffer was published all along, and a published buffer is never written,
 * so the copy is whole. A reader never waits for anyone: a handler that interrupts a writer in
 * its own thread finds the last publication complete. A reader interrupted by a writer copies
 * again.
 *
 * A writer claims a buffer nobody uses (`busy`: published, or being filled), asks the kernel for
 * the action (one rt_sigaction, which also returns the kernel's previous action), fills the
 * buffer and publishes it with a compare-and-swap of `cur` against the word it read first; the
 * buffer it replaces is then free. When the swap fails, a nested writer (a handler of the
 * program's that called sigaction(SIGPIPE) in between) published meanwhile, before or after this
 * writer's kernel call: the writer reads the newest record and asks the kernel again, until its
 * swap succeeds. So the last writer to publish is the last to have set the kernel, kernel and
 * record agree once writers are done, and every call is as if made whole at its swap:
 *  - the program's handler H that calls sigaction(SIGPIPE, B) while the main flow is inside
 *    sigaction(SIGPIPE, A): H's call runs whole (B in the kernel, B published, H's old is what was
 *    published before A's); A's swap then fails, A sets the kernel again and publishes, and A's
 *    old is B: first B, then A, as without the shim when H runs before the kernel call of A;
 *  - a handler in the window between A's swap and its return finds A published; its call comes
 *    after A's, its old is A;
 *  - the shim's handler, anywhere in there, acts on the last publication: the disposition of the
 *    calls made whole so far (the kernel's action is the shim's handler for every disposition but
 *    SIG_IGN, and a SIGPIPE the kernel ignores for A's SIG_IGN is one the program asked to ignore);
 *  - a change that depends on the record (SA_RESETHAND's return to SIG_DFL, siginterrupt) is
 *    decided again on the newest record at each try; one that no longer applies after a try
 *    that set the kernel sets the newest record's action again.
 * Why the last to publish is the last to have set the kernel: a writer Y whose kernel call falls
 * between X's kernel call and X's swap read `cur` before its call, so before X's swap: Y's swap
 * fails and Y calls again, after. No writer ends without a swap that follows its last call.
 * Nothing waits: no deadlock whatever a handler does. A writer abandoned by a siglongjmp out of a
 * handler that interrupted it keeps its buffer (taken back when every buffer is: see claim()),
 * and may have set the kernel without publishing: the next change sets both again.
 *
 * That holds for one thread. With several, a writer also takes the writers' lock with every
 * signal blocked in its thread (no handler of its can then be a nested writer nor wait for the
 * lock, and a siglongjmp cannot leave it held); the rt_sigprocmask pair is the price of threads.
 *
 * fork: the record is in the process's memory, copied as it is. A fork from a handler that
 * interrupted a writer gives the child that writer, which resumes there as in the parent. With
 * threads, the forking thread holds the writers' lock across the fork, so that no other thread is
 * half-way through a change the child would never finish. */
#define RECS 8
#define CUR_IDX 0xffu
#define CUR_GEN (1ull << 8)
#define KFLAGS_UNKNOWN (-1L)

enum { W_HANDLER, W_FLAGS, W_MASK, W_RESTORER, REC_WORDS };

struct rec {
	_Atomic unsigned long w[REC_WORDS]; /* the program's action, as sigaction() reads it back */
	_Atomic long kflags; /* the flags the shim asked the kernel for with it (before the C library
			      * added its own), or KFLAGS_UNKNOWN */
};

enum { STARTUP_DONE, STARTUP_OPEN, STARTUP_DEFERRED };

static struct {
	_Atomic uint64_t cur;   /* the published buffer's index | its generation * CUR_GEN */
	atomic_uint busy;       /* buffers published or being filled, a bit each */
	atomic_uint in_change;  /* writers between their claim and their publication */
	atomic_int startup;     /* STARTUP_*: the window of setup() (see cp_sigdisp_defer) */
	atomic_bool interrupt;  /* siginterrupt(SIGPIPE, 1): signal() installs without SA_RESTART */
	atomic_bool learned;    /* added_flags and restorer are known */
	_Atomic int added_flags; /* what the C library adds to every action (x86: SA_RESTORER) */
	_Atomic uintptr_t restorer;
	struct rec rec[RECS];   /* rec[0], all zero, is SIG_DFL: what readers find before setup() */
} st CP_HOT_DATA(00); /* on the page every process writes at start */

static atomic_int once CP_HOT_DATA(00);

/* ---- the record ---- */

static void pack(const struct sigaction *a, unsigned long w[REC_WORDS])
{
	w[W_HANDLER] = (unsigned long)(uintptr_t)a->sa_handler;
	w[W_FLAGS] = (unsigned int)a->sa_flags;
	memcpy(&w[W_MASK], &a->sa_mask, sizeof w[W_MASK]); /* the kernel keeps 64 signals */
	w[W_RESTORER] = (unsigned long)(uintptr_t)a->sa_restorer;
}

static void unpack(const unsigned long w[REC_WORDS], struct sigaction *a)
{
	memset(a, 0, sizeof *a);
	a->sa_handler = (cp_handler_t)(uintptr_t)w[W_HANDLER];
	a->sa_flags = (int)(unsigned int)w[W_FLAGS];
	memcpy(&a->sa_mask, &w[W_MASK], sizeof w[W_MASK]);
	a->sa_restorer = (void (*)(void))(uintptr_t)w[W_RESTORER];
}

/* The published record (and the flags the kernel was asked for with it): the `cur` word it was
 * published under. Async-signal-safe, never waits. */
CP_CHILD static uint64_t snapshot(struct sigaction *out, long *kflags)
{
	unsigned long w[REC_WORDS];
	for (;;) {
		uint64_t c = atomic_load_explicit(&st.cur, memory_order_acquire);
		const struct rec *r = &st.rec[c & CUR_IDX];
		for (int i = 0; i < REC_WORDS; i++)
			w[i] = atomic_load_explicit(&r->w[i], memory_order_relaxed);
		long kf = atomic_load_explicit(&r->kflags, memory_order_relaxed);
		/* a writer that reuses this buffer claimed it after `cur` moved on (busy's release and
		 * acquire), so a copy that saw any of its words sees `cur` changed here */
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&st.cur, memory_order_relaxed) == c) {
			unpack(w, out);
			if (kflags != NULL)
				*kflags = kf;
			return c;
		}
	}
}

/* A buffer neither published nor being filled. When every one is taken, the others than the
 * published one were left by writers a siglongjmp abandoned (seven writers part-way in one thread
 * would be handlers nested seven deep, each inside sigaction(SIGPIPE)): they are taken back,
 * rather than failing the program's call. */
static int claim(void)
{
	unsigned b = atomic_load_explicit(&st.busy, memory_order_relaxed);
	for (;;) {
		unsigned free_bits = ~b & ((1u << RECS) - 1);
		if (free_bits == 0) {
			unsigned published = 1u << (atomic_load(&st.cur) & CUR_IDX);
			if (atomic_compare_exchange_weak_explicit(&st.busy, &b, published,
								  memory_order_acquire, memory_order_relaxed))
				b = published;
			continue;
		}
		unsigned i = (unsigned)__builtin_ctz(free_bits);
		if (atomic_compare_exchange_weak_explicit(&st.busy, &b, b | 1u << i, memory_order_acquire,
							  memory_order_relaxed))
			return (int)i;
	}
}

static void unclaim(unsigned i)
{
	atomic_fetch_and_explicit(&st.busy, ~(1u << i), memory_order_release);
}

/* Fill a claimed buffer (not yet visible: `cur` does not name it). */
CP_CHILD static void fill(unsigned i, const struct sigaction *a, long kflags)
{
	unsigned long w[REC_WORDS];
	pack(a, w);
	atomic_thread_fence(memory_order_release); /* see snapshot() */
	for (int k = 0; k < REC_WORDS; k++)
		atomic_store_explicit(&st.rec[i].w[k], w[k], memory_order_relaxed);
	atomic_store_explicit(&st.rec[i].kflags, kflags, memory_order_relaxed);
}

void cp_sigdisp_get(struct sigaction *out)
{
	snapshot(out, NULL);
}

enum cp_disp cp_sigdisp_of(const struct sigaction *a)
{
	if (a->sa_handler == SIG_IGN)
		return CP_DISP_IGNORE;
	return a->sa_handler == SIG_DFL ? CP_DISP_DEFAULT : CP_DISP_HANDLER;
}

/* Only the published handler's word, under the same check as snapshot(): asked by every write()
 * to a followed socket. */
CP_CHILD enum cp_disp cp_sigdisp_now(void)
{
	for (;;) {
		uint64_t c = atomic_load_explicit(&st.cur, memory_order_acquire);
		unsigned long h = atomic_load_explicit(&st.rec[c & CUR_IDX].w[W_HANDLER], memory_order_relaxed);
		atomic_thread_fence(memory_order_acquire);
		if (atomic_load_explicit(&st.cur, memory_order_relaxed) == c) {
			struct sigaction a = { .sa_handler = (cp_handler_t)(uintptr_t)h };
			return cp_sigdisp_of(&a);
		}
	}
}

const char *cp_disp_name(enum cp_disp d)
{
	return d == CP_DISP_IGNORE ? "ignore" : d == CP_DISP_HANDLER ? "handler" : "default";
}

/* ---- what the kernel gets ---- */

/* The program's act as the kernel would keep it and sigaction() read it back. */
CP_CHILD static struct sigaction as_read_back(const struct sigaction *act)
{
	struct sigaction a = *act;
	sigdelset(&a.sa_mask, SIGKILL);
	sigdelset(&a.sa_mask, SIGSTOP);
	/* the kernel keeps 64 signals; the rest of a sigset_t reads back as zero */
	memset((char *)&a.sa_mask + 8, 0, sizeof a.sa_mask - 8);
	int added = atomic_load_explicit(&st.added_flags, memory_order_relaxed);
	if (atomic_load_explicit(&st.learned, memory_order_acquire) && added != 0) {
		a.sa_flags |= added;
		a.sa_restorer = (void (*)(void))atomic_load_explicit(&st.restorer, memory_order_relaxed);
	}
	return a;
}

/* The kernel's action for the program's action rec. */
CP_CHILD static struct sigaction kernel_action(const struct sigaction *rec)
{
	int added = atomic_load_explicit(&st.learned, memory_order_acquire)
			    ? atomic_load_explicit(&st.added_flags, memory_order_relaxed)
			    : 0;
	struct sigaction k;
	if (rec->sa_handler == SIG_IGN) {
		k = *rec;
		k.sa_flags &= ~added;
		return k;
	}
	memset(&k, 0, sizeof k);
	k.sa_sigaction = cp_sigpipe_handler;
	if (rec->sa_handler == SIG_DFL) {
		/* Every signal blocked while the shim's handler runs for SIG_DFL: the program has no
		 * handler to see it, the handler only logs and lets SIGPIPE kill; and at start-up the
		 * few instructions that keep a SIGPIPE for later (cp_sigdisp_defer) cannot be
		 * interrupted by a handler that would wait for the start-up. */
		sigfillset(&k.sa_mask);
		k.sa_flags = SA_SIGINFO | SA_RESTART;
	} else {
		/* The kernel applies the program's mask, SA_NODEFER, SA_RESTART and SA_ONSTACK to the
		 * shim's handler, which calls the program's: it runs exactly as if the kernel had
		 * called it. SA_RESETHAND is done by the shim, which must stay in front. */
		k.sa_mask = rec->sa_mask;
		k.sa_flags = (rec->sa_flags & ~(SA_RESETHAND | added)) | SA_SIGINFO;
	}
	return k;
}

static void learn(int added, void (*restorer)(void))
{
	atomic_store_explicit(&st.restorer, (uintptr_t)restorer, memory_order_relaxed);
	atomic_store_explicit(&st.added_flags, added, memory_order_relaxed);
	atomic_store_explicit(&st.learned, true, memory_order_release);
}

/* `got` is what the C library read back of an action it was asked for with `asked` flags and
 * handler: the flags it adds and its restorer are the rest. */
CP_CHILD static bool learn_from(const struct sigaction *got, void *handler, long asked)
{
	if (asked == KFLAGS_UNKNOWN || (void *)got->sa_handler != handler ||
	    ((unsigned)got->sa_flags & (unsigned long)asked) != (unsigned long)asked)
		return false;
	learn((int)((unsigned)got->sa_flags & ~(unsigned long)asked), got->sa_restorer);
	return true;
}

static void *kernel_handler(const struct sigaction *rec)
{
	return rec->sa_handler == SIG_IGN ? (void *)SIG_IGN : (void *)cp_sigpipe_handler;
}

/* ---- changes ---- */

/* What a change makes of the published record; false: nothing to change. */
typedef bool (*change_fn)(const struct sigaction *cur, struct sigaction *next, const void *arg);

/* One change, made whole (see the top). The record it replaced in *old. */
CP_CHILD static int change(change_fn fn, const void *arg, struct sigaction *old)
{
	int b = claim();
	/* no other writer part-way (an outer one this interrupted): the kernel holds the published
	 * record's action, until a nested writer publishes */
	bool alone = atomic_fetch_add_explicit(&st.in_change, 1, memory_order_relaxed) == 0;
	int ret = 0;
	for (bool first = true;; first = false) {
		struct sigaction prev, next;
		long prev_kflags;
		uint64_t c = snapshot(&prev, &prev_kflags);
		if (!fn(&prev, &next, arg)) {
			if (first) {
				unclaim((unsigned)b);
				*old = prev;
				break;
			}
			next = prev; /* the kernel may hold this writer's first try: the record's again */
		}
		struct sigaction rec = as_read_back(&next), k = kernel_action(&rec), kold;
		bool learning = !atomic_load_explicit(&st.learned, memory_order_acquire);
		if (cp_real_sigaction(SIGPIPE, &k, learning ? &kold : NULL) < 0) {
			unclaim((unsigned)b);
			ret = -1;
			break;
		}
		if (learning) {
			/* The kernel's previous action is the published record's when nothing came in
			 * between; else (a nested change, an outer writer part-way) ask it. */
			bool same = atomic_load_explicit(&st.cur, memory_order_acquire) == c;
			if (!(same && alone && first && learn_from(&kold, kernel_handler(&prev), prev_kflags)) &&
			    cp_real_sigaction(SIGPIPE, NULL, &kold) == 0 &&
			    atomic_load_explicit(&st.cur, memory_order_acquire) == c)
				learn_from(&kold, (void *)k.sa_handler, k.sa_flags);
			rec = as_read_back(&next); /* with what was learned */
		}
		fill((unsigned)b, &rec, k.sa_flags);
		uint64_t mine = (c & ~(uint64_t)CUR_IDX) + CUR_GEN + (unsigned)b;
		if (atomic_compare_exchange_strong_explicit(&st.cur, &c, mine, memory_order_release,
							    memory_order_relaxed)) {
			unclaim((unsigned)(c & CUR_IDX));
			*old = prev;
			break;
		}
		/* published by a nested writer meanwhile: the kernel again, on the newest record */
	}
	atomic_fetch_sub_explicit(&st.in_change, 1, memory_order_relaxed);
	return ret;
}

/* The writers' lock, for a process with threads. It is on the per-process page (perproc.h): a
 * fork holds it across the fork, so that no other thread is half-way through a change, and lets
 * go in the parent without a page copied; the child starts with it open. */
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

/* A change by any writer: alone, as it is; with threads, under the lock, signals blocked. */
CP_CHILD static int change_any(change_fn fn, const void *arg, struct sigaction *old)
{
	if (cp_single_threaded())
		return change(fn, arg, old);
	sigset_t mask;
	bool took = begin(&mask);
	int ret = change(fn, arg, old);
	int err = errno;
	end(&mask, took);
	errno = err;
	return ret;
}

/* Only another thread can be half-way through a locked change when this one forks (a writer
 * blocks its own signals while it holds the lock): alone, a fork takes nothing. With other
 * threads it waits for the lock (a writer holds it for a system call) and marks itself its
 * holder: no system call, nothing written but the per-process page. */
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

/* ---- start-up ---- */

/* A SIGPIPE that reached the shim's handler while setup() did not yet know the inherited
 * disposition: kept here, and sent again once it is known. */
static struct {
	siginfo_t si;
	pid_t tid;
	atomic_bool ready;
} deferred;

bool cp_sigdisp_defer(const siginfo_t *si)
{
	int s = atomic_load_explicit(&st.startup, memory_order_acquire);
	if (s == STARTUP_DONE)
		return false;
	if (s == STARTUP_OPEN &&
	    atomic_compare_exchange_strong_explicit(&st.startup, &s, STARTUP_DEFERRED, memory_order_acquire,
						    memory_order_acquire)) {
		deferred.si = *si;
		deferred.tid = (pid_t)cp_real_syscall(SYS_gettid);
		atomic_store_explicit(&deferred.ready, true, memory_order_release);
		return true;
	}
	/* one is kept already (the kernel keeps one SIGPIPE pending, not two), or start-up ended
	 * since (the record is complete: act on it) */
	return s != STARTUP_DONE;
}

/* One system call at start in the common case: the shim's handler installed, the inherited
 * action read back by the same call. The record starts as SIG_DFL (rec[0], all zero: what exec
 * leaves of any handler, and what readers find until setup publishes). A SIGPIPE in the window
 * before the inherited action is published is kept by the handler (cp_sigdisp_defer) and sent
 * again after, when it meets the inherited disposition: killed by it, ignored, or the handler.
 * An inherited SIG_IGN (which exec keeps) is put back in the kernel: a second call.
 * No lock and no blocked signals: this runs under the once that every other writer passes first.
 * What the C library adds to every action is learned at the program's first change. */
static void setup(void)
{
	for (int i = 0; i < CP_SIGFN_COUNT; i++)
		(void)cp_real_sigfn((enum cp_sigfn)i);
	struct sigaction dfl, inherited;
	memset(&dfl, 0, sizeof dfl);
	dfl.sa_handler = SIG_DFL;
	struct sigaction k = kernel_action(&dfl);
	long kflags = k.sa_flags;
	atomic_store(&st.startup, STARTUP_OPEN);
	if (cp_real_sigaction(SIGPIPE, &k, &inherited) < 0) {
		inherited = dfl;
		kflags = KFLAGS_UNKNOWN;
	}
	struct sigaction rec = as_read_back(&inherited);
	if (rec.sa_handler != SIG_DFL) {
		/* SIG_IGN; or a handler installed past the C library before the shim started */
		k = kernel_action(&rec);
		kflags = cp_real_sigaction(SIGPIPE, &k, NULL) == 0 ? k.sa_flags : KFLAGS_UNKNOWN;
	}
	fill(1, &rec, kflags);
	atomic_store_explicit(&st.busy, 1u << 1, memory_order_relaxed);
	atomic_store_explicit(&st.cur, CUR_GEN + 1, memory_order_release);
	if (atomic_exchange(&st.startup, STARTUP_DONE) == STARTUP_DEFERRED) {
		/* the handler that kept it may be another thread's, part-way (it cannot be interrupted:
		 * every signal is blocked in it, see kernel_action) */
		while (!atomic_load_explicit(&deferred.ready, memory_order_acquire))
			;
		if (rec.sa_handler != SIG_IGN)
			cp_real_syscall(SYS_rt_tgsigqueueinfo, getpid(), deferred.tid, SIGPIPE, &deferred.si);
	}
	pthread_atfork(fork_prepare, fork_after, NULL);
}

void cp_sigdisp_init(void)
{
	cp_once(&once, setup);
}

/* ---- the program's calls ---- */

CP_CHILD static bool to_act(const struct sigaction *cur, struct sigaction *next, const void *act)
{
	(void)cur;
	*next = *(const struct sigaction *)act;
	return true;
}

CP_CHILD int cp_sigdisp_sigaction(const struct sigaction *act, struct sigaction *old)
{
	cp_sigdisp_init();
	struct sigaction prev;
	if (act == NULL) {
		snapshot(&prev, NULL);
	} else {
		struct sigaction a = *act; /* act and old may be the same */
		if (change_any(to_act, &a, &prev) < 0)
			return -1;
	}
	if (old != NULL)
		*old = prev;
	return 0;
}

/* the handler `ran` is being run once (SA_RESETHAND): SIG_DFL, unless replaced meanwhile */
static bool to_default_after(const struct sigaction *cur, struct sigaction *next, const void *ran)
{
	if (cur->sa_handler != ((const struct sigaction *)ran)->sa_handler)
		return false;
	*next = *cur;
	next->sa_handler = SIG_DFL;
	return true;
}

void cp_sigdisp_reset_to_default(const struct sigaction *ran)
{
	struct sigaction prev;
	(void)change_any(to_default_after, ran, &prev);
}

void cp_sigdisp_kernel_default(void)
{
	struct sigaction d;
	memset(&d, 0, sizeof d);
	d.sa_handler = SIG_DFL;
	cp_real_sigaction(SIGPIPE, &d, NULL);
}

/* glibc's signal() (BSD semantics) and sysv_signal(), made on the record. */
CP_CHILD cp_handler_t cp_sigdisp_signal(cp_handler_t handler, bool sysv)
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
		a.sa_flags = atomic_load_explicit(&st.interrupt, memory_order_relaxed) ? 0 : SA_RESTART;
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

static bool to_interrupt(const struct sigaction *cur, struct sigaction *next, const void *interrupt)
{
	*next = *cur;
	if (*(const int *)interrupt)
		next->sa_flags &= ~SA_RESTART;
	else
		next->sa_flags |= SA_RESTART;
	return true;
}

int cp_sigdisp_siginterrupt(int interrupt)
{
	cp_sigdisp_init();
	struct sigaction prev;
	if (change_any(to_interrupt, &interrupt, &prev) < 0)
		return -1;
	atomic_store_explicit(&st.interrupt, interrupt != 0, memory_order_relaxed);
	return 0;
}
