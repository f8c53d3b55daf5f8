/* `closepolicy reload`: a running, idle server switched from passthrough to reset without a
 * restart, as its peers see it (EOF before, ECONNRESET after); a connection accepted before the
 * reload keeps the rule it matched; a bad policy is refused by the command (exit 2, FILE:LINE:
 * COLUMN, nothing sent) and the old one goes on working; a process not under the shim is named
 * (exit 1). */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "shim/counters_file.h"

#include "stat_helpers.h"

#define PASS "version: 1\nrules:\n  - name: web\n    match: {role: server}\n    action: passthrough\n"
#define RESET "version: 1\nrules:\n  - name: cut\n    match: {role: server}\n    action: reset\n"
#define BAD "version: 1\nrules:\n  - name: cut\n    acton: reset\n"

static int serve(struct h_proc *p, int port, int *peer)
{
	*peer = h_connect(port, 0);
	h_send_all(*peer, "hello", 5);
	h_sayf(p, "serve 5 10");
	char line[64];
	h_line(p, line, sizeof line, 5000);
	return atoi(line + strlen("served "));
}

/* What the peer of a served connection sees once the server closes it. */
static int close_and_see(struct h_proc *p, int fd, int peer)
{
	h_sayf(p, "close %d", fd);
	h_answer(p, "close %d = 0 0", fd);
	struct h_read r = h_read_to_end(peer, 5000);
	close(peer);
	return r.err;
}

static void write_policy(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

/* step_server under PASS with a run directory of its own, reloadable (a single-threaded
 * program opts in: CLOSEPOLICY_RELOAD=1): its port. */
static int start_reloadable(struct h_rundir *rd, struct h_proc *p)
{
	h_rundir_make(rd);
	const char *env[] = { rd->var, "CLOSEPOLICY_RELOAD=1", NULL };
	h_spawn(p, PASS, env, "step_server", NULL);
	return (int)h_expect(p, "port ", 5000);
}

static void test_reload_passthrough_to_reset(void **state)
{
	(void)state;
	struct h_rundir rd;
	struct h_proc p;
	int port = start_reloadable(&rd, &p);
	int peer, fd = serve(&p, port, &peer);
	assert_int_equal(close_and_see(&p, fd, peer), 0); /* passthrough: every byte, then EOF */
	int early_peer, early = serve(&p, port, &early_peer); /* accepted under the old policy */

	char bad[200], good[200], cmd[600], out[4096];
	snprintf(bad, sizeof bad, "%s/bad.yaml", p.dir);
	snprintf(good, sizeof good, "%s/reset.yaml", p.dir);
	write_policy(bad, BAD);
	write_policy(good, RESET);

	/* a bad policy: refused by the command, nothing sent, the old one stays */
	snprintf(cmd, sizeof cmd, "reload -p %s %d", bad, (int)p.pid);
	int st = h_cp(&rd, cmd, out, sizeof out);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	char want[300];
	snprintf(want, sizeof want, "%s:4:5: unknown key acton", bad);
	assert_non_null(strstr(out, want));
	snprintf(cmd, sizeof cmd, "stat --json %d", (int)p.pid);
	assert_int_equal(h_cp(&rd, cmd, out, sizeof out), 0);
	assert_int_equal(h_json_num(out, "generation"), 1);
	fd = serve(&p, port, &peer);
	assert_int_equal(close_and_see(&p, fd, peer), 0);

	/* the server is idle (blocked reading its stdin): the shim's thread answers */
	snprintf(cmd, sizeof cmd, "reload -p %s %d", good, (int)p.pid);
	st = h_cp(&rd, cmd, out, sizeof out);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	snprintf(want, sizeof want, "%d step_server: generation 2\n", (int)p.pid);
	assert_string_equal(out, want);
	char *l = h_log_wait(&p, 5000, "event=policy", "outcome=reloaded", "generation=2", NULL);
	assert_non_null(l);
	free(l);

	fd = serve(&p, port, &peer);
	assert_int_equal(close_and_see(&p, fd, peer), ECONNRESET); /* the new rule */
	assert_int_equal(close_and_see(&p, early, early_peer), 0);  /* kept the rule it matched */

	snprintf(cmd, sizeof cmd, "stat --json %d", (int)p.pid);
	assert_int_equal(h_cp(&rd, cmd, out, sizeof out), 0);
	assert_int_equal(h_json_num(out, "generation"), 2);
	assert_string_equal(h_json_str(out, "policy"), good);
	assert_int_equal(h_json_num(h_json_get(out, "closes"), "reset"), 1);
	assert_int_equal(h_json_num(h_json_get(out, "closes"), "passthrough"), 3);
	assert_int_equal(h_json_num(h_json_get(h_json_get(h_json_get(out, "rules"), "cut"), "closes"), "reset"), 1);

	/* without -p: the process's own file, read again (generation 3) */
	snprintf(cmd, sizeof cmd, "reload %d", (int)p.pid);
	st = h_cp(&rd, cmd, out, sizeof out);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	snprintf(want, sizeof want, "%d step_server: generation 3\n", (int)p.pid);
	assert_string_equal(out, want);
	/* its own file gone bad: checked first, refused, nothing sent */
	write_policy(good, BAD);
	st = h_cp(&rd, cmd, out, sizeof out);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 2);
	fd = serve(&p, port, &peer);
	assert_int_equal(close_and_see(&p, fd, peer), ECONNRESET); /* generation 3 in force */

	/* a process not under the shim (this one): named, exit 1 */
	write_policy(good, RESET);
	snprintf(cmd, sizeof cmd, "reload -p %s %d", good, (int)getpid());
	st = h_cp(&rd, cmd, out, sizeof out);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 1);
	snprintf(want, sizeof want, "closepolicy reload: %d: no counters file", (int)getpid());
	assert_non_null(strstr(out, want));
	h_exit_ok(&p);
	h_rundir_remove(&rd);
}

