/* The program lets go of numbers the shim uses for itself (its log file, the drainer's epoll set
 * and a draining socket's copy), while a drain is in progress:
 *   closefrom() / close_range() close every descriptor of the program's, as without the shim, and
 *   step around the shim's, which keep working: the drain ends at the peer's EOF and is logged;
 *   dup2() onto one of the shim's numbers gives the program that number, as without the shim:
 *   the shim's file moves elsewhere first, and neither ever writes into the other's. */
#include "harness.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define POLICY "version: 1\nrules:\n  - name: web\n    action: graceful\n    drain_timeout: 20s\n"
#define REQUEST 100
#define UNREAD 1000 /* left unread by the server: the close hands the socket to the drainer */
#define REPLY 65536

/* The shim's descriptors, found from outside by what they point at. */
struct shim_fds {
	int log, epoll, copy;
};

static struct shim_fds find_shim_fds(const struct h_proc *p, int base)
{
	struct shim_fds s = { -1, -1, -1 };
	char dir[64], path[400], target[256];
	snprintf(dir, sizeof dir, "/proc/%d/fd", (int)p->pid);
	DIR *d = opendir(dir);
	assert_non_null(d);
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		int fd = atoi(e->d_name);
		snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
		ssize_t len = readlink(path, target, sizeof target - 1);
		if (len <= 0 || fd < base)
			continue;
		target[len] = '\0';
		if (strcmp(target, p->log) == 0)
			s.log = fd;
		else if (strcmp(target, "anon_inode:[eventpoll]") == 0)
			s.epoll = fd;
		else if (strncmp(target, "socket:", 7) == 0)
			s.copy = fd;
	}
	closedir(d);
	return s;
}

/* A connection served and closed by the program; its peer has read the reply and the shim's FIN
 * and holds its end open, so the drain goes on. Returns the peer's socket. */
static int drain_in_progress(struct h_proc *p, int port)
{
	int peer = h_connect(port, 0);
	char req[REQUEST + UNREAD];
	memset(req, 'r', sizeof req);
	h_send_all(peer, req, sizeof req);
	h_sayf(p, "serve %d %d", REQUEST, REPLY);
	long fd = h_expect(p, "served ", 5000);
	h_sayf(p, "close %ld", fd);
	h_answer(p, "close %ld = 0 0", fd); /* at once: the drain is the drainer's */
	struct h_read r = h_read_to_end(peer, 10000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, REPLY);
	return peer;
}

static void peer_leaves_and_drain_ends(struct h_proc *p, int peer, int n)
{
	close(peer);
	for (int waited = 0; h_log_count(p, "event=drain", "outcome=eof", NULL) < n; waited++) {
		char *line = h_log_wait(p, 100, "event=drain", "outcome=eof", NULL);
		free(line);
		if (waited > 100)
			fail_msg("drain %d did not end; log:\n%s", n, h_log(p));
	}
}

static void finish_ok(struct h_proc *p)
{
	h_say(p, "exit");
	int st = h_wait(p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(h_log_count(p, "event=error", NULL), 0);
	h_finish(p);
}

/* closefrom (how = NULL) or close_range from 3, with a drain in progress. */
static void close_everything(const char *how)
{
	struct h_proc p;
	h_spawn(&p, POLICY, NULL, "step_server", NULL);
	char first[64];
	h_line(&p, first, sizeof first, 5000);
	int port = 0, lfd = -1;
	assert_int_equal(sscanf(first, "port %d lfd %d", &port, &lfd), 2);
	int peer = drain_in_progress(&p, port);
	struct shim_fds before = find_shim_fds(&p, 3);
	assert_true(before.log >= 3 && before.epoll >= 3 && before.copy >= 3);
	h_say(&p, "open /dev/null");
	long mine = h_expect(&p, "open = ", 5000);

	if (how == NULL) {
		h_say(&p, "closefrom 3");
		h_answer(&p, "closefrom done");
	} else {
		h_say(&p, "close_range 3 -1");
		h_answer(&p, "close_range = 0 0");
	}
	/* the program's own are closed, as it asked */
	h_sayf(&p, "check %ld", mine);
	h_answer(&p, "check %ld closed", mine);
	h_sayf(&p, "check %d", lfd);
	h_answer(&p, "check %d closed", lfd);
	/* the shim's are where they were, and not the program's to close */
	struct shim_fds after = find_shim_fds(&p, 3);
	assert_memory_equal(&before, &after, sizeof before);
	h_sayf(&p, "close %d", after.log);
	h_answer(&p, "close %d = -1 9", after.log); /* EBADF, as for any number not open */

	peer_leaves_and_drain_ends(&p, peer, 1);
	finish_ok(&p);
}

static void test_closefrom_steps_around_the_shim(void **state)
{
	(void)state;
	close_everything(NULL);
}

static void test_close_range_steps_around_the_shim(void **state)
{
	(void)state;
	close_everything("close_range");
}

static void test_dup2_onto_the_shims_numbers(void **state)
{
	(void)state;
	struct h_proc p;
	h_spawn(&p, POLICY, NULL, "step_server", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	int peer = drain_in_progress(&p, port);
	struct shim_fds s = find_shim_fds(&p, 3);
	int taken[3] = { s.log, s.epoll, s.copy };

	char out[160];
	snprintf(out, sizeof out, "%s/program.out", p.dir);
	h_sayf(&p, "open %s", out);
	long file = h_expect(&p, "open = ", 5000);
	for (int i = 0; i < 3; i++) {
		assert_true(taken[i] >= 3);
		h_sayf(&p, "dup2 %ld %d", file, taken[i]);
		h_answer(&p, "dup2 = %d 0", taken[i]); /* as without the shim */
	}
	for (int i = 0; i < 3; i++) {
		h_sayf(&p, "write %d program-line-%d", taken[i], i);
		h_answer(&p, "write %d = %zu", taken[i], strlen("program-line-0\n"));
	}

	/* the shim goes on: the drain in progress ends, and a new one runs in the background */
	peer_leaves_and_drain_ends(&p, peer, 1);
	peer = drain_in_progress(&p, port);
	peer_leaves_and_drain_ends(&p, peer, 2);

	/* the program's numbers are still the program's: closing each works */
	for (int i = 0; i < 3; i++) {
		h_sayf(&p, "close %d", taken[i]);
		h_answer(&p, "close %d = 0 0", taken[i]);
	}
	/* neither wrote into the other's file */
	FILE *f = fopen(out, "r");
	assert_non_null(f);
	char line[512];
	int lines = 0;
	while (fgets(line, sizeof line, f) != NULL) {
		assert_int_equal(strncmp(line, "program-line-", 13), 0);
		lines++;
	}
	fclose(f);
	unlink(out);
	assert_int_equal(lines, 3);
	assert_int_equal(h_log_count(&p, "program-line-", NULL), 0);
	finish_ok(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_closefrom_steps_around_the_shim),
		cmocka_unit_test(test_close_range_steps_around_the_shim),
		cmocka_unit_test(test_dup2_onto_the_shims_numbers),
	};
	return cmocka_run_group_tests_name("ownfd", tests, NULL, NULL);
}
