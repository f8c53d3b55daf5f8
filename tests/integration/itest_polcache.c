/* The policy cache (libclosepolicy(7), FILES): the second process under a policy file takes
 * the compiled policy from the cache (cached=true) and acts exactly as the first; a policy
 * file rewritten in place — same size, its modification time put back — is obeyed at once, never
 * its cached predecessor; a damaged cache is ignored and rewritten; a rejected policy is never
 * cached; a run directory others can write to is not used; caches of policy files that are gone,
 * and caches of another version of the format, are removed. What the policy does is asserted from the peer: passthrough leaves the server's
 * unread request to the kernel, which resets; graceful delivers every byte, then EOF. */
#include "harness.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

/* The same length, so that one rewritten over the other keeps the file's size. */
static const char passthrough[] = "version: 1\nrules:\n  - {match: {role: server}, action: passthrough}\n";
static const char graceful[] = "version: 1\nrules:\n  - {match: {role: server}, action: graceful}   \n";
_Static_assert(sizeof passthrough == sizeof graceful, "the two policies differ in size");

static char dir[] = "/tmp/cp-itest-polcache-XXXXXX";
static char rundir[PATH_MAX], policy[PATH_MAX], file_env[2 * PATH_MAX], rundir_env[2 * PATH_MAX];

static void write_policy(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	assert_int_equal(fclose(f), 0);
}

/* The cache files in the run directory. */
static int caches(void)
{
	DIR *d = opendir(rundir);
	assert_non_null(d);
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		n += strncmp(e->d_name, "policy-", 7) == 0;
	closedir(d);
	return n;
}

/* The path of the only cache file. */
static void cache_path(char *buf, size_t size)
{
	DIR *d = opendir(rundir);
	assert_non_null(d);
	buf[0] = '\0';
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (strncmp(e->d_name, "policy-", 7) == 0)
			snprintf(buf, size, "%s/%s", rundir, e->d_name);
	closedir(d);
	assert_true(buf[0] != '\0');
}

/* What a process holds open: the targets of /proc/PID/fd, one per line, sorted by number. */
static void descriptors(pid_t pid, char *out, size_t size)
{
	char path[64], target[PATH_MAX];
	size_t len = 0;
	out[0] = '\0';
	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof path, "/proc/%d/fd/%d", (int)pid, fd);
		ssize_t n = readlink(path, target, sizeof target - 1);
		if (n < 0)
			continue;
		target[n] = '\0';
		/* kinds, not inode numbers; the log, not its directory (each run has its own) */
		const char *slash = strrchr(target, '/');
		if (strncmp(target, "socket:", 7) == 0 || strncmp(target, "pipe:", 5) == 0)
			strcpy(target, strncmp(target, "socket:", 7) == 0 ? "socket" : "pipe");
		else if (slash != NULL && strcmp(slash, "/log") == 0)
			strcpy(target, "the log");
		len += (size_t)snprintf(out + len, size - len, "%d %s\n", fd, target);
		assert_true(len < size);
	}
}

/* reply_server under the policy file: the peer sends 100 bytes, the server reads 5, replies
 * 1000 and closes. want_graceful: all 1000 bytes, then EOF; else a reset. The `policy` event
 * says whether the cache gave the policy. fds: what the server holds open once started. */
static void serve_one(bool want_graceful, bool want_cached, char *fds, size_t fds_size)
{
	const char *env[] = { file_env, rundir_env, NULL };
	struct h_proc p;
	h_spawn(&p, NULL, env, "reply_server", "-n", "5", "-w", "1000", NULL);
	int port = (int)h_expect(&p, "port ", 5000);
	if (fds != NULL)
		descriptors(p.pid, fds, fds_size);
	int fd = h_connect(port, 0);
	char req[100] = { 0 };
	h_send_all(fd, req, sizeof req);
	struct h_read r = h_read_to_end(fd, 10000);
	close(fd);
	int st = h_wait(&p, 10000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	if (want_graceful) {
		assert_int_equal(r.err, 0);
		assert_int_equal(r.bytes, 1000);
	} else {
		assert_int_equal(r.err, ECONNRESET);
	}
	assert_int_equal(h_log_count(&p, "event=policy", "outcome=loaded", want_cached ? "cached=true" : "cached=false", NULL), 1);
	h_finish(&p);
}

static void test_written_then_used(void **state)
{
	(void)state;
	char first[4096], second[4096];
	write_policy(policy, passthrough);
	assert_int_equal(caches(), 0);
	serve_one(false, false, first, sizeof first);
	assert_int_equal(caches(), 1);
	serve_one(false, true, second, sizeof second);
	assert_string_equal(first, second); /* no descriptor left by reading the cache */
	serve_one(false, true, NULL, 0);
	assert_int_equal(caches(), 1);
}

/* The worst case for a cache keyed by timestamps: same size, same modification time. */
static void test_rewritten_in_place(void **state)
{
	(void)state;
	write_policy(policy, passthrough);
	serve_one(false, false, NULL, 0);
	serve_one(false, true, NULL, 0);
	struct stat before, after;
	assert_int_equal(stat(policy, &before), 0);
	int fd = open(policy, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, graceful, strlen(graceful), 0), (ssize_t)strlen(graceful));
	struct timespec times[2] = { before.st_atim, before.st_mtim };
	assert_int_equal(futimens(fd, times), 0);
	close(fd);
	assert_int_equal(stat(policy, &after), 0);
	assert_int_equal(after.st_size, before.st_size);
	assert_int_equal(after.st_mtim.tv_sec, before.st_mtim.tv_sec);
	assert_int_equal(after.st_mtim.tv_nsec, before.st_mtim.tv_nsec);
	assert_int_equal(after.st_ino, before.st_ino);
	serve_one(true, false, NULL, 0); /* the new policy at once */
	serve_one(true, true, NULL, 0);  /* and its cache from then on */
	write_policy(policy, passthrough); /* and back */
	serve_one(false, false, NULL, 0);
	serve_one(false, true, NULL, 0);
}

