/* The log target cannot be opened (a missing directory, a directory) or cannot be written (a
 * full device): the shim logs to stderr instead, says so once with an `error` event, loses no
 * event, and the program runs as it would without the shim. */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define POLICY "version: 1\nrules:\n  - name: web\n    action: graceful\n"

struct captured {
	char path[64];
	char *text;
};

/* Start reply_server with CLOSEPOLICY_LOG=target and its stderr in a file. */
static void spawn_with_stderr(struct h_proc *p, const char *target, struct captured *err)
{
	strcpy(err->path, "/tmp/cp-itest-stderr-XXXXXX");
	int fd = mkstemp(err->path);
	assert_true(fd >= 0);
	char logenv[256];
	snprintf(logenv, sizeof logenv, "CLOSEPOLICY_LOG=%s", target);
	const char *env[] = { logenv, NULL };
	/* the program inherits the test's descriptor 2: point it at the file while it starts */
	fflush(stderr);
	int saved = dup(2);
	dup2(fd, 2);
	close(fd);
	h_spawn(p, POLICY, env, "reply_server", "-n", "100", "-w", "100000", "-x", NULL);
	dup2(saved, 2);
	close(saved);
}

static char *read_file(const char *path)
{
	FILE *f = fopen(path, "r");
	if (f == NULL)
		return strdup("");
	char *buf = calloc(1, 1 << 16);
	size_t n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int count_lines(const char *text, const char *a, const char *b)
{
	int n = 0;
	for (const char *line = text; *line;) {
		const char *end = strchr(line, '\n');
		size_t len = end ? (size_t)(end - line) : strlen(line);
		char *copy = strndup(line, len);
		if (strstr(copy, a) && (b == NULL || strstr(copy, b)))
			n++;
		free(copy);
		if (end == NULL)
			break;
		line = end + 1;
	}
	return n;
}

/* Wait until stderr has `needle` (the drain happens after close returned). */
static void wait_for(struct captured *err, const char *needle)
{
	free(err->text);
	err->text = h_file_wait(err->path, needle, 5000);
	if (err->text == NULL)
		fail_msg("no \"%s\" on the program's stderr within 5 s", needle);
}

/* One connection through the program, then its exit: all of it as without a log problem. */
static void serve_one(struct h_proc *p, struct captured *err)
{
	int port = (int)h_expect(p, "port ", 5000);
	int fd = h_connect(port, 0);
	char req[100] = { 0 };
	h_send_all(fd, req, sizeof req);
	struct h_read r = h_read_to_end(fd, 10000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, 100000);
	close(fd);
	wait_for(err, "event=drain");
	h_say(p, "exit");
	int st = h_wait(p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	free(err->text);
	err->text = read_file(err->path);
	/* every event reached stderr; the problem was said once */
	assert_int_equal(count_lines(err->text, "event=policy", "outcome=loaded"), 1);
	assert_int_equal(count_lines(err->text, "event=close", "action=graceful"), 1);
	assert_int_equal(count_lines(err->text, "event=drain", "outcome=eof"), 1);
	assert_int_equal(count_lines(err->text, "event=error", NULL), 1);
}

static void finish(struct h_proc *p, struct captured *err)
{
	free(err->text);
	unlink(err->path);
	h_finish(p);
}

static void test_missing_directory(void **state)
{
	(void)state;
	struct h_proc p;
	struct captured err = { 0 };
	spawn_with_stderr(&p, "/nonexistent-cp-dir/sub/log", &err);
	serve_one(&p, &err);
	assert_int_equal(count_lines(err.text, "event=error", "errno=ENOENT"), 1);
	assert_int_equal(count_lines(err.text, "cannot open the log file", "instead=\"logging to stderr\""), 1);
	finish(&p, &err);
}

/* A log path that is a symbolic link is refused (O_NOFOLLOW): a link planted where a
 * privileged program logs must not redirect its appends. The link's target stays untouched. */
static void test_target_is_a_symlink(void **state)
{
	(void)state;
	char dir[] = "/tmp/cp-logsym-XXXXXX", link[64], victim[64];
	assert_non_null(mkdtemp(dir));
	snprintf(victim, sizeof victim, "%s/victim", dir);
	snprintf(link, sizeof link, "%s/log", dir);
	FILE *f = fopen(victim, "w");
	fclose(f);
	assert_int_equal(symlink(victim, link), 0);
	struct h_proc p;
	struct captured err = { 0 };
	spawn_with_stderr(&p, link, &err);
	serve_one(&p, &err);
	assert_int_equal(count_lines(err.text, "event=error", "errno=ELOOP"), 1);
	char *text = read_file(victim);
	assert_string_equal(text, "");
	free(text);
	finish(&p, &err);
	unlink(link);
	unlink(victim);
	rmdir(dir);
}

static void test_target_is_a_directory(void **state)
{
	(void)state;
	struct h_proc p;
	struct captured err = { 0 };
	spawn_with_stderr(&p, "/tmp", &err);
	serve_one(&p, &err);
	assert_int_equal(count_lines(err.text, "event=error", "errno=EISDIR"), 1);
	finish(&p, &err);
}

/* /dev/full opens, and every write fails with ENOSPC: the first event finds out. */
static void test_target_cannot_be_written(void **state)
{
	(void)state;
	struct h_proc p;
	struct captured err = { 0 };
	spawn_with_stderr(&p, "/dev/full", &err);
	serve_one(&p, &err);
	assert_int_equal(count_lines(err.text, "event=error", "errno=ENOSPC"), 1);
	assert_int_equal(count_lines(err.text, "cannot write the log file", "instead=\"logging to stderr\""), 1);
	/* said before the event whose write failed, which follows it */
	assert_true(strstr(err.text, "event=error") < strstr(err.text, "event=policy"));
	finish(&p, &err);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_missing_directory),
		cmocka_unit_test(test_target_is_a_symlink),
		cmocka_unit_test(test_target_is_a_directory),
		cmocka_unit_test(test_target_cannot_be_written),
	};
	return cmocka_run_group_tests_name("logtarget", tests, NULL, NULL);
}
