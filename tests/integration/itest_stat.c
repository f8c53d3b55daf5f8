/* `closepolicy stat`: a real server under the shim, a known number of connections of each kind,
 * and the counters read by the command from the process's counters file: exact in --json,
 * well-formed in --prometheus (checked by a strict parser here), one process summed with --sum,
 * files of processes that are gone removed. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "stat_helpers.h"

static time_t test_began;

#define POLICY_RULES                              \
	"sigpipe: ignore\n"                       \
	"rules:\n"                                \
	"  - name: web\n"                         \
	"    match: {role: server}\n"             \
	"    action: graceful\n"                  \
	"  - name: out\n"                         \
	"    match: {role: client}\n"             \
	"    action: passthrough\n"
#define POLICY "version: 1\n" POLICY_RULES

#define GRACEFUL 3
#define RISKY 2
#define UNREAD 1000

/* A client's "hello", read by the server, which writes 100 bytes back: the server's descriptor
 * of the connection (the client's in *client). */
static int served(struct h_proc *p, int port, int *client)
{
	*client = h_connect(port, 0);
	h_send_all(*client, "hello", 5);
	h_sayf(p, "serve 5 100");
	char line[64];
	h_line(p, line, sizeof line, 5000);
	return atoi(line + strlen("served "));
}

/* A served connection the peer reads to its end and closes: a graceful close ending in eof. */
static void serve_graceful(struct h_proc *p, int port)
{
	int c;
	int fd = served(p, port, &c);
	h_sayf(p, "close %d", fd);
	h_answer(p, "close %d = 0 0", fd);
	struct h_read r = h_read_to_end(c, 5000);
	assert_int_equal(r.bytes, 100);
	assert_int_equal(r.err, 0);
	close(c);
}

/* A connection the server makes, closed with data it never read: passthrough, so the kernel
 * answers with RST (a risky close). */
static void client_risky(struct h_proc *p, int lfd, int lport)
{
	h_sayf(p, "connect %d", lport);
	char line[64];
	h_line(p, line, sizeof line, 5000);
	int fd = atoi(line + strlen("connected "));
	int a = accept(lfd, NULL, NULL);
	assert_true(a >= 0);
	char junk[UNREAD];
	memset(junk, 'j', sizeof junk);
	h_send_all(a, junk, sizeof junk);
	h_sayf(p, "close %d", fd);
	h_answer(p, "close %d = 0 0", fd);
	struct h_read r = h_read_to_end(a, 5000);
	assert_int_equal(r.err, ECONNRESET);
	close(a);
}

/* A served connection the peer resets; the server writes twice: ECONNRESET, then EPIPE (no
 * SIGPIPE: sigpipe: ignore). Left open. */
static void reset_by_peer(struct h_proc *p, int port)
{
	int c = h_connect(port, 0);
	h_send_all(c, "hello", 5);
	h_sayf(p, "serve 5 10");
	char line[64];
	h_line(p, line, sizeof line, 5000);
	int fd = atoi(line + strlen("served "));
	assert_int_equal(h_read_upto(c, 10, 5000).bytes, 10);
	h_close_with_rst(c);
	h_sayf(p, "write %d a", fd);
	h_answer(p, "write %d = -1", fd);
	h_sayf(p, "write %d b", fd);
	h_answer(p, "write %d = -1", fd);
}

/* step_server under policy with a run directory of its own: its port. */
static int start_under(struct h_rundir *rd, struct h_proc *p, const char *policy)
{
	h_rundir_make(rd);
	h_spawn(p, policy, rd->env, "step_server", NULL);
	return (int)h_expect(p, "port ", 5000);
}

static int start(struct h_rundir *rd, struct h_proc *p)
{
	return start_under(rd, p, POLICY);
}

