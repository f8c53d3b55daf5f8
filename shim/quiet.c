/* closepolicy — a quieter log (see quiet.h). */
#include "shim/quiet.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "shim/config.h"
#include "shim/counters.h"
#include "shim/log.h"
#include "shim/errsave.h"

enum cp_log_level cp_quiet_load_level(void)
{
	const char *announce = secure_getenv("CLOSEPOLICY_ANNOUNCE");
	if (announce == NULL || *announce == '\0')
		return CP_LEVEL_INFO;
	if (atol(announce) != (long)getpid())
		return CP_LEVEL_DEBUG;
	/* said once: an image this one executes has the same PID (env, a #! interpreter, pyenv's
	 * shims), and says it at debug like the other processes of the tree */
	setenv("CLOSEPOLICY_ANNOUNCE", "said", 1);
	return CP_LEVEL_INFO;
}

/* One window per event kind: the second it counts, lines admitted, lines dropped. */
struct window {
	const char *kind;
	int64_t second;
	uint32_t admitted;
	uint64_t dropped;
};
static struct window windows[] = {
	{ "close", 0, 0, 0 }, { "drain", 0, 0, 0 }, { "risk", 0, 0, 0 }, { "epipe", 0, 0, 0 },
	{ "sigpipe", 0, 0, 0 }, { "econnreset", 0, 0, 0 }, { "error", 0, 0, 0 },
	{ "policy", 0, 0, 0 }, { "options", 0, 0, 0 }, { "stale", 0, 0, 0 }, { "(other)", 0, 0, 0 },
};
#define N_WINDOWS (sizeof windows / sizeof *windows)
static int64_t flushed_second; /* every window's drops before this second are written */

static int64_t now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec;
}

static void write_suppressed(const char *kind, uint64_t count)
{
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_WARN, "suppressed");
	cp_log_str(&l, "kind", kind);
	cp_log_uint(&l, "count", count);
	cp_log_str(&l, "message", "lines over log.rate a second were dropped; the counters have them");
	cp_log_end(&l);
}

/* Drops of windows older than `now`, each written once (the exchange decides who writes). */
static void flush_before(int64_t now)
{
	int64_t f = __atomic_load_n(&flushed_second, __ATOMIC_RELAXED);
	if (f >= now || !__atomic_compare_exchange_n(&flushed_second, &f, now, false, __ATOMIC_RELAXED,
						     __ATOMIC_RELAXED))
		return;
	for (size_t i = 0; i < N_WINDOWS; i++) {
		struct window *w = &windows[i];
		if (__atomic_load_n(&w->second, __ATOMIC_RELAXED) >= now)
			continue;
		uint64_t d = __atomic_exchange_n(&w->dropped, 0, __ATOMIC_RELAXED);
		if (d > 0)
			write_suppressed(w->kind, d);
	}
}

void cp_quiet_at_exit(void)
{
	for (size_t i = 0; i < N_WINDOWS; i++) {
		if (__atomic_load_n(&windows[i].dropped, __ATOMIC_RELAXED) == 0)
			continue; /* nothing written: a forked child's copy of the page stays shared */
		uint64_t d = __atomic_exchange_n(&windows[i].dropped, 0, __ATOMIC_RELAXED);
		if (d > 0)
			write_suppressed(windows[i].kind, d);
	}
}

bool cp_quiet_admit(const char *event)
{
	const struct cp_policy *p = cp_cfg.policy;
	uint32_t rate = p != NULL ? p->log.rate : 0;
	if (rate == 0 || strcmp(event, "suppressed") == 0)
		return true;
	int saved = errno;
	int64_t now = now_s();
	flush_before(now);
	struct window *w = &windows[N_WINDOWS - 1];
	for (size_t i = 0; i < N_WINDOWS - 1; i++)
		if (strcmp(windows[i].kind, event) == 0) {
			w = &windows[i];
			break;
		}
	int64_t second = __atomic_load_n(&w->second, __ATOMIC_RELAXED);
	if (second != now && __atomic_compare_exchange_n(&w->second, &second, now, false, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED)) {
		uint64_t d = __atomic_exchange_n(&w->dropped, 0, __ATOMIC_RELAXED);
		if (d > 0)
			write_suppressed(w->kind, d);
		__atomic_store_n(&w->admitted, 0, __ATOMIC_RELAXED);
	}
	bool ok = __atomic_add_fetch(&w->admitted, 1, __ATOMIC_RELAXED) <= rate;
	if (!ok) {
		__atomic_fetch_add(&w->dropped, 1, __ATOMIC_RELAXED);
		cp_ctr_log_line(false);
	}
	cp_errno_restore(saved);
	return ok;
}