/* A request the process itself refuses (here written straight into its counters file, as when
 * the file changes between the command's check and the process's load): the old policy stays,
 * the refusal is counted and logged, and the answer says so. */
static void test_process_refuses_a_bad_policy(void **state)
{
	(void)state;
	struct h_rundir rd;
	struct h_proc p;
	int port = start_reloadable(&rd, &p);
	int peer, fd = serve(&p, port, &peer);
	assert_int_equal(close_and_see(&p, fd, peer), 0);
	char bad[200], path[200];
	snprintf(bad, sizeof bad, "%s/bad.yaml", p.dir);
	write_policy(bad, BAD);
	snprintf(path, sizeof path, "%s/%d", rd.dir, (int)p.pid);
	int cfd = open(path, O_RDWR);
	assert_true(cfd >= 0);
	struct cp_ctr_file *f = mmap(NULL, sizeof *f, PROT_READ | PROT_WRITE, MAP_SHARED, cfd, 0);
	assert_true(f != MAP_FAILED);
	close(cfd);
	strcpy(f->req_path, bad);
	uint32_t seq = __atomic_add_fetch(&f->req_seq, 1, __ATOMIC_ACQ_REL);
	syscall(SYS_futex, &f->req_seq, FUTEX_WAKE, 1, NULL, NULL, 0);
	for (uint32_t done; (done = __atomic_load_n(&f->done_seq, __ATOMIC_ACQUIRE)) != seq;) {
		struct timespec ts = { 5, 0 };
		assert_int_not_equal(syscall(SYS_futex, &f->done_seq, FUTEX_WAIT, done, &ts, NULL, 0) < 0 &&
					     errno == ETIMEDOUT,
				     1);
	}
	assert_int_equal(f->done_ok, 0);
	assert_int_equal(f->rejected, 1);
	assert_int_equal(f->generation, 1);
	assert_non_null(strstr(f->last_error, "unknown key acton"));
	munmap(f, sizeof *f);
	char *l = h_log_wait(&p, 5000, "event=policy", "outcome=rejected", "unknown key acton", NULL);
	assert_non_null(l);
	free(l);
	fd = serve(&p, port, &peer);
	assert_int_equal(close_and_see(&p, fd, peer), 0); /* still passthrough */
	char cmd[64], out[8192];
	snprintf(cmd, sizeof cmd, "stat --json %d", (int)p.pid);
	assert_int_equal(h_cp(&rd, cmd, out, sizeof out), 0);
	assert_int_equal(h_json_num(out, "rejected"), 1);
	assert_non_null(strstr(h_json_str(out, "last_error"), "unknown key acton"));
	h_exit_ok(&p);
	h_rundir_remove(&rd);
}

/* CLOSEPOLICY_RELOAD=0, and the default for a single-threaded program that has not drained:
 * no reload thread (a second thread would make the C library take its multi-threaded paths):
 * the command says the process did not answer (exit 1) and how to start it so that it can, and
 * the counters still work. */