static void test_stat_json_counts_exactly(void **state)
{
	(void)state;
	struct h_rundir rd;
	struct h_proc p;
	int port = start(&rd, &p);
	int lport, lfd = h_listen(&lport);
	for (int i = 0; i < GRACEFUL; i++)
		serve_graceful(&p, port);
	for (int i = 0; i < RISKY; i++)
		client_risky(&p, lfd, lport);
	reset_by_peer(&p, port);
	/* the drains end on the shim's thread: wait for their lines, not for time */
	for (int i = 1; i <= GRACEFUL; i++) {
		char *l = h_log_wait_count(&p, i, 5000, "event=drain", "outcome=eof");
		assert_non_null(l);
		free(l);
	}

	char out[16384], cmd[512];
	snprintf(cmd, sizeof cmd, "stat --json %d", (int)p.pid);
	assert_int_equal(h_cp(&rd, cmd, out, sizeof out), 0);
	const char *o = out;
	assert_int_equal(h_json_num(o, "pid"), p.pid);
	assert_string_equal(h_json_str(o, "program"), "step_server");
	assert_string_equal(h_json_str(o, "policy"), p.policy);
	assert_int_equal(h_json_num(o, "generation"), 1);
	/* start-up's policy, loaded as the process started (the shim writes no time for it: stat
	 * reads the start from /proc): after the test began, not in the future */
	long long loaded = h_json_num(o, "loaded");
	assert_true(loaded >= (long long)test_began - 1 && loaded <= (long long)time(NULL) + 1);
	assert_int_equal(h_json_num(h_json_get(o, "closes"), "graceful"), GRACEFUL);
	assert_int_equal(h_json_num(h_json_get(o, "closes"), "passthrough"), RISKY);
	assert_int_equal(h_json_num(h_json_get(o, "closes"), "linger"), 0);
	assert_int_equal(h_json_num(h_json_get(o, "closes"), "reset"), 0);
	const char *web = h_json_get(h_json_get(o, "rules"), "web");
	const char *outr = h_json_get(h_json_get(o, "rules"), "out");
	assert_int_equal(h_json_num(h_json_get(web, "closes"), "graceful"), GRACEFUL);
	assert_int_equal(h_json_num(h_json_get(outr, "closes"), "passthrough"), RISKY);
	assert_int_equal(h_json_num(outr, "risk"), RISKY);
	assert_int_equal(h_json_num(h_json_get(o, "no_rule"), "passthrough"), 0);
	assert_int_equal(h_json_num(h_json_get(o, "drains"), "eof"), GRACEFUL);
	assert_int_equal(h_json_num(h_json_get(o, "drains"), "idle"), 0);
	assert_int_equal(h_json_num(o, "draining"), 0);
	assert_int_equal(h_json_num(o, "risk"), RISKY);
	assert_int_equal(h_json_num(o, "risk_unread_bytes"), RISKY * UNREAD);
	assert_int_equal(h_json_num(o, "dry_run"), 0);
	assert_int_equal(h_json_num(o, "epipe"), 1);
	assert_int_equal(h_json_num(h_json_get(o, "epipe_calls"), "write"), 1);
	assert_int_equal(h_json_num(o, "econnreset"), 1);
	assert_int_equal(h_json_num(o, "sigpipe"), 0);
	assert_int_equal(h_json_num(o, "errors"), 0);
	assert_int_equal(h_json_num(o, "rejected"), 0);
	/* every line the log has, the counters have */
	assert_int_equal(h_json_num(o, "log_lines"), h_log_count(&p, "closepolicy[", NULL));
	assert_null(strchr(strchr(out, '\n') + 1, '{')); /* one object: one process */

	/* all live processes (none named) is the same one; --sum names it once with a count */
	assert_int_equal(h_cp(&rd, "stat --json", out, sizeof out), 0);
	assert_int_equal(h_json_num(out, "pid"), p.pid);
	assert_int_equal(h_cp(&rd, "stat --json --sum", out, sizeof out), 0);
	assert_int_equal(h_json_num(out, "processes"), 1);
	assert_int_equal(h_json_num(h_json_get(out, "closes"), "graceful"), GRACEFUL);
	/* text: the program and the rule are named */
	assert_int_equal(h_cp(&rd, "stat", out, sizeof out), 0);
	assert_non_null(strstr(out, "step_server  pid"));
	assert_non_null(strstr(out, "rule web"));

	/* top without a terminal: one snapshot; every line within 80 columns */
	snprintf(cmd, sizeof cmd, "top -d 0.1 --once %d", (int)p.pid);
	assert_int_equal(h_cp(&rd, cmd, out, sizeof out), 0);
	assert_non_null(strstr(out, "closepolicy top "));
	assert_non_null(strstr(out, "1 process "));
	char row[64];
	snprintf(row, sizeof row, "\n%-7dstep_serve", (int)p.pid);
	assert_non_null(strstr(out, row));
	assert_non_null(strstr(out, "\n        web "));
	assert_non_null(strstr(out, "\n        out "));
	for (char *s = out, *nl; (nl = strchr(s, '\n')) != NULL; s = nl + 1)
		assert_true(nl - s <= 80);

	close(lfd);
	h_exit_ok(&p);
	/* removed at exit */
	char path[256];
	snprintf(path, sizeof path, "%s/%d", rd.dir, (int)p.pid);
	assert_int_equal(access(path, F_OK), -1);
	h_rundir_remove(&rd);
}

