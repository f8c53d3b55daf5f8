/* closepolicy — the process's live counters (see counters.h). */
#include "shim/counters.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stddef.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "shim/config.h"
#include "shim/events.h"
#include "shim/hot.h"
#include "shim/perproc.h"
#include "shim/real.h"
#include "shim/reload.h"
#include "shim/rundir.h"
#include "shim/errsave.h"

enum { NONE, MAKING, READY };

/* On the per-process page (perproc.h), which a forked child gets zeroed: its own file, made at
 * its own first count, and nothing written at the fork. ctr_mine: the file's mapping, once
 * READY; ctr_state: NONE, MAKING, READY; ctr_maker_tid: the thread making the file; ctr_path:
 * the file, for removal at exit ("" when none). A count reads none of it (cp_ctr): a forked
 * child's first touch of that page is a page fault, one a fork-per-connection server's child
 * would pay only to count its close. */
#define PP (cp_perproc)
/* Which rule last used each slot, in this process or the one it was forked from: a hint, kept
 * where a fork copies it (a child counting in its parent's file finds its parent's hints and
 * writes nothing), and only ever trusted once the slot's name in the file agrees. */
static const struct cp_rule *slot_hint[CP_CTR_RULES];
/* Counts made while the file is being made, by a signal handler that interrupted the thread
 * making it (added to the file once it is there); and every count when no file can be made
 * and none was inherited.
 * A child inherits what the parent's fold left: zeros, and the high-water mark. */
static struct cp_ctr_file early;
/* The file this process made, kept off the per-process page: a forked child inherits it (its
 * mapping is shared) and counts there until it makes a socket of its own — a fork-per-connection
 * server's children count in the server's file, not each in a file made and removed per
 * request (eight system calls, and a fork's worth of time, more per connection). */
static struct cp_ctr_file *inherited;
struct cp_ctr_file *cp_ctr_made CP_HOT_DATA(00);

/* The policy in force, copied into the file when it is made and at each reload. */
static const struct cp_policy *policy_now;
static uint64_t generation, loaded_ns; /* written by the reload thread only (0: start-up's) */

/* Start-up's policy is the first generation: counted when a file is made or a reload comes,
 * whichever is first (start-up itself writes nothing here). */
static void count_startup_generation(void)
{
	uint64_t none = 0;
	__atomic_compare_exchange_n(&generation, &none, 1, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE);
}

static uint64_t realtime_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int gettid_(void)
{
	return (int)cp_real_syscall(SYS_gettid);
}

static void copy_str(char *dst, size_t size, const char *src)
{
	size_t n = src ? strlen(src) : 0;
	if (n >= size)
		n = size - 1;
	if (n)
		memcpy(dst, src, n);
	dst[n] = '\0';
}

static void write_policy(struct cp_ctr_file *f)
{
	const struct cp_policy *p = __atomic_load_n(&policy_now, __ATOMIC_ACQUIRE);
	if (p == NULL)
		p = cp_cfg.policy;
	__atomic_fetch_add(&f->policy_seq, 1, __ATOMIC_ACQ_REL); /* odd: being written */
	__atomic_store_n(&f->generation, __atomic_load_n(&generation, __ATOMIC_ACQUIRE), __ATOMIC_RELAXED);
	__atomic_store_n(&f->loaded_ns, __atomic_load_n(&loaded_ns, __ATOMIC_RELAXED), __ATOMIC_RELAXED);
	copy_str(f->policy, sizeof f->policy, p ? p->source : "(built-in default)");
	__atomic_fetch_add(&f->policy_seq, 1, __ATOMIC_RELEASE);
}

