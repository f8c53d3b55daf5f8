/* `closepolicy run` warns, with the reason, when the program cannot load a preloaded object:
 * statically linked, set-user-ID, file capabilities, 32-bit, Go, and #! scripts whose
 * interpreter is one of those;
 * and stays quiet for an ordinary dynamically linked program. */
#include "harness.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static char dir[] = "/tmp/cp-warn-XXXXXX";

/* Run `closepolicy run -- target`, return its stderr (static buffer) and exit status. */
static const char *run(const char *target, int *status)
{
	static char err[4096];
	char cmd[1024], errfile[128];
	snprintf(errfile, sizeof errfile, "%s/stderr", dir);
	snprintf(cmd, sizeof cmd, "%s/closepolicy run -- '%s' >/dev/null 2>%s", getenv("BUILD"), target, errfile);
	int st = system(cmd);
	*status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
	FILE *f = fopen(errfile, "r");
	size_t n = f ? fread(err, 1, sizeof err - 1, f) : 0;
	err[n] = '\0';
	if (f)
		fclose(f);
	return err;
}

static const char *prog(const char *name)
{
	static char path[512];
	snprintf(path, sizeof path, "%s/progs/%s", getenv("BUILD"), name);
	return path;
}

static void copy_file(const char *from, const char *to, mode_t mode)
{
	char cmd[1024];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s'", from, to);
	assert_int_equal(system(cmd), 0);
	assert_int_equal(chmod(to, mode), 0);
}

static void test_ordinary_program_is_quiet(void **state)
{
	(void)state;
	int st;
	const char *err = run("/bin/true", &st);
	assert_null(strstr(err, "warning"));
	assert_int_equal(st, 0);
}

static void test_static(void **state)
{
	(void)state;
	int st;
	const char *err = run(prog("static_hello"), &st);
	assert_non_null(strstr(err, "is statically linked"));
	assert_int_equal(st, 0); /* warned, then run all the same */
}

static void test_go(void **state)
{
	(void)state;
	int st;
	const char *err = run(prog("go_like"), &st);
	assert_non_null(strstr(err, "is a Go program"));
	assert_int_equal(st, 0);
}

static void test_setuid(void **state)
{
	(void)state;
	char path[128];
	int st;
	snprintf(path, sizeof path, "%s/suid", dir);
	copy_file("/bin/true", path, 04755);
	const char *err = run(path, &st);
	assert_non_null(strstr(err, "is set-user-ID"));
}

static void test_file_capabilities(void **state)
{
	(void)state;
	char path[128], cmd[256];
	int st;
	snprintf(path, sizeof path, "%s/capable", dir);
	copy_file("/bin/true", path, 0755);
	snprintf(cmd, sizeof cmd, "setcap cap_net_bind_service+ep '%s'", path);
	if (system(cmd) != 0)
		fail_msg("setcap failed: install libcap2-bin (.ci/run does) and run as root");
	const char *err = run(path, &st);
	assert_non_null(strstr(err, "has file capabilities"));
}

static void test_32_bit(void **state)
{
	(void)state;
	char path[128];
	int st;
	snprintf(path, sizeof path, "%s/elf32", dir);
	FILE *f = fopen(path, "w");
	/* an ELF header of class 32 is all the check reads (the exec then fails; execvp hands an
	 * unrunnable file to /bin/sh, so the status is the shell's) */
	unsigned char header[64] = {0x7f, 'E', 'L', 'F', 1, 1, 1};
	fwrite(header, 1, sizeof header, f);
	fclose(f);
	chmod(path, 0755);
	const char *err = run(path, &st);
	assert_non_null(strstr(err, "is a 32-bit program"));
	assert_true(st != 0);
}

static void test_script_with_static_interpreter(void **state)
{
	(void)state;
	char path[128];
	int st;
	snprintf(path, sizeof path, "%s/script", dir);
	FILE *f = fopen(path, "w");
	fprintf(f, "#!%s\n", prog("static_hello"));
	fclose(f);
	chmod(path, 0755);
	const char *err = run(path, &st);
	assert_non_null(strstr(err, "static_hello is statically linked"));
}

int main(void)
{
	if (!mkdtemp(dir))
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ordinary_program_is_quiet),
		cmocka_unit_test(test_static),
		cmocka_unit_test(test_go),
		cmocka_unit_test(test_setuid),
		cmocka_unit_test(test_file_capabilities),
		cmocka_unit_test(test_32_bit),
		cmocka_unit_test(test_script_with_static_interpreter),
	};
	int rc = cmocka_run_group_tests_name("run warnings", tests, NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	if (system(cmd) != 0)
		rc = 1;
	return rc;
}
