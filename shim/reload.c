/* closepolicy — taking a policy while the program runs (see reload.h). */
#include "shim/reload.h"

#include <dlfcn.h>
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/config.h"
#include "shim/counters.h"
#include "shim/events.h"
#include "shim/log.h"
#include "shim/perproc.h"
#include "shim/real.h"
#include "shim/refs.h"
#include "shim/errsave.h"

/* On the per-process page (perproc.h), which a forked child gets zeroed: it has no such thread.
 * started: the thread exists (or is being started); stop: the main thread is leaving, the
 * thread leaves; file: the counters file it answers in. */
#define PP (cp_perproc)

static void futex_wake(uint32_t *word)
{
	/* not FUTEX_PRIVATE: the command waits on the same page through its own mapping */
	(void)cp_real_syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void futex_wait(uint32_t *word, uint32_t val)
{
	(void)cp_real_syscall(SYS_futex, word, FUTEX_WAIT, val, NULL, NULL, 0);
}

static bool looks_at_addresses(const struct cp_policy *p)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct cp_match *m = &p->rules[i].match;
		if (m->n_local_ports || m->n_peer_ports || m->n_local || m->n_peer)
			return true;
	}
	return false;
}

/* The new policy in force. The old one and its matcher are kept: sockets hold pointers to its
 * rules, and a close may be reading it right now (a few KiB per reload, by design). */
static void swap_in(struct cp_policy *p, struct cp_matcher *m)
{
	cp_matcher_init(m, p, cp_cfg.program);
	if (looks_at_addresses(p)) /* never turned off: a socket accepted meanwhile needs them */
		cp_cfg.match_needs_addresses = true;
	bool dry = p->dry_run;
	const char *env = secure_getenv("CLOSEPOLICY_DRY_RUN");
	if (env != NULL && *env != '\0')
		dry = strcmp(env, "0") != 0 && strcmp(env, "false") != 0;
	cp_cfg.dry_run = dry;
	cp_cfg.reloaded = m;
	cp_cfg.policy = p;
	cp_ctr_policy_loaded(p);
}

static void log_reloaded(const struct cp_policy *p, uint64_t generation)
{
	if (!cp_log_enabled(CP_LEVEL_INFO))
		return;
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_INFO, "policy");
	cp_log_str(&l, "outcome", "reloaded");
	cp_log_str(&l, "file", p->source);
	cp_log_uint(&l, "rules", p->n_rules);
	cp_log_uint(&l, "generation", generation);
	cp_log_bool(&l, "dry_run", cp_cfg.dry_run);
	cp_log_end(&l);
}

/* Load req's file (or the file in force) and take it; false and a message when refused. */
static bool take(const char *req, char *why, size_t size)
{
	const struct cp_policy *now = cp_cfg.policy;
	const char *path = req[0] != '\0' ? req : now->source;
	if (req[0] == '\0' && now == cp_policy_default()) {
		snprintf(why, size, "no policy file in force: name one (closepolicy reload -p POLICY)");
		cp_event_policy_error("(built-in default)", why);
		return false;
	}
	struct cp_diag *diag = calloc(1, sizeof *diag);
	struct cp_matcher *m = malloc(sizeof *m);
	struct cp_policy *p = diag && m ? cp_policy_load_file(path, diag) : NULL;
	if (p == NULL) {
		if (diag == NULL || m == NULL)
			snprintf(why, size, "out of memory loading the policy");
		else if (diag->count > 0)
			cp_diag_format(diag, 0, why, size);
		else
			snprintf(why, size, "%.300s: the policy was rejected", path);
		cp_event_policy_error(path, why);
		free(diag);
		free(m);
		return false;
	}
	free(diag);
	swap_in(p, m);
	log_reloaded(p, __atomic_load_n(&PP.reload_file->generation, __ATOMIC_ACQUIRE));
	return true;
}

static void answer(struct cp_ctr_file *f, uint32_t seq)
{
	char req[CP_CTR_PATH], why[CP_DIAG_MSG + 300];
	memcpy(req, f->req_path, sizeof req); /* the command may rewrite it: one copy, then trust none */
	req[sizeof req - 1] = '\0';
	bool ok = take(req, why, sizeof why);
	if (!ok)
		cp_ctr_policy_rejected(why);
	__atomic_store_n(&f->done_ok, ok ? 1u : 0u, __ATOMIC_RELAXED);
	__atomic_store_n(&f->done_seq, seq, __ATOMIC_RELEASE);
	futex_wake(&f->done_seq);
}