/* Make, fill and publish the file: it appears under its final name complete, or not at all. */
static struct cp_ctr_file *make_file(void)
{
	char dir[400], tmp[512];
	if (cp_rundir(dir, sizeof dir, true) < 0)
		return NULL;
	int pid = (int)getpid();
	if (!cp_rundir_file(PP.ctr_path, sizeof PP.ctr_path, dir, pid, "") ||
	    !cp_rundir_file(tmp, sizeof tmp, dir, pid, ".tmp")) {
		PP.ctr_path[0] = '\0';
		return NULL;
	}
	unlink(tmp); /* left by an image of this PID that died while making it */
	int fd = open(tmp, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		PP.ctr_path[0] = '\0';
		return NULL;
	}
	size_t size = sizeof(struct cp_ctr_file);
	/* pages given now: a full filesystem fails here, not with SIGBUS at a count */
	void *m = MAP_FAILED;
	if (fallocate(fd, 0, 0, (off_t)size) == 0)
		m = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
	cp_real_close(fd);
	if (m == MAP_FAILED) {
		unlink(tmp);
		PP.ctr_path[0] = '\0';
		return NULL;
	}
	struct cp_ctr_file *f = m;
	f->magic = CP_CTR_MAGIC;
	f->version = CP_CTR_VERSION;
	f->header_size = (uint32_t)offsetof(struct cp_ctr_file, closes);
	f->file_size = (uint32_t)size;
	f->n_rules = CP_CTR_RULES;
	f->n_hist = CP_CTR_HIST;
	f->pid = pid;
	f->uid = (uint32_t)geteuid();
	f->start_ns = realtime_ns();
	copy_str(f->program, sizeof f->program, cp_cfg.program);
	count_startup_generation();
	write_policy(f);
	__atomic_store_n(&f->accessible, 1, __ATOMIC_RELEASE);
	if (rename(tmp, PP.ctr_path) < 0) {
		unlink(tmp);
		munmap(m, size);
		PP.ctr_path[0] = '\0';
		return NULL;
	}
	return f;
}

/* What signal handlers counted while the file was made. */
static void fold_early(struct cp_ctr_file *f)
{
	uint64_t *from = early.closes, *to = f->closes;
	size_t n = (offsetof(struct cp_ctr_file, rules_used) - offsetof(struct cp_ctr_file, closes)) /
		   sizeof(uint64_t);
	size_t skip = (offsetof(struct cp_ctr_file, draining_high) - offsetof(struct cp_ctr_file, closes)) /
		      sizeof(uint64_t);
	for (size_t i = 0; i < n; i++) {
		if (i == skip) /* a high-water mark, not a sum */
			continue;
		uint64_t v = __atomic_exchange_n(&from[i], 0, __ATOMIC_RELAXED);
		if (v)
			cp_ctr_add(&to[i], v);
	}
	uint64_t high = __atomic_load_n(&early.draining_high, __ATOMIC_RELAXED);
	if (high > __atomic_load_n(&f->draining_high, __ATOMIC_RELAXED))
		__atomic_store_n(&f->draining_high, high, __ATOMIC_RELAXED);
}

