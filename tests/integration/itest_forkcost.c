/* What a fork costs under the shim, in what does not depend on the machine: the minor page
 * faults of the parent and of the child per fork + _exit + waitpid (each page either process
 * writes after a fork is one; the child also faults in every page it reads first), and the
 * system calls of one fork that gives no socket away (none added) — against the same program
 * without the shim, in the same run. progs/fork_cost does the forking. */
#include "harness.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define FORKS 100
#define ROUNDS 3      /* each figure is the least of these runs: layout noise only adds */
#define SLACK 3       /* faults per fork the shim may add, in either process */

static char dir[64], policy[128], log_env[160], policy_env[160], preload_env[4200];

static void setup_files(void)
{
	if (dir[0] != '\0')
		return;
	strcpy(dir, "/tmp/cp-forkcost-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(policy, sizeof policy, "%s/policy.yaml", dir);
	FILE *f = fopen(policy, "w");
	assert_non_null(f);
	fputs("version: 1\nlog: {level: warn}\nrules:\n  - {match: {role: server}, action: graceful}\n", f);
	assert_int_equal(fclose(f), 0);
	snprintf(policy_env, sizeof policy_env, "CLOSEPOLICY_FILE=%s", policy);
	snprintf(log_env, sizeof log_env, "CLOSEPOLICY_LOG=%s/log", dir);
	snprintf(preload_env, sizeof preload_env, "LD_PRELOAD=%s", h_build_path("libclosepolicy.so"));
}

struct faults {
	long parent, child;
};

/* shim: 0 bare, 1 with the graceful policy, 2 with no policy (observe only); threads: idle
 * threads the program starts first ("0": none) */
/* The least of ROUNDS runs of argv, which prints "faults parent P child C". */
static struct faults least_faults(const char *const argv[], const char *const *env)
{
	struct faults best = { -1, -1 };
	for (int r = 0; r < ROUNDS; r++) {
		char out[256] = "";
		int st = h_run(argv, env, out, sizeof out, 30000);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
		struct faults f;
		assert_int_equal(sscanf(out, "faults parent %ld child %ld", &f.parent, &f.child), 2);
		if (best.parent < 0 || f.parent < best.parent)
			best.parent = f.parent;
		if (best.child < 0 || f.child < best.child)
			best.child = f.child;
	}
	return best;
}

static struct faults measure_threads(int shim, const char *sockets, const char *threads)
{
	setup_files();
	const char *env_policy[] = { preload_env, policy_env, log_env, NULL };
	const char *env_observe[] = { preload_env, log_env, NULL };
	char forks[16];
	snprintf(forks, sizeof forks, "%d", FORKS);
	const char *argv[] = { h_build_path("progs/fork_cost"), sockets, forks, threads, NULL };
	return least_faults(argv, shim == 0 ? NULL : shim == 1 ? env_policy : env_observe);
}

static void faults_within(int shim, const char *sockets, const char *threads, long slack)
{
	struct faults bare = measure_threads(0, sockets, threads), with = measure_threads(shim, sockets, threads);
	printf("# %s, %s sockets, %s other threads: faults per fork: parent %.2f (bare %.2f), child %.2f (bare %.2f)\n",
	       shim == 1 ? "graceful" : "observe-only", sockets, threads, (double)with.parent / FORKS,
	       (double)bare.parent / FORKS, (double)with.child / FORKS, (double)bare.child / FORKS);
	assert_true(with.parent <= bare.parent + slack * FORKS);
	assert_true(with.child <= bare.child + slack * FORKS);
}

static void faults_within_slack(int shim, const char *sockets)
{
	faults_within(shim, sockets, "0", SLACK);
}

static void test_faults_no_socket(void **state)
{
	(void)state;
	faults_within_slack(1, "0");
}

/* A process with connections has a counters file (closepolicy stat): its child, at exit, reads
 * whether it made one of its own (on the per-process page, fresh in the child): one fault more.
 * (The target is SLACK; this is what holds with the counters.) */
static void test_faults_100_connections_given_away(void **state)
{
	(void)state;
	faults_within(1, "100", "0", SLACK + 1);
}

static void test_faults_100_connections_observe_only(void **state)
{
	(void)state;
	faults_within(2, "100", "0", SLACK + 1);
}

/* A program with a thread of its own (or a library's): the fork holds what other threads could
 * be changing — on the per-process page, without a system call. The child of 100 connections
 * releases them under the gate (a page of its own) and takes their entries: one fault more.
 * Such a process also runs the shim's reload thread (closepolicy reload), whose stack the C
 * library reclaims in the child (its descriptor written: a fault), and has a counters file (as
 * above): two more. */
static void test_faults_other_thread(void **state)
{
	(void)state;
	faults_within(1, "0", "1", SLACK + 2);
	faults_within(1, "100", "1", SLACK + 4);
}

/* The calls of strace -c's report: its last line, "100.00 SECONDS USECS/CALL CALLS [ERRORS] total" */
static long strace_total(const char *out_file)
{
	char text[8192] = "";
	FILE *f = fopen(out_file, "r");
	assert_non_null(f);
	size_t got = fread(text, 1, sizeof text - 1, f);
	fclose(f);
	text[got] = '\0';
	char *total = strstr(text, " total");
	assert_non_null(total);
	char *line = total;
	while (line > text && line[-1] != '\n')
		line--;
	double pct, secs;
	long usecs, calls;
	if (sscanf(line, "%lf %lf %ld %ld", &pct, &secs, &usecs, &calls) != 4)
		fail_msg("cannot read strace's total line: %.*s", (int)(total - line) + 6, line);
	return calls;
}

/* All the system calls of a run of prog (in progs/) with args, children included; shim: 0 bare,
 * 1 under the graceful policy, 2 with no policy (observe only). */
static long strace_run(int shim, const char *prog, const char *const args[3])
{
	setup_files();
	char out_file[160];
	snprintf(out_file, sizeof out_file, "%s/strace.txt", dir);
	const char *argv[16] = { "/usr/bin/strace", "-f", "-c", "-o", out_file };
	int n = 5;
	if (shim != 0) {
		const char *env[] = { "-E", preload_env, "-E", log_env, "-E", policy_env };
		for (size_t i = 0; i < (shim == 1 ? 6u : 4u); i++)
			argv[n++] = env[i];
	}
	argv[n++] = h_build_path(prog);
	for (int i = 0; i < 3 && args[i] != NULL; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	char out[256];
	int st = h_run(argv, NULL, out, sizeof out, 60000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	return strace_total(out_file);
}

static long syscalls_threads(bool shim, const char *sockets, int forks, const char *threads)
{
	char n[16];
	snprintf(n, sizeof n, "%d", forks);
	return strace_run(shim ? 1 : 0, "progs/fork_cost", (const char *const[3]){ sockets, n, threads });
}

/* The least of ROUNDS runs: a busy machine only adds calls (a thread's futex under contention,
 * seen once in the bare program: 61 against 60). */
static long least_syscalls(bool shim, const char *sockets, int forks, const char *threads)
{
	long least = -1;
	for (int r = 0; r < ROUNDS; r++) {
		long n = syscalls_threads(shim, sockets, forks, threads);
		if (least < 0 || n < least)
			least = n;
	}
	return least;
}

static void no_syscall_added_threads(const char *sockets, const char *threads)
{
	long bare = least_syscalls(false, sockets, 30, threads) - least_syscalls(false, sockets, 10, threads);
	long with = least_syscalls(true, sockets, 30, threads) - least_syscalls(true, sockets, 10, threads);
	printf("# %s sockets, %s other threads: system calls of 20 forks (parent and children): %ld, bare %ld\n",
	       sockets, threads, with, bare);
	assert_int_equal(with, bare);
}

static void no_syscall_added(const char *sockets)
{
	no_syscall_added_threads(sockets, "0");
}

static void test_no_syscall_added_with_another_thread(void **state)
{
	(void)state;
	no_syscall_added_threads("0", "1");
	no_syscall_added_threads("100", "1");
}

static void test_no_syscall_added_to_a_fork(void **state)
{
	(void)state;
	no_syscall_added("0");
}

/* Connections given away: counted in shared memory (the first fork also reads each socket's
 * cookie, which the runs' difference leaves out) */
static void test_no_syscall_added_giving_100_connections_away(void **state)
{
	(void)state;
	no_syscall_added("100");
}

/* What the counting skips must still be right: a child that exits without touching its table
 * releases what the fork gave it from the fork's list; where it is the last holder (the parent
 * closed its copy at once), the socket's on_exit applies there, in the child: reset, so the
 * peer's read ends with ECONNRESET (the kernel's own close at exit would send FIN). */
static void test_child_exiting_as_last_holder_acts(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - {match: {role: server}, action: reset}\n", NULL, "fork_server",
		"-k", "1", "-w", "1000", "-x", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	int fd = h_connect(port, 0);
	h_expect(&p, "closed ", 5000); /* the parent has closed its copy: the child holds the last */
	h_send_all(fd, "go\n", 3);
	struct h_read r = h_read_to_end(fd, 10000);
	assert_int_equal(r.err, ECONNRESET);
	close(fd);
	assert_int_equal(h_expect(&p, "child ", 5000), 0);
	h_expect(&p, "done", 5000);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	char parent[48];
	snprintf(parent, sizeof parent, "closepolicy[%d]", (int)p.pid);
	assert_int_equal(h_log_count(&p, "event=close", "action=reset", "process exit", NULL), 1);
	assert_int_equal(h_log_count(&p, "event=close", parent, NULL), 0);
	h_finish(&p);
}

/* ---- a fork per connection (busybox httpd's shape), observe only ---- */

#define CONNS_FEW 10
#define CONNS_MANY 30

/* Per connection, what the shim may add under no policy, in the least of ROUNDS runs. The parent:
 * one page, the descriptor table's first, where its close after the fork writes the entry, the
 * socket's object (the first few come from a pool on that page) and the released objects' stack
 * (sock.c); a second page written there (the object back on the heap, say) fails. The child:
 * that page, the shim's code it runs (one block: CP_CHILD keeps a child's code in one stretch
 * of about 18 KiB, which meets one 64 KiB block, the kernel's fault-around unit, in this test's
 * fixed layout), the counters file's page and the reference table's slot page (both shared: a
 * fork copies no entry of them), and libc's send (a write on a socket becomes send with
 * MSG_NOSIGNAL, in a block of libc the bare child never runs): five, less the two of the
 * loader's look-ups the bare child makes and the child under the shim does not (seen: +3); and
 * one for layout: the loader places libc and ld.so beside the shim, so the shim's size moves
 * their code across those blocks and the child's first runs of their code fault in a block more
 * or less. Its per-process page is not one of them: a count reads which file from a page a fork
 * copies (counters.c; the exit's reading of it was a fault in every child). System calls: one
 * FIONREAD at each passthrough close (the child's, and the client end's in the parent), for the
 * line that warns of an RST when data is left unread. */
#define CONN_PARENT_FAULTS 1
#define CONN_CHILD_FAULTS 4
#define CONN_SYSCALLS 2

static struct faults conn_faults(bool shim, const char *end)
{
	setup_files();
	const char *env_observe[] = { preload_env, log_env, NULL };
	char n[16];
	snprintf(n, sizeof n, "%d", CONNS_MANY);
	const char *argv[] = { h_build_path("progs/fork_per_conn"), n, end, NULL };
	return least_faults(argv, shim ? env_observe : NULL);
}

/* observe only: a graceful close's drain depends on when the peer's FIN comes, not a count */
static long conn_syscalls(bool shim, int conns, const char *end)
{
	char n[16];
	snprintf(n, sizeof n, "%d", conns);
	long least = -1;
	for (int r = 0; r < ROUNDS; r++) {
		long calls = strace_run(shim ? 2 : 0, "progs/fork_per_conn", (const char *const[3]){ n, end, NULL });
		if (least < 0 || calls < least)
			least = calls;
	}
	return least;
}

static void per_connection_within_budget(const char *end)
{
	struct faults bare = conn_faults(false, end), with = conn_faults(true, end);
	long sc_bare = conn_syscalls(false, CONNS_MANY, end) - conn_syscalls(false, CONNS_FEW, end);
	long sc_with = conn_syscalls(true, CONNS_MANY, end) - conn_syscalls(true, CONNS_FEW, end);
	const int d = CONNS_MANY - CONNS_FEW;
	printf("# a fork per connection (child %s): per connection: faults parent %.2f (bare %.2f), "
	       "child %.2f (bare %.2f); system calls %.2f (bare %.2f)\n",
	       end, (double)with.parent / CONNS_MANY, (double)bare.parent / CONNS_MANY,
	       (double)with.child / CONNS_MANY, (double)bare.child / CONNS_MANY, (double)sc_with / d,
	       (double)sc_bare / d);
	assert_true(with.parent <= bare.parent + CONN_PARENT_FAULTS * CONNS_MANY);
	assert_true(with.child <= bare.child + CONN_CHILD_FAULTS * CONNS_MANY);
	assert_true(sc_with <= sc_bare + CONN_SYSCALLS * d);
}

/* the child closes the connection, and _exit()s */
static void test_fork_per_connection_child_closes(void **state)
{
	(void)state;
	per_connection_within_budget("close");
}

/* the child _exit()s with the connection open (busybox's): the exit path's work */
static void test_fork_per_connection_child_exits(void **state)
{
	(void)state;
	per_connection_within_budget("exit");
}

static int cleanup(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (dir[0] != '\0' && system(cmd) != 0)
		return -1;
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_faults_no_socket),
		cmocka_unit_test(test_faults_100_connections_given_away),
		cmocka_unit_test(test_faults_100_connections_observe_only),
		cmocka_unit_test(test_no_syscall_added_to_a_fork),
		cmocka_unit_test(test_no_syscall_added_giving_100_connections_away),
		cmocka_unit_test(test_faults_other_thread),
		cmocka_unit_test(test_no_syscall_added_with_another_thread),
		cmocka_unit_test(test_child_exiting_as_last_holder_acts),
		cmocka_unit_test(test_fork_per_connection_child_closes),
		cmocka_unit_test(test_fork_per_connection_child_exits),
	};
	return cmocka_run_group_tests_name("fork cost", tests, NULL, cleanup);
}
