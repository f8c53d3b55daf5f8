/* closepolicy run: check the policy, preload the object, exec COMMAND as itself. */
#include "cli/cli.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Where the object is, relative to this command's directory: the installed layout of
 * closepolicy(1) FILES (PREFIX/bin and PREFIX/lib/closepolicy), then the build tree (both in
 * build/), then PREFIX/lib, where `make install` used to put it. */
static const char *const object_places[] = {
	"/../lib/closepolicy/libclosepolicy.so",
	"/libclosepolicy.so",
	"/../lib/libclosepolicy.so",
};

static int find_object(char *out, size_t size)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
	if (n <= 0)
		return -1;
	self[n] = '\0';
	char *slash = strrchr(self, '/');
	*slash = '\0';
	for (size_t i = 0; i < sizeof object_places / sizeof object_places[0]; i++) {
		char candidate[PATH_MAX + 48];
		snprintf(candidate, sizeof candidate, "%s%s", self, object_places[i]);
		if (access(candidate, R_OK) == 0 && realpath(candidate, out) && strlen(out) < size)
			return 0;
	}
	return -1;
}

static int set_env(const char *name, const char *value)
{
	if (setenv(name, value, 1) == 0)
		return 0;
	fprintf(stderr, "closepolicy run: setenv %s: %s\n", name, strerror(errno));
	return -1;
}

static int export_log_target(const char *target)
{
	char abs[PATH_MAX];
	if (strcmp(target, "stderr") == 0 || strcmp(target, "syslog") == 0 || target[0] == '/')
		return set_env("CLOSEPOLICY_LOG", target);
	/* A relative path is relative to where the user typed it, not to COMMAND's later cwd. */
	if (!getcwd(abs, sizeof abs) || strlen(abs) + strlen(target) + 2 > sizeof abs) {
		fprintf(stderr, "closepolicy run: cannot make the log path %s absolute\n", target);
		return -1;
	}
	strcat(abs, "/");
	strcat(abs, target);
	return set_env("CLOSEPOLICY_LOG", abs);
}

static int export_policy(const char *path)
{
	struct cp_diag diag;
	char abs[PATH_MAX];
	struct cp_policy *p = cp_policy_load_file(path, &diag);
	if (!p) {
		cp_diag_print(&diag, stderr);
		fprintf(stderr, "closepolicy run: %s is not a valid policy; COMMAND not started\n", path);
		return -1;
	}
	cp_policy_free(p);
	if (!realpath(path, abs)) {
		fprintf(stderr, "closepolicy run: realpath %s: %s\n", path, strerror(errno));
		return -1;
	}
	return set_env("CLOSEPOLICY_FILE", abs);
}

static int export_preload(void)
{
	char object[PATH_MAX];
	if (find_object(object, sizeof object) != 0) {
		fprintf(stderr, "closepolicy run: libclosepolicy.so not found in ../lib/closepolicy, "
				"next to this command, or in ../lib\n");
		return -1;
	}
	const char *old = getenv("LD_PRELOAD");
	if (!old || !*old)
		return set_env("LD_PRELOAD", object);
	size_t len = strlen(object) + strlen(old) + 2;
	char *both = malloc(len);
	if (!both)
		return -1;
	snprintf(both, len, "%s %s", object, old);
	int rc = set_env("LD_PRELOAD", both);
	free(both);
	return rc;
}

int cp_cli_run(int argc, char **argv)
{
	const char *policy = NULL, *log = NULL;
	bool json = false, dry_run = false;
	int i;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--") == 0) {
			i++;
			break;
		}
		if (a[0] != '-')
			break;
		if ((strcmp(a, "-p") == 0 || strcmp(a, "--policy") == 0) && i + 1 < argc)
			policy = argv[++i];
		else if ((strcmp(a, "-l") == 0 || strcmp(a, "--log") == 0) && i + 1 < argc)
			log = argv[++i];
		else if (strcmp(a, "--json") == 0)
			json = true;
		else if (strcmp(a, "--dry-run") == 0)
			dry_run = true;
		else {
			fprintf(stderr, "closepolicy run: unknown or incomplete option %s\n"
					"usage: closepolicy run [-p POLICY] [-l TARGET] [--json] "
					"[--dry-run] -- COMMAND [ARG...]\n", a);
			return 2;
		}
	}
	if (i >= argc) {
		fputs("closepolicy run: no COMMAND given\nusage: closepolicy run [-p POLICY] "
		      "[-l TARGET] [--json] [--dry-run] -- COMMAND [ARG...]\n", stderr);
		return 2;
	}
	if ((policy && export_policy(policy) != 0) || (log && export_log_target(log) != 0) ||
	    (json && set_env("CLOSEPOLICY_FORMAT", "json") != 0) ||
	    (dry_run && set_env("CLOSEPOLICY_DRY_RUN", "1") != 0) || export_preload() != 0)
		return 2;
	cp_cli_warn_unpreloadable(argv[i]);
	/* COMMAND keeps this PID: it says `policy loaded` at info, the processes it starts at debug */
	char pid[24];
	snprintf(pid, sizeof pid, "%d", (int)getpid());
	if (set_env("CLOSEPOLICY_ANNOUNCE", pid) != 0)
		return 2;
	/* every process of the tree answers `closepolicy reload` from its first TCP socket on (a
	 * thread each: the C library's multi-threaded paths, a few per cent of a write); under a
	 * bare LD_PRELOAD only those with a second thread anyway do, unless this is set */
	if (getenv("CLOSEPOLICY_RELOAD") == NULL && set_env("CLOSEPOLICY_RELOAD", "1") != 0)
		return 2;
	execvp(argv[i], argv + i);
	int err = errno;
	fprintf(stderr, "closepolicy run: %s: %s\n", argv[i], strerror(err));
	return err == ENOENT ? 127 : 126;
}