static struct cp_ctr_file *slow(void)
{
	int expect = NONE;
	if (__atomic_compare_exchange_n(&PP.ctr_state, &expect, MAKING, false, __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
		int saved = errno;
		__atomic_store_n(&PP.ctr_maker_tid, gettid_(), __ATOMIC_RELAXED);
		struct cp_ctr_file *f = make_file();
		__atomic_store_n(&PP.ctr_mine, f ? f : &early, __ATOMIC_RELEASE);
		__atomic_store_n(&PP.ctr_state, READY, __ATOMIC_RELEASE);
		if (f) {
			fold_early(f);
			__atomic_store_n(&inherited, f, __ATOMIC_RELEASE);
			__atomic_store_n(&cp_ctr_made, f, __ATOMIC_RELEASE);
		}
		cp_errno_restore(saved);
		return f ? f : &early;
	}
	/* a handler that interrupted the thread making the file: that thread adds these later */
	if (expect == MAKING && __atomic_load_n(&PP.ctr_maker_tid, __ATOMIC_RELAXED) == gettid_())
		return &early;
	while (__atomic_load_n(&PP.ctr_state, __ATOMIC_ACQUIRE) == MAKING) /* a few system calls away */
		sched_yield();
	return __atomic_load_n(&PP.ctr_mine, __ATOMIC_ACQUIRE);
}

/* The file counts go to, NULL when none is made yet: the last one made, by this process or an
 * ancestor it was forked from (the process's own once it made one: slow() sets both), its
 * parent's until then; read from a page a fork copies, so a forked child counts without
 * touching its per-process page. &early when no file could be made. */
CP_CHILD static struct cp_ctr_file *known(void)
{
	struct cp_ctr_file *f = __atomic_load_n(&inherited, __ATOMIC_ACQUIRE);
	return f != NULL ? f : __atomic_load_n(&PP.ctr_mine, __ATOMIC_ACQUIRE);
}

CP_CHILD struct cp_ctr_file *cp_ctr(void)
{
	struct cp_ctr_file *f = known();
	return f != NULL ? f : slow();
}

void cp_ctr_ensure(void)
{
	if (__atomic_load_n(&PP.ctr_state, __ATOMIC_ACQUIRE) == READY && cp_reload_thread_started())
		return;
	/* a socket of its own: this process's own file (a forked worker stops counting in its
	 * parent's), and the thread that answers reload in it */
	struct cp_ctr_file *f = __atomic_load_n(&PP.ctr_mine, __ATOMIC_ACQUIRE);
	if (f == NULL)
		f = slow();
	if (f != &early)
		cp_reload_thread_start(f);
}

void cp_ctr_second_thread(void)
{
	struct cp_ctr_file *f = __atomic_load_n(&PP.ctr_mine, __ATOMIC_ACQUIRE);
	if (f != NULL && f != &early) /* only in a file of its own: never its parent's */
		cp_reload_thread_start(f);
}

/* ---- counting ---- */

CP_CHILD static bool named(struct cp_ctr_file *f, unsigned i, const struct cp_rule *rule)
{
	return __atomic_load_n(&f->rules[i].state, __ATOMIC_ACQUIRE) == 2 &&
	       strncmp(f->rules[i].name, rule->name, CP_CTR_NAME - 1) == 0;
}

CP_CHILD static unsigned rule_slot(struct cp_ctr_file *f, const struct cp_rule *rule)
{
	unsigned used = __atomic_load_n(&f->rules_used, __ATOMIC_ACQUIRE);
	if (used > CP_CTR_RULES)
		used = CP_CTR_RULES;
	/* the hint spares the search, not the check: a hint may describe another file (the parent's,
	 * before this process made its own) or another generation's rule at the same address */
	for (unsigned i = 0; i < used; i++)
		if (__atomic_load_n(&slot_hint[i], __ATOMIC_RELAXED) == rule && named(f, i, rule))
			return i;
	for (unsigned i = 0; i < used; i++) /* named by a rule of another generation, or process */
		if (named(f, i, rule)) {
			__atomic_store_n(&slot_hint[i], rule, __ATOMIC_RELAXED);
			return i;
		}
	unsigned i = __atomic_fetch_add(&f->rules_used, 1, __ATOMIC_ACQ_REL);
	const char *name = rule->name;
	if (i >= CP_CTR_RULES - 1) {
		i = CP_CTR_RULES - 1;
		name = "(other)";
	}
	uint32_t free_ = 0;
	if (__atomic_compare_exchange_n(&f->rules[i].state, &free_, 1, false, __ATOMIC_ACQ_REL,
					__ATOMIC_ACQUIRE)) {
		copy_str(f->rules[i].name, sizeof f->rules[i].name, name);
		__atomic_store_n(&f->rules[i].state, 2, __ATOMIC_RELEASE);
	}
	if (i < CP_CTR_RULES - 1)
		__atomic_store_n(&slot_hint[i], rule, __ATOMIC_RELAXED);
	return i;
}

CP_CHILD void cp_ctr_close(const struct cp_close_facts *c)
{
	struct cp_ctr_file *f = cp_ctr();
	enum cp_action taken = c->dry_run ? CP_ACTION_PASSTHROUGH : c->action;
	cp_ctr_add(&f->closes[taken], 1);
	if (c->dry_run)
		cp_ctr_add(&f->dry_run, 1);
	if (c->sock->rule == NULL || f == &early)
		cp_ctr_add(&f->closes_norule[taken], 1);
	else
		cp_ctr_add(&f->rules[rule_slot(f, c->sock->rule)].closes[taken], 1);
	if (taken == CP_ACTION_GRACEFUL) { /* ended by the drain event */
		uint64_t now = __atomic_add_fetch(&f->draining, 1, __ATOMIC_RELAXED);
		uint64_t high = __atomic_load_n(&f->draining_high, __ATOMIC_RELAXED);
		while (now > high && !__atomic_compare_exchange_n(&f->draining_high, &high, now, true,
								  __ATOMIC_RELAXED, __ATOMIC_RELAXED))
			;
	}
}

void cp_ctr_risk(const struct cp_close_facts *c)
{
	struct cp_ctr_file *f = cp_ctr();
	cp_ctr_add(&f->risk, 1);
	if (c->unread > 0)
		cp_ctr_add(&f->risk_unread, (uint64_t)c->unread);
	if (c->sock->rule != NULL && f != &early)
		cp_ctr_add(&f->rules[rule_slot(f, c->sock->rule)].risk, 1);
}

CP_CHILD void cp_ctr_drain(const char *outcome, uint64_t ms, int err)
{
	static const char *const names[] = CP_CTR_DRAIN_NAMES;
	struct cp_ctr_file *f = cp_ctr();
	unsigned k = CP_DRAIN_ERROR;
	(void)err; /* a read error ends a drain as "reset" or the like: counted by its outcome */
	/* the same literal is one string in the object (the link merges them): compared by address
	 * first, a forked child reads no page of the object's strings to count its drain */
	for (unsigned i = 0; i < CP_DRAIN_ERROR && k == CP_DRAIN_ERROR; i++)
		if (outcome == names[i])
			k = i;
	for (unsigned i = 0; i < CP_DRAIN_ERROR && k == CP_DRAIN_ERROR; i++)
		if (strcmp(outcome, names[i]) == 0)
			k = i;
	cp_ctr_add(&f->drains[k], 1);
	unsigned b = 0;
	while (b < CP_CTR_HIST - 1 && ms >= (1ull << b))
		b++;
	cp_ctr_add(&f->drain_ms[b], 1);
	cp_ctr_add(&f->drain_ms_total, ms);
	/* never below zero: a drain of a socket closed before the file existed in a parent */
	uint64_t n = __atomic_load_n(&f->draining, __ATOMIC_RELAXED);
	while (n > 0 && !__atomic_compare_exchange_n(&f->draining, &n, n - 1, true, __ATOMIC_RELAXED,
						     __ATOMIC_RELAXED))
		;
}

void cp_ctr_max_draining_hit(void)
{
	cp_ctr_add(&cp_ctr()->max_draining_hits, 1);
}

static unsigned call_index(const char *call)
{
	static const char *const names[] = CP_CTR_CALL_NAMES;
	for (unsigned i = 0; call != NULL && i < CP_CALL_OTHER; i++)
		if (strcmp(call, names[i]) == 0)
			return i;
	return CP_CALL_OTHER;
}

void cp_ctr_epipe(const char *call, int err)
{
	struct cp_ctr_file *f = cp_ctr();
	if (err == ECONNRESET)
		cp_ctr_add(&f->econnreset, 1);
	else
		cp_ctr_add(&f->epipe[call_index(call)], 1);
}

void cp_ctr_sigpipe(const char *call)
{
	cp_ctr_add(&cp_ctr()->sigpipe[call_index(call)], 1);
}

void cp_ctr_error(void)
{
	cp_ctr_add(&cp_ctr()->errors, 1);
}

void cp_ctr_log_line(bool written)
{
	/* only once there is a file: the start-up's lines must not make one */
	struct cp_ctr_file *f = known();
	if (f == NULL)
		f = &early;
	cp_ctr_add(written ? &f->log_lines : &f->log_dropped, 1);
}

/* ---- the policy ---- */

void cp_ctr_policy_loaded(const struct cp_policy *p)
{
	__atomic_store_n(&policy_now, p, __ATOMIC_RELEASE);
	__atomic_store_n(&loaded_ns, realtime_ns(), __ATOMIC_RELAXED);
	count_startup_generation();
	__atomic_fetch_add(&generation, 1, __ATOMIC_ACQ_REL);
	struct cp_ctr_file *f = __atomic_load_n(&PP.ctr_mine, __ATOMIC_ACQUIRE);
	if (f != NULL && f != &early)
		write_policy(f);
}

void cp_ctr_policy_rejected(const char *message)
{
	struct cp_ctr_file *f = cp_ctr();
	copy_str(f->last_error, sizeof f->last_error, message);
	cp_ctr_add(&f->rejected, 1);
}

/* ---- fork and exit ---- */

CP_CHILD void cp_ctr_at_exit(void)
{
	/* a forked child made none (its fork handler cleared the mark): it reads no page more here.
	 * The pid is still checked: a child of a raw clone() runs no fork handler */
	struct cp_ctr_file *f = __atomic_load_n(&cp_ctr_made, __ATOMIC_ACQUIRE);
	if (f != NULL && PP.ctr_path[0] != '\0' && f->pid == (int)getpid())
		unlink(PP.ctr_path);
}
