/* closepolicy — where the counters files live (see rundir.h). */
#include "shim/rundir.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <unistd.h>

static bool append(char *buf, size_t size, size_t *len, const char *s)
{
	size_t n = strlen(s);
	if (*len + n + 1 > size)
		return false;
	memcpy(buf + *len, s, n + 1);
	*len += n;
	return true;
}

static bool append_num(char *buf, size_t size, size_t *len, unsigned long v)
{
	char tmp[24];
	size_t i = sizeof tmp;
	tmp[--i] = '\0';
	do
		tmp[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	return append(buf, size, len, tmp + i);
}

bool cp_rundir_file(char *buf, size_t size, const char *dir, long n, const char *suffix)
{
	size_t len = 0;
	return append(buf, size, &len, dir) && append(buf, size, &len, "/") &&
	       append_num(buf, size, &len, (unsigned long)n) && append(buf, size, &len, suffix);
}

/* A directory only its owner (the caller, or root) can write to. */
static int check(const char *dir, uid_t uid)
{
	struct stat st;
	if (lstat(dir, &st) < 0)
		return -1;
	if (!S_ISDIR(st.st_mode)) {
		errno = ENOTDIR;
		return -1;
	}
	if ((st.st_uid != uid && st.st_uid != 0) || (st.st_mode & 022) != 0) {
		errno = EPERM;
		return -1;
	}
	return 0;
}

int cp_rundir(char *buf, size_t size, bool create)
{
	size_t len = 0;
	const char *env = secure_getenv("CLOSEPOLICY_RUNDIR");
	const char *xdg = secure_getenv("XDG_RUNTIME_DIR");
	/* To read, the user the process was started as (the aux vector: no system call, in every
	 * process that reads the policy cache); only its or root's directory is trusted all the
	 * same. To create, the user it is now. */
	uid_t uid = create ? geteuid() : (uid_t)getauxval(AT_EUID);
	bool ok;
	if (env != NULL && env[0] == '/')
		ok = append(buf, size, &len, env);
	else if (xdg != NULL && xdg[0] == '/')
		ok = append(buf, size, &len, xdg) && append(buf, size, &len, "/closepolicy");
	else
		ok = append(buf, size, &len, "/dev/shm/closepolicy-") &&
		     append_num(buf, size, &len, (unsigned long)uid);
	if (!ok) {
		errno = ENAMETOOLONG;
		return -1;
	}
	if (create && mkdir(buf, 0700) < 0 && errno != EEXIST)
		return -1;
	return check(buf, uid);
}