static void test_prometheus_parses(void **state)
{
	(void)state;
	struct h_rundir rd;
	struct h_proc p;
	int port = start(&rd, &p);
	serve_graceful(&p, port);
	char *l = h_log_wait(&p, 5000, "event=drain", NULL);
	assert_non_null(l);
	free(l);
	static char out[65536];
	assert_int_equal(h_cp(&rd, "stat --prometheus", out, sizeof out), 0);
	struct h_prom_check c = h_prom_parse(out);
	assert_true(c.samples > 50);
	char want[256];
	snprintf(want, sizeof want,
		 "closepolicy_closes_total{program=\"step_server\",pid=\"%d\",rule=\"web\",action=\"graceful\"} 1\n",
		 (int)p.pid);
	assert_non_null(strstr(out, want));
	snprintf(want, sizeof want, "closepolicy_drain_duration_seconds_count{program=\"step_server\",pid=\"%d\"} 1\n",
		 (int)p.pid);
	assert_non_null(strstr(out, want));
	/* --sum: no pid label, the same families */
	assert_int_equal(h_cp(&rd, "stat --prometheus --sum", out, sizeof out), 0);
	c = h_prom_parse(out);
	assert_true(c.samples > 50);
	assert_null(strstr(out, "pid=\""));
	h_exit_ok(&p);
	h_rundir_remove(&rd);
}

/* A file left by a process that died without exiting (SIGKILL), and one whose PID is alive but
 * does not map it (the test's own): both removed by stat, neither shown; a named PID without a
 * file is an error (exit 1) that says why. */
static void test_stale_files_removed(void **state)
{
	(void)state;
	struct h_rundir rd;
	struct h_proc p;
	int port = start(&rd, &p);
	serve_graceful(&p, port);
	char dead[256], mine[256];
	snprintf(dead, sizeof dead, "%s/%d", rd.dir, (int)p.pid);
	assert_int_equal(access(dead, F_OK), 0);
	kill(p.pid, SIGKILL);
	h_wait(&p, 5000);
	assert_int_equal(access(dead, F_OK), 0); /* no exit path ran */
	snprintf(mine, sizeof mine, "%s/%d", rd.dir, (int)getpid());
	int fd = open(mine, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "PCLPCTR1 garbage", 16), 16);
	close(fd);
	char out[4096];
	assert_int_equal(h_cp(&rd, "stat --json", out, sizeof out), 0);
	assert_string_equal(out, "");
	assert_int_equal(access(dead, F_OK), -1);
	assert_int_equal(access(mine, F_OK), -1);
	char cmd[64];
	snprintf(cmd, sizeof cmd, "stat %d", (int)getpid());
	assert_int_equal(h_cp(&rd, cmd, out, sizeof out), 1 << 8);
	assert_non_null(strstr(out, "no counters file"));
	h_finish(&p);
	h_rundir_remove(&rd);
}

/* A fork-per-connection server: each child closes the connection as its last holder and exits.
 * The children count in the server's file (they made no socket of their own): no file is made
 * and removed per connection, and the server's counters show every child's close and drain. */
static void test_forked_children_count_in_the_servers_file(void **state)
{
	(void)state;
	struct h_rundir rd;
	struct h_proc p;
	int port = start(&rd, &p);
	for (int i = 0; i < 2; i++) {
		int c;
		int fd = served(&p, port, &c);
		h_sayf(&p, "handoff %d", fd);
		char line[64];
		h_expect_all_then_eof(c, 100); /* the child's drain ends at this EOF, then it exits */
		h_line(&p, line, sizeof line, 5000);
		int st = -1, child = 0;
		assert_int_equal(sscanf(line, "handoff %*d = %d %d", &st, &child), 2);
		assert_int_equal(st, 0);
		char file[256];
		snprintf(file, sizeof file, "%s/%d", rd.dir, child);
		assert_int_equal(access(file, F_OK), -1); /* none of its own, even for a moment */
	}
	char cmd[64], out[8192];
	snprintf(cmd, sizeof cmd, "stat --json %d", (int)p.pid);
	assert_int_equal(h_cp(&rd, cmd, out, sizeof out), 0);
	assert_int_equal(h_json_num(h_json_get(out, "closes"), "graceful"), 2);
	assert_int_equal(h_json_num(h_json_get(out, "drains"), "eof"), 2);
	/* under their rule's one slot: the second child found the slot the first named (by its
	 * name in the file: a child's hints are its parent's) and named no second one */
	const char *web = h_json_get(h_json_get(out, "rules"), "web");
	assert_int_equal(h_json_num(h_json_get(web, "closes"), "graceful"), 2);
	const char *first = strstr(out, "\"web\"");
	assert_non_null(first);
	assert_null(strstr(first + 1, "\"web\""));
	h_exit_ok(&p);
	h_rundir_remove(&rd);
}

