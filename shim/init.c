/* closepolicy — start-up: which policy, which log, who we are; and the fork handlers.
 * Runs from the constructor, or earlier from the first wrapper that needs the policy (another
 * library's constructor may open sockets before ours runs). */
#include "shim/config.h"

#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/counters.h"
#include "shim/drainer.h"
#include "shim/events.h"
#include "shim/hot.h"
#include "shim/inherit.h"
#include "shim/log.h"
#include "shim/once.h"
#include "shim/perproc.h"
#include "shim/polcache.h"
#include "shim/real.h"
#include "shim/refs.h"
#include "shim/sigdisp.h"
#include "shim/sock.h"
#include "shim/yamldl.h"

struct cp_config cp_cfg;

/* The name the program was started as (basename of argv[0]): what a user types and sees in ps,
 * and for a symlinked executable (redis-server -> redis-check-rdb) the name that means something.
 * Copied now: programs such as nginx later overwrite argv for their process titles.
 * /proc/self/exe only when argv[0] is empty. */
__attribute__((noinline)) /* its PATH_MAX buffer not in init_once's frame, under every call after it */
static void find_program_name(void)
{
	char exe[PATH_MAX];
	const char *name = program_invocation_short_name;
	if (name == NULL || *name == '\0') {
		ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
		name = "?";
		if (n > 0) {
			exe[n] = '\0';
			const char *slash = strrchr(exe, '/');
			name = slash ? slash + 1 : exe;
		}
	}
	size_t len = strlen(name);
	if (len >= sizeof cp_cfg.program)
		len = sizeof cp_cfg.program - 1;
	memcpy(cp_cfg.program, name, len);
	cp_cfg.program[len] = '\0';
}

/* Only rules with port or address conditions need getsockname/getpeername at accept/connect;
 * role-only rules (and no rules) do not, and a busy server saves two system calls per
 * connection. The log asks for the addresses itself when it writes them. */
static bool rules_look_at_addresses(const struct cp_policy *p)
{
	for (size_t i = 0; i < p->n_rules; i++) {
		const struct cp_match *m = &p->rules[i].match;
		if (m->n_local_ports || m->n_peer_ports || m->n_local || m->n_peer)
			return true;
	}
	return false;
}

/* A relative CLOSEPOLICY_LOG is taken from the directory the program starts in, as `closepolicy
 * run -l` takes it from where it was typed; the absolute path is passed on to the processes it
 * starts, whatever directory they start in. NULL when it cannot be made absolute. */
static const char *absolute_log_path(const char *env)
{
	static char abs[PATH_MAX];
	if (env[0] == '/')
		return env;
	if (getcwd(abs, sizeof abs) == NULL || strlen(abs) + 1 + strlen(env) + 1 > sizeof abs)
		return NULL;
	strcat(abs, "/");
	strcat(abs, env);
	setenv("CLOSEPOLICY_LOG", abs, 1);
	return abs;
}

/* The log settings of the policy, with CLOSEPOLICY_LOG / CLOSEPOLICY_FORMAT applied. */
static void configure_log(const struct cp_policy *p)
{
	enum cp_log_target target = p->log.target;
	const char *path = p->log.path;
	enum cp_log_format format = p->log.format;
	const char *bad_target = NULL, *bad_format = NULL;

	const char *env = secure_getenv("CLOSEPOLICY_LOG");
	if (env != NULL && *env != '\0') {
		if (strcmp(env, "stderr") == 0)
			target = CP_LOG_STDERR;
		else if (strcmp(env, "syslog") == 0)
			target = CP_LOG_SYSLOG;
		else if ((path = absolute_log_path(env)) != NULL)
			target = CP_LOG_FILE;
		else
			bad_target = env, path = p->log.path;
	}
	env = secure_getenv("CLOSEPOLICY_FORMAT");
	if (env != NULL && *env != '\0') {
		if (strcmp(env, "text") == 0)
			format = CP_FORMAT_TEXT;
		else if (strcmp(env, "json") == 0)
			format = CP_FORMAT_JSON;
		else
			bad_format = env;
	}
	if (cp_log_configure(target, path, format, p->log.level) < 0)
		cp_event_error(-1, target == CP_LOG_SYSLOG ? "cannot open syslog (/dev/log)"
							  : "cannot open the log file",
			       errno, "logging to stderr");
	if (bad_target)
		cp_event_error(-1, "CLOSEPOLICY_LOG must be stderr, syslog or a file path that can be made absolute", 0,
			       "ignored it");
	if (bad_format)
		cp_event_error(-1, "CLOSEPOLICY_FORMAT must be text or json", 0, "ignored it");
}

/* What a fork writes is kept off the pages it write-protects (perproc.h): every page either
 * process writes after it is a page fault, in both. So the handlers write nothing they can
 * avoid: the reference pass writes only the per-process page unless a socket goes to the child;
 * the drainer is held only when it was ever used (a thread of the parent could be changing its
 * lists) or another thread exists; the child's pid is asked when it first logs. */