static void *serve(void *arg)
{
	struct cp_ctr_file *f = arg;
	prctl(PR_SET_NAME, "closepolicy", 0, 0, 0);
	for (;;) {
		uint32_t seq = __atomic_load_n(&f->req_seq, __ATOMIC_ACQUIRE);
		if (__atomic_load_n(&PP.reload_stop, __ATOMIC_ACQUIRE))
			return NULL;
		if (seq != __atomic_load_n(&f->done_seq, __ATOMIC_ACQUIRE))
			answer(f, seq);
		else
			futex_wait(&f->req_seq, seq);
	}
}

bool cp_reload_thread_started(void)
{
	return __atomic_load_n(&PP.reload_started, __ATOMIC_ACQUIRE) != 0;
}

/* When the thread starts: CLOSEPOLICY_RELOAD=1 at the first TCP socket, =0 never; by default
 * once the process has a thread besides its first (its own, or the drainer). A second thread
 * makes the C library take its multi-threaded paths on every cancellable call and at every fork
 * (about 5% on a loopback send here, and a few page faults a fork): a single-threaded program
 * pays that only when asked to. Read once (secure_getenv walks the environment). */
enum reload_mode { MODE_UNREAD, MODE_NEVER, MODE_FIRST_SOCKET, MODE_WHEN_THREADED };
static int mode;

static int reload_mode(void)
{
	/* Two threads' first sockets may read it at once: both compute the same value. */
	int m = __atomic_load_n(&mode, __ATOMIC_RELAXED);
	if (m == MODE_UNREAD) {
		const char *v = secure_getenv("CLOSEPOLICY_RELOAD");
		m = v != NULL && strcmp(v, "0") == 0   ? MODE_NEVER
		    : v != NULL && strcmp(v, "1") == 0 ? MODE_FIRST_SOCKET
						       : MODE_WHEN_THREADED;
		__atomic_store_n(&mode, m, __ATOMIC_RELAXED);
	}
	return m;
}

void cp_reload_thread_start(struct cp_ctr_file *f)
{
	if (__atomic_load_n(&PP.reload_started, __ATOMIC_ACQUIRE))
		return;
	int m = reload_mode();
	if (m == MODE_WHEN_THREADED && cp_single_threaded())
		return; /* not yet: asked again at the next connection and when the drainer starts */
	if (__atomic_exchange_n(&PP.reload_started, 1, __ATOMIC_ACQ_REL) || m == MODE_NEVER)
		return;
	PP.reload_file = f;
	/* requests written before this process existed are not ours */
	__atomic_store_n(&f->done_seq, __atomic_load_n(&f->req_seq, __ATOMIC_ACQUIRE), __ATOMIC_RELEASE);
	sigset_t all, old;
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old); /* the program's signals never land on this thread */
	pthread_attr_t attr;
	pthread_t t;
	int err = pthread_attr_init(&attr);
	if (err == 0) {
		pthread_attr_setstacksize(&attr, 256 * 1024);
		err = pthread_create(&t, &attr, serve, f); /* joinable: see cp_reload_main_leaving */
		pthread_attr_destroy(&attr);
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err == 0)
		PP.reload_thread = t;
	if (err != 0) /* tried once: a retry at every connection would flood the log */
		cp_event_error(-1, "cannot start the thread that answers closepolicy reload", err,
			       "this process cannot be reloaded; its counters are kept");
}

static nlink_t tasks(void)
{
	struct stat st;
	return stat("/proc/self/task", &st) == 0 ? st.st_nlink : 0;
}

void cp_reload_main_leaving(void)
{
	if (getpid() != (pid_t)cp_real_syscall(SYS_gettid) || !__atomic_load_n(&PP.reload_started, __ATOMIC_ACQUIRE) ||
	    PP.reload_file == NULL || __atomic_exchange_n(&PP.reload_stop, 1, __ATOMIC_ACQ_REL))
		return;
	int saved = errno;
	nlink_t before = tasks();
	__atomic_fetch_add(&PP.reload_file->req_seq, 1, __ATOMIC_ACQ_REL); /* no request: a wake that cannot be missed */
	futex_wake(&PP.reload_file->req_seq);
	pthread_join(PP.reload_thread, NULL);
	/* join returns when the thread's stack is free; the kernel lists it a moment longer, and a
	 * raw exit of the program's only thread asks how many there are */
	for (int i = 0; i < 1000 && tasks() >= before && before > 0; i++)
		sched_yield();
	cp_errno_restore(saved);
}

void cp_reload_pthread_exit(void *ret)
{
	static void (*real)(void *);
	cp_reload_main_leaving();
	if (real == NULL)
		real = (void (*)(void *))dlsym(RTLD_NEXT, "pthread_exit");
	real(ret);
	__builtin_unreachable();
}