static void reload_unavailable(const char *const *env_extra)
{
	struct h_rundir rd;
	h_rundir_make(&rd);
	const char *env[] = { rd.var, env_extra[0], NULL };
	struct h_proc p;
	h_spawn(&p, PASS, env, "step_server", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	int peer, fd = serve(&p, port, &peer);
	assert_int_equal(close_and_see(&p, fd, peer), 0);
	char task[64], cmd[300], out[4096];
	snprintf(task, sizeof task, "/proc/%d/task", (int)p.pid);
	struct stat st;
	assert_int_equal(stat(task, &st), 0);
	assert_int_equal(st.st_nlink, 3); /* one thread: the program's */
	snprintf(cmd, sizeof cmd, "reload %d", (int)p.pid);
	int s = h_cp(&rd, cmd, out, sizeof out);
	assert_true(WIFEXITED(s) && WEXITSTATUS(s) == 1);
	assert_non_null(strstr(out, "no answer within 2000 ms"));
	assert_non_null(strstr(out, "CLOSEPOLICY_RELOAD=1"));
	snprintf(cmd, sizeof cmd, "stat --json %d", (int)p.pid);
	assert_int_equal(h_cp(&rd, cmd, out, sizeof out), 0);
	assert_int_equal(h_json_num(h_json_get(out, "closes"), "passthrough"), 1);
	h_exit_ok(&p);
	h_rundir_remove(&rd);
}

/* By default the reload thread starts once the process has a second thread anyway: here the
 * drainer, at the first graceful close. Then the reload works as with CLOSEPOLICY_RELOAD=1. */
static void test_reload_thread_starts_with_the_drainer(void **state)
{
	(void)state;
	struct h_rundir rd;
	h_rundir_make(&rd);
	struct h_proc p;
	h_spawn(&p, "version: 1\nrules:\n  - name: web\n    match: {role: server}\n    action: graceful\n",
		rd.env, "step_server", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	int peer, fd = serve(&p, port, &peer);
	assert_int_equal(close_and_see(&p, fd, peer), 0); /* drained: every byte, then EOF */
	char good[200], cmd[400], out[4096];
	snprintf(good, sizeof good, "%s/reset.yaml", p.dir);
	write_policy(good, RESET);
	snprintf(cmd, sizeof cmd, "reload -p %s %d", good, (int)p.pid);
	int st = h_cp(&rd, cmd, out, sizeof out);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	fd = serve(&p, port, &peer);
	assert_int_equal(close_and_see(&p, fd, peer), ECONNRESET); /* the new policy */
	h_exit_ok(&p);
	h_rundir_remove(&rd);
}

static void test_reload_off(void **state)
{
	(void)state;
	reload_unavailable((const char *[]){ "CLOSEPOLICY_RELOAD=0" });
}

static void test_reload_not_started_in_a_single_threaded_program(void **state)
{
	(void)state;
	reload_unavailable((const char *[]){ NULL });
}

/* main() leaving by pthread_exit: the shim's thread leaves too, the process ends. */
static void test_main_pthread_exit_ends_the_process(void **state)
{
	(void)state;
	struct h_rundir rd;
	h_rundir_make(&rd);
	struct h_proc p;
	h_spawn(&p, PASS, rd.env, "main_pthread_exit", NULL);
	char line[64];
	h_line(&p, line, sizeof line, 5000);
	assert_string_equal(line, "ready");
	int st = h_wait(&p, 5000);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	h_finish(&p);
	h_rundir_remove(&rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reload_passthrough_to_reset),
		cmocka_unit_test(test_process_refuses_a_bad_policy),
		cmocka_unit_test(test_reload_thread_starts_with_the_drainer),
		cmocka_unit_test(test_reload_off),
		cmocka_unit_test(test_reload_not_started_in_a_single_threaded_program),
		cmocka_unit_test(test_main_pthread_exit_ends_the_process),
	};
	/* Under ThreadSanitizer its runtime's own thread (started with the first other thread)
	 * never leaves, so no process ends by main()'s pthread_exit there: the last test is for the
	 * plain and ASan runs. */
	const char *san = getenv("SAN");
	size_t n = sizeof tests / sizeof *tests;
	if (san != NULL && strcmp(san, "thread") == 0)
		n--;
	return _cmocka_run_group_tests("itest_reload", tests, n, NULL, NULL);
}