/* The peer closed first: the server's graceful close finds its EOF already there (a peek) and
 * closes at once. At level warn (no close line) the drain is counted all the same, as ended at
 * eof, and nothing is left counted as draining (it was, once per such close). */
static void test_peer_gone_close_counts_its_drain(void **state)
{
	(void)state;
	struct h_rundir rd;
	struct h_proc p;
	int port = start_under(&rd, &p, "version: 1\nlog: {level: warn}\n" POLICY_RULES);
	int c;
	int fd = served(&p, port, &c);
	char buf[100];
	size_t got = 0;
	while (got < sizeof buf) {
		ssize_t n = read(c, buf + got, sizeof buf - got);
		assert_true(n > 0);
		got += (size_t)n;
	}
	assert_int_equal(shutdown(c, SHUT_WR), 0);
	/* FIN_WAIT2: the server's kernel acknowledged the FIN, so its socket holds the EOF */
	struct tcp_info ti;
	for (int i = 0; i < 5000; i++) {
		socklen_t len = sizeof ti;
		assert_int_equal(getsockopt(c, IPPROTO_TCP, TCP_INFO, &ti, &len), 0);
		if (ti.tcpi_state == TCP_FIN_WAIT2)
			break;
		poll(NULL, 0, 1); /* the ACK is a loopback delivery away */
	}
	assert_int_equal(ti.tcpi_state, TCP_FIN_WAIT2);
	h_sayf(&p, "close %d", fd);
	h_answer(&p, "close %d = 0 0", fd);
	struct h_read r = h_read_to_end(c, 5000);
	assert_int_equal(r.err, 0);
	close(c);
	char cmd[64], out[8192];
	snprintf(cmd, sizeof cmd, "stat --json %d", (int)p.pid);
	assert_int_equal(h_cp(&rd, cmd, out, sizeof out), 0);
	assert_int_equal(h_json_num(h_json_get(out, "closes"), "graceful"), 1);
	assert_int_equal(h_json_num(h_json_get(out, "drains"), "eof"), 1);
	assert_int_equal(h_json_num(out, "draining"), 0);
	h_exit_ok(&p);
	h_rundir_remove(&rd);
}

/* top in a terminal (a tmux pane of 80 columns): the process's line appears, p sorts by PID,
 * nothing is wider than the terminal, q quits. */
static void test_top_in_a_terminal(void **state)
{
	(void)state;
	struct h_rundir rd;
	struct h_proc p;
	int port = start(&rd, &p);
	serve_graceful(&p, port);
	char script[2048], out[4096];
	snprintf(script, sizeof script,
		 "S=cp-itest-$$; T=\"tmux -L $S\"\n"
		 "wait_for() { i=0; until eval \"$1\"; do i=$((i+1)); [ $i -lt 200 ] || { echo \"timeout: $1\"; "
		 "$T capture-pane -p; $T kill-server; exit 3; }; sleep 0.05; done; }\n"
		 "$T new-session -d -x 80 -y 20 \"exec '%s' top %d\" || exit 2\n"
		 "wait_for '$T capture-pane -p | grep -q \"^%d  *step_serve\"'\n"
		 "$T send-keys p\n"
		 "wait_for '$T capture-pane -p | grep -q \"sort: pid\"'\n"
		 "$T capture-pane -p | awk 'length > 80 { exit 4 }' || exit 4\n"
		 "$T send-keys q\n"
		 "wait_for '! $T has-session 2>/dev/null'\n"
		 "echo ok\n",
		 h_build_path("closepolicy"), (int)p.pid, (int)p.pid);
	int st = h_run((const char *[]){ "/bin/sh", "-c", script, NULL }, rd.env, out, sizeof out, 30000);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("top in tmux: status %#x, output:\n%s", st, out);
	assert_string_equal(out, "ok\n");
	h_exit_ok(&p);
	h_rundir_remove(&rd);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_stat_json_counts_exactly),
		cmocka_unit_test(test_prometheus_parses),
		cmocka_unit_test(test_stale_files_removed),
		cmocka_unit_test(test_forked_children_count_in_the_servers_file),
		cmocka_unit_test(test_peer_gone_close_counts_its_drain),
		cmocka_unit_test(test_top_in_a_terminal),
	};
	test_began = time(NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