/* A torn cache, a byte changed in it, another program's bytes: the file is parsed, the cache
 * made again. */
static void test_damaged_cache(void **state)
{
	(void)state;
	char cache[PATH_MAX + 300];
	write_policy(policy, graceful);
	serve_one(true, false, NULL, 0);
	cache_path(cache, sizeof cache);
	struct stat st;
	assert_int_equal(stat(cache, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);

	assert_int_equal(truncate(cache, st.st_size / 2), 0);
	serve_one(true, false, NULL, 0);
	serve_one(true, true, NULL, 0);

	int fd = open(cache, O_RDWR);
	assert_true(fd >= 0);
	unsigned char last;
	assert_int_equal(pread(fd, &last, 1, st.st_size - 1), 1);
	last ^= 0x40;
	assert_int_equal(pwrite(fd, &last, 1, st.st_size - 1), 1);
	close(fd);
	serve_one(true, false, NULL, 0);
	serve_one(true, true, NULL, 0);

	write_policy(cache, "CPCACHE\n garbage\n");
	serve_one(true, false, NULL, 0);
	serve_one(true, true, NULL, 0);
	assert_int_equal(caches(), 1);
}

/* A rejected policy is reported by every process, as without the cache, and never cached. */
static void test_rejected_not_cached(void **state)
{
	(void)state;
	write_policy(policy, "version: 1\nrules:\n  - {match: {role: server}, action: explode}\n");
	for (int i = 0; i < 2; i++) {
		const char *env[] = { file_env, rundir_env, NULL };
		struct h_proc p;
		h_spawn(&p, NULL, env, "reply_server", "-n", "5", "-w", "1000", NULL);
		int port = (int)h_expect(&p, "port ", 5000);
		int fd = h_connect(port, 0);
		char req[100] = { 0 };
		h_send_all(fd, req, sizeof req);
		struct h_read r = h_read_to_end(fd, 10000);
		close(fd);
		assert_int_equal(r.err, ECONNRESET); /* the built-in default: no rule */
		assert_int_equal(h_wait(&p, 10000), 0);
		assert_int_equal(h_log_count(&p, "event=policy", "outcome=rejected", "explode", NULL), 1);
		assert_int_equal(h_log_count(&p, "outcome=loaded", NULL), 0);
		h_finish(&p);
		assert_int_equal(caches(), 0);
	}
}

/* A run directory others can write to could hand the process anyone's policy: not read, not
 * written; the file is parsed every time. */
static void test_unsafe_rundir(void **state)
{
	(void)state;
	write_policy(policy, graceful);
	serve_one(true, false, NULL, 0);
	assert_int_equal(caches(), 1);
	assert_int_equal(chmod(rundir, 0777), 0);
	serve_one(true, false, NULL, 0);
	serve_one(true, false, NULL, 0);
	assert_int_equal(chmod(rundir, 0700), 0);
	serve_one(true, true, NULL, 0);
}

/* The cache of a policy file that was removed goes when the next cache is written. */
static void test_gone_policies_removed(void **state)
{
	(void)state;
	write_policy(policy, graceful);
	serve_one(true, false, NULL, 0);
	assert_int_equal(caches(), 1);
	unlink(policy);
	/* and one another version of the format left (an upgrade): "CPCACHE\n", format 99 */
	char foreign[PATH_MAX + 32];
	snprintf(foreign, sizeof foreign, "%s/policy-0123456789abcdef", rundir);
	static const unsigned char other_format[24] = { 'C', 'P', 'C', 'A', 'C', 'H', 'E', '\n', 99 };
	int ff = open(foreign, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(ff >= 0);
	assert_int_equal(write(ff, other_format, sizeof other_format), (int)sizeof other_format);
	close(ff);
	assert_int_equal(caches(), 2);
	char other[PATH_MAX + 16];
	snprintf(other, sizeof other, "%s/other.yaml", dir);
	write_policy(other, passthrough);
	char saved[sizeof file_env];
	strcpy(saved, file_env);
	snprintf(file_env, sizeof file_env, "CLOSEPOLICY_FILE=%s", other);
	serve_one(false, false, NULL, 0);
	strcpy(file_env, saved);
	assert_int_equal(caches(), 1); /* other.yaml's only: the gone policy's and the other format's swept */
	unlink(other);
}

/* Each test: a fresh run directory, a fresh policy path. */
static int setup(void **state)
{
	(void)state;
	static int n;
	snprintf(rundir, sizeof rundir, "%s/run%d", dir, n);
	snprintf(policy, sizeof policy, "%s/policy%d.yaml", dir, n++);
	if (mkdir(rundir, 0700) != 0)
		return -1;
	snprintf(file_env, sizeof file_env, "CLOSEPOLICY_FILE=%s", policy);
	snprintf(rundir_env, sizeof rundir_env, "CLOSEPOLICY_RUNDIR=%s", rundir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	DIR *d = opendir(rundir);
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	if (d != NULL)
		closedir(d);
	rmdir(rundir);
	unlink(policy);
	return 0;
}

static int group_setup(void **state)
{
	(void)state;
	return mkdtemp(dir) != NULL ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	return rmdir(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_written_then_used, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rewritten_in_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_cache, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rejected_not_cached, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsafe_rundir, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gone_policies_removed, setup, teardown),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
