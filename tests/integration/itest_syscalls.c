/* System calls per graceful connection: what the shim adds to a server that closes first (the
 * HTTP/1.0 ending), counted by `strace -f -c` over the server's threads and the drainer together,
 * bare and under a graceful policy at level warn and at the default level (info, JSON to a
 * file). A count is the same on any machine, so it is a test where a time cannot be.
 *
 * The server is reply_server (accept, read the request, write the reply, close), N connections
 * from this process, one at a time; each client reads to EOF, then closes. Fixed costs (loading
 * the policy, starting the drainer) are taken out by the same run with no connection, so what is
 * left is per connection: the floor at warn is shutdown, the copy, one read that finds EOF and
 * the copy's close (4); at info the close line's facts add TCP_INFO and SIOCINQ (6). The drainer's
 * rounds (an epoll_wait, and at info one write of the round's lines) are shared by the
 * connections of a round; the budget allows them 0.15 a connection. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define CONNS 1500
#define REQUEST 5
#define REPLY 300
/* the drainer's rounds, shared by a round's connections: 0.04-0.16 measured on a quiet machine;
 * more rounds per connection when the machine is busy (a round is a tick), hence the margin. A
 * system call more per connection is 1.0: still caught. (The targets are 4 and 6.) */
#define SLACK 0.3

#define GRACEFUL "rules:\n  - {match: {role: server}, action: graceful}\n"
#define WARN "version: 1\nlog: {level: warn}\n" GRACEFUL
#define INFO "version: 1\nlog: {format: json}\n" GRACEFUL

extern char **environ;

static char dir[64];

/* The calls of reply_server serving `conns` connections, under strace; policy NULL: bare. */
static long count_calls(const char *policy, int conns)
{
	char out[128], pol[128], logf[128], pre[PATH_MAX + 32], polenv[160], logenv[160], server[PATH_MAX];
	char nconn[16], nreq[16], nrep[16];
	snprintf(out, sizeof out, "%s/strace.out", dir);
	snprintf(pol, sizeof pol, "%s/policy.yaml", dir);
	snprintf(logf, sizeof logf, "%s/log", dir);
	snprintf(server, sizeof server, "%s", h_build_path("progs/reply_server"));
	const char *prefix = getenv("CP_ITEST_PRELOAD_PREFIX");
	snprintf(pre, sizeof pre, "LD_PRELOAD=%s%s%s", prefix ? prefix : "", prefix ? " " : "",
		 h_build_path("libclosepolicy.so"));
	snprintf(polenv, sizeof polenv, "CLOSEPOLICY_FILE=%s", pol);
	snprintf(logenv, sizeof logenv, "CLOSEPOLICY_LOG=%s", logf);
	snprintf(nconn, sizeof nconn, "%d", conns);
	snprintf(nreq, sizeof nreq, "%d", REQUEST);
	snprintf(nrep, sizeof nrep, "%d", REPLY);
	unlink(logf);
	if (policy != NULL) {
		FILE *f = fopen(pol, "w");
		assert_non_null(f);
		fputs(policy, f);
		fclose(f);
	}
	const char *argv[24] = { "strace", "-f", "-qq", "-c", "-o", out };
	int argc = 6;
	if (policy != NULL) {
		argv[argc++] = "-E";
		argv[argc++] = pre;
		argv[argc++] = "-E";
		argv[argc++] = polenv;
		argv[argc++] = "-E";
		argv[argc++] = logenv;
	}
	const char *rest[] = { server, "-n", nreq, "-w", nrep, "-k", nconn, NULL };
	for (int i = 0; rest[i] != NULL; i++)
		argv[argc++] = rest[i];
	argv[argc] = NULL;

	int o[2];
	assert_int_equal(pipe2(o, O_CLOEXEC), 0);
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(o[1], 1);
		/* strace itself runs bare: the variables are the server's alone (-E) */
		for (char **e = environ; *e != NULL;) {
			if (strncmp(*e, "LD_PRELOAD=", 11) == 0 || strncmp(*e, "CLOSEPOLICY_", 12) == 0) {
				unsetenv(strndup(*e, strcspn(*e, "=")));
				e = environ; /* unsetenv moved the rest */
			} else {
				e++;
			}
		}
		execvp("strace", (char *const *)argv);
		_exit(127);
	}
	close(o[1]);
	FILE *so = fdopen(o[0], "r");
	char line[128];
	int port = 0;
	if (fgets(line, sizeof line, so) == NULL || sscanf(line, "port %d", &port) != 1) {
		int st;
		waitpid(pid, &st, 0);
		fail_msg("reply_server under strace did not start (is strace installed?) status %d", st);
	}
	char req[REQUEST];
	memset(req, 'q', sizeof req);
	for (int i = 0; i < conns; i++) {
		int fd = h_connect(port, 0);
		h_send_all(fd, req, sizeof req);
		struct h_read r = h_read_to_end(fd, 10000);
		assert_int_equal(r.err, 0); /* every byte, then EOF: never a reset */
		assert_int_equal(r.bytes, REPLY);
		close(fd);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	fclose(so);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);

	FILE *f = fopen(out, "r");
	assert_non_null(f);
	long total = -1;
	while (fgets(line, sizeof line, f) != NULL) {
		double pct, secs;
		long usecs, calls;
		if (strstr(line, " total") != NULL &&
		    sscanf(line, "%lf %lf %ld %ld", &pct, &secs, &usecs, &calls) == 4)
			total = calls;
	}
	fclose(f);
	assert_true(total > 0);
	return total;
}

static double extra_per_connection(const char *policy)
{
	long bare0 = count_calls(NULL, 0), bare = count_calls(NULL, CONNS) - bare0;
	long shim0 = count_calls(policy, 0), shim = count_calls(policy, CONNS) - shim0; /* its log last */
	return (double)(shim - bare) / CONNS;
}

static int setup(void **state)
{
	(void)state;
	strcpy(dir, "/tmp/cp-itest-XXXXXX");
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void test_warn_adds_at_most_four(void **state)
{
	(void)state;
	double extra = extra_per_connection(WARN);
	print_message("syscalls: graceful at level warn adds %.2f calls per connection (budget 4 + %.2f)\n",
		      extra, SLACK);
	assert_true(extra <= 4 + SLACK);
}

static void test_info_adds_at_most_six(void **state)
{
	(void)state;
	double extra = extra_per_connection(INFO);
	print_message("syscalls: graceful at level info adds %.2f calls per connection (budget 6 + %.2f)\n",
		      extra, SLACK);
	assert_true(extra <= 6 + SLACK);
	/* and the lines are all there: a close and a drain (EOF) per connection */
	char logf[128];
	snprintf(logf, sizeof logf, "%s/log", dir);
	FILE *f = fopen(logf, "r"); /* complete: the server has exited */
	assert_non_null(f);
	char line[2048];
	int closes = 0, drains = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		closes += strstr(line, "\"event\":\"close\"") != NULL;
		drains += strstr(line, "\"event\":\"drain\"") != NULL && strstr(line, "\"outcome\":\"eof\"") != NULL;
	}
	fclose(f);
	assert_int_equal(closes, CONNS);
	assert_int_equal(drains, CONNS);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_warn_adds_at_most_four),
		cmocka_unit_test(test_info_adds_at_most_six),
	};
	return cmocka_run_group_tests_name("syscalls", tests, setup, teardown);
}