/* Forks hold the drainer from the first that must (another thread exists, or the drainer was
 * used) on: set once, never cleared, so that no fork writes it again (a page copied). */
static bool drainer_held;

static void before_fork(void)
{
	cp_perproc_arm();
	cp_real_resolve_for_child();
	cp_refs_fork_prepare(); /* first: it holds closes off, and takes no lock */
	if (drainer_held || !cp_single_threaded() || !cp_drain_untouched()) {
		if (!drainer_held)
			drainer_held = true;
		cp_drain_atfork_prepare();
	}
}

static void after_fork_parent(void)
{
	if (drainer_held)
		cp_drain_atfork_parent();
	cp_refs_fork_parent();
}

static atomic_int once CP_HOT_DATA(00); /* on the page every process writes at start (hot.h) */

CP_CHILD static void after_fork_child(void)
{
	cp_refs_fork_child(); /* first: the per-process page, cleared by hand if it is not marked */
	cp_ctr_forked_child();
	/* forked while another thread was starting the shim: that thread is not in the child, whose
	 * first wrapper starts it again (as pthread_once would) */
	if (atomic_load(&once) != CP_ONCE_DONE)
		atomic_store(&once, 0);
	if (drainer_held)
		cp_drain_atfork_child();
}

/* One event per error of the policy file (diag NULL: no memory to load it). */
__attribute__((noinline)) /* its message buffer not in init_once's frame */
static void report_rejected(const char *file, const struct cp_diag *diag)
{
	if (diag == NULL) { /* (a policy from the cache is never NULL) */
		cp_event_policy_error(file, "out of memory loading the policy");
		return;
	}
	char msg[CP_DIAG_MSG + 300];
	for (size_t i = 0; i < diag->count; i++) {
		cp_diag_format(diag, i, msg, sizeof msg);
		cp_event_policy_error(file, msg);
	}
	if (diag->truncated)
		cp_event_policy_error(file, "more errors not shown");
	if (diag->count == 0)
		cp_event_policy_error(file, "the policy was rejected");
}

static void init_once(void)
{
	int saved = errno;
	/* first: a fork by another thread while this runs must find the handlers (see the child's) */
	pthread_atfork(before_fork, after_fork_parent, after_fork_child);
	cp_real_bind_early();
	cp_sigdisp_init(); /* the SIGPIPE handler in front, before anything can be logged */
	find_program_name();
	cp_log_set_program(cp_cfg.program);

	const struct cp_policy *policy = cp_policy_default();
	const char *file = secure_getenv("CLOSEPOLICY_FILE");
	struct cp_diag *diag = NULL;
	struct cp_policy *loaded = NULL;
	bool cached = false;
	if (file != NULL && *file != '\0') {
		/* libyaml and the parse, only for a file new here */
		loaded = cp_polcache_get(file, cp_cfg.policy_mem, sizeof cp_cfg.policy_mem);
		cached = loaded != NULL;
		if (loaded == NULL && (diag = calloc(1, sizeof *diag)) != NULL) /* about 10 KiB: not on a wrapper's stack */
			loaded = cp_polcache_load(file, diag);
		if (loaded != NULL)
			policy = loaded;
	}
	cp_cfg.policy = policy;
	cp_cfg.dry_run = policy->dry_run;
	const char *dry = secure_getenv("CLOSEPOLICY_DRY_RUN");
	if (dry != NULL && *dry != '\0')
		cp_cfg.dry_run = strcmp(dry, "0") != 0 && strcmp(dry, "false") != 0;
	cp_matcher_init(&cp_cfg.matcher, policy, cp_cfg.program);
	cp_cfg.match_needs_addresses = rules_look_at_addresses(policy);
	configure_log(policy);

	if (file != NULL && *file != '\0' && loaded == NULL) {
		/* one event per error; the program runs unchanged under the default policy */
		report_rejected(file, diag);
	} else if (loaded != NULL) {
		cp_event_policy_loaded(policy, cp_cfg.dry_run, cached);
	}
	if (diag != NULL) { /* parsed here: libyaml may be loaded (nothing to undo otherwise) */
		free(diag);
		cp_yaml_unload();
	}
	cp_refs_init();
	cp_inherit_adopt();
	errno = saved;
}

void cp_once_run(atomic_int *state, void (*fn)(void))
{
	int v = 0;
	if (atomic_compare_exchange_strong(state, &v, 1)) {
		fn();
		if (atomic_exchange(state, CP_ONCE_DONE) == 3) /* 3: someone waits */
			(void)syscall(SYS_futex, state, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
		return;
	}
	while (v != CP_ONCE_DONE) {
		if (v == 1 && !atomic_compare_exchange_strong(state, &v, 3))
			continue;
		(void)syscall(SYS_futex, state, FUTEX_WAIT_PRIVATE, 3, NULL, NULL, 0);
		v = atomic_load(state);
	}
}

void cp_init_ensure(void)
{
	cp_once(&once, init_once);
}

__attribute__((constructor)) static void cp_constructor(void)
{
	/* straight to the compare-and-swap: the page's first touch a write, one fault, not two */
	cp_once_run(&once, init_once);
}
