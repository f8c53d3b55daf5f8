/* closepolicy reload — running programs take a policy again, without a restart.
 * The policy is checked here first (nothing is sent when it is bad); then each process gets the
 * request in its counters file (the path, a request number, a futex wake) and its shim thread
 * loads it and answers in the same file. Exit 0: every process took it; 1: one did not (named,
 * with its reason); 2: bad usage or a bad policy. */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "cli/ctrfile.h"
#include "shim/rundir.h"

#define ANSWER_MS 2000 /* every process answers within this, idle or not */

static const char usage[] = "usage: closepolicy reload [-p POLICY] PID...\n";

struct target {
	pid_t pid;
	struct cp_ctr_file *f; /* the process's file, mapped shared */
	char program[128];
	char check[PATH_MAX + 64]; /* the file checked for it */
	uint32_t seq;              /* the request sent */
	bool sent, locked;
};

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void futex_wake(uint32_t *w)
{
	syscall(SYS_futex, w, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

static void futex_wait_ms(uint32_t *w, uint32_t val, uint64_t ms)
{
	struct timespec ts = { .tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L };
	syscall(SYS_futex, w, FUTEX_WAIT, val, &ts, NULL, 0);
}

/* Map the process's file for writing, after the same checks stat makes. */
static int open_target(const char *dir, struct target *t)
{
	struct cp_ctr_file copy;
	char why[400], path[600];
	if (cp_ctrfile_read(dir, t->pid, &copy, why, sizeof why) < 0) {
		fprintf(stderr, "closepolicy reload: %d: %s\n", (int)t->pid, why);
		return -1;
	}
	cp_rundir_file(path, sizeof path, dir, t->pid, "");
	int fd = open(path, O_RDWR | O_NOFOLLOW | O_CLOEXEC);
	struct stat st;
	void *m = MAP_FAILED;
	if (fd >= 0 && fstat(fd, &st) == 0 && st.st_size >= (off_t)sizeof *t->f &&
	    (st.st_uid == geteuid() || geteuid() == 0))
		m = mmap(NULL, sizeof *t->f, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (fd >= 0)
		close(fd);
	if (m == MAP_FAILED) {
		fprintf(stderr, "closepolicy reload: %d: cannot open %s for the request: %s\n", (int)t->pid,
			path, strerror(errno));
		return -1;
	}
	t->f = m;
	memcpy(t->program, copy.program, sizeof t->program);
	if (copy.policy[0] == '/')
		snprintf(t->check, sizeof t->check, "%s", copy.policy);
	else /* relative to where the process started: its working directory, as far as known */
		snprintf(t->check, sizeof t->check, "/proc/%d/cwd/%s", (int)t->pid, copy.policy);
	if (strcmp(copy.policy, "(built-in default)") == 0)
		t->check[0] = '\0';
	return 0;
}

static bool check_policy(const char *path)
{
	struct cp_diag diag;
	struct cp_policy *p = cp_policy_load_file(path, &diag);
	if (p == NULL) {
		cp_diag_print(&diag, stderr);
		return false;
	}
	cp_policy_free(p);
	return true;
}

/* Take the process's request slot: free, or held by a command that is gone. */
static bool lock_slot(struct target *t, uint64_t deadline)
{
	uint32_t me = (uint32_t)getpid();
	for (;;) {
		uint32_t holder = 0;
		if (__atomic_compare_exchange_n(&t->f->req_lock, &holder, me, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return true;
		if ((kill((pid_t)holder, 0) < 0 && errno == ESRCH) &&
		    __atomic_compare_exchange_n(&t->f->req_lock, &holder, me, false, __ATOMIC_ACQ_REL,
						__ATOMIC_ACQUIRE))
			return true;
		uint64_t now = now_ms();
		if (now >= deadline)
			return false;
		futex_wait_ms(&t->f->req_lock, holder, 10); /* another reload: its answer frees it */
	}
}

static void send_request(struct target *t, const char *path, uint64_t deadline)
{
	if (!lock_slot(t, deadline)) {
		fprintf(stderr, "closepolicy reload: %d: another reload of this process is in progress\n",
			(int)t->pid);
		return;
	}
	t->locked = true;
	size_t n = strlen(path);
	memcpy(t->f->req_path, path, n + 1);
	t->seq = __atomic_load_n(&t->f->req_seq, __ATOMIC_ACQUIRE) + 1;
	__atomic_store_n(&t->f->req_seq, t->seq, __ATOMIC_RELEASE);
	futex_wake(&t->f->req_seq);
	t->sent = true;
}

/* Wait for the answer; print it. True when the process took the policy. */
static bool await_answer(struct target *t, uint64_t deadline)
{
	bool ok = false;
	for (;;) {
		uint32_t done = __atomic_load_n(&t->f->done_seq, __ATOMIC_ACQUIRE);
		if (done == t->seq) {
			ok = __atomic_load_n(&t->f->done_ok, __ATOMIC_ACQUIRE) == 1;
			break;
		}
		uint64_t now = now_ms();
		if (now >= deadline) {
			fprintf(stderr, "closepolicy reload: %d (%s): no answer within %d ms (its shim's thread "
					"is not running: the process is single-threaded and has not drained yet "
					"- start it with CLOSEPOLICY_RELOAD=1 -, made no TCP socket yet, or is "
					"stopped)\n",
				(int)t->pid, t->program, ANSWER_MS);
			return false;
		}
		futex_wait_ms(&t->f->done_seq, done, deadline - now);
	}
	char err[sizeof t->f->last_error];
	memcpy(err, t->f->last_error, sizeof err);
	err[sizeof err - 1] = '\0';
	uint64_t gen = __atomic_load_n(&t->f->generation, __ATOMIC_ACQUIRE);
	if (ok)
		printf("%d %s: generation %llu\n", (int)t->pid, t->program, (unsigned long long)gen);
	else
		fprintf(stderr, "closepolicy reload: %d (%s): refused, the old policy stays in force: %s\n",
			(int)t->pid, t->program, err);
	return ok;
}

int cp_cli_reload(int argc, char **argv)
{
	const char *policy = NULL;
	int first = 1;
	for (; first < argc && argv[first][0] == '-'; first++) {
		if ((strcmp(argv[first], "-p") == 0 || strcmp(argv[first], "--policy") == 0) && first + 1 < argc)
			policy = argv[++first];
		else if (strcmp(argv[first], "--") == 0) {
			first++;
			break;
		} else {
			fprintf(stderr, "closepolicy reload: unknown option \"%s\"\n%s", argv[first], usage);
			return 2;
		}
	}
	int n = argc - first;
	if (n <= 0) {
		fprintf(stderr, "closepolicy reload: no PID given\n%s", usage);
		return 2;
	}
	char abs[PATH_MAX] = "";
	if (policy != NULL) {
		if (realpath(policy, abs) == NULL) {
			fprintf(stderr, "%s:0:0: cannot open the policy file: %s\n", policy, strerror(errno));
			return 2;
		}
		if (!check_policy(abs))
			return 2;
	}
	static struct cp_rundirs dirs;
	if (cp_ctrfile_dirs(&dirs) < 0 || dirs.n == 0) {
		fprintf(stderr, "closepolicy reload: the run directory %s: %s\n", dirs.dir[0], strerror(errno));
		return 1;
	}
	struct target *ts = calloc((size_t)n, sizeof *ts);
	if (ts == NULL)
		return 1;
	int failed = 0;
	for (int i = 0; i < n; i++) {
		char *end;
		long v = strtol(argv[first + i], &end, 10);
		if (*end != '\0' || v <= 0 || v > INT_MAX) {
			fprintf(stderr, "closepolicy reload: not a PID: \"%s\"\n%s", argv[first + i], usage);
			free(ts);
			return 2;
		}
		ts[i].pid = (pid_t)v;
		if (open_target(cp_ctrfile_dir_of(&dirs, ts[i].pid), &ts[i]) < 0)
			failed++;
	}
	/* every process's policy is checked before any request goes out */
	for (int i = 0; policy == NULL && i < n; i++) {
		if (ts[i].f == NULL)
			continue;
		if (ts[i].check[0] == '\0') {
			fprintf(stderr, "closepolicy reload: %d (%s) runs the built-in default policy: name a "
					"file with -p POLICY\n", (int)ts[i].pid, ts[i].program);
			free(ts);
			return 2;
		}
		if (!check_policy(ts[i].check)) {
			free(ts);
			return 2;
		}
	}
	uint64_t deadline = now_ms() + ANSWER_MS;
	for (int i = 0; i < n; i++)
		if (ts[i].f != NULL)
			send_request(&ts[i], abs, deadline);
	for (int i = 0; i < n; i++) {
		if (ts[i].f == NULL)
			continue;
		if (!ts[i].sent || !await_answer(&ts[i], deadline))
			failed++;
		if (ts[i].locked) {
			__atomic_store_n(&ts[i].f->req_lock, 0, __ATOMIC_RELEASE);
			futex_wake(&ts[i].f->req_lock);
		}
		munmap(ts[i].f, sizeof *ts[i].f);
	}
	free(ts);
	return failed ? 1 : 0;
}
