/* closepolicy — reading the counters files (see ctrfile.h). */
#include "cli/ctrfile.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim/rundir.h"

#define TERMINATE(field) ((field)[sizeof(field) - 1] = '\0')

int cp_ctrfile_parse(const void *bytes, size_t len, struct cp_ctr_file *out, char *why, size_t size)
{
	const struct cp_ctr_file *f = bytes;
	if (len < offsetof(struct cp_ctr_file, version) + sizeof f->version) {
		snprintf(why, size, "too short for a counters file (%zu bytes)", len);
		return -1;
	}
	if (f->magic != CP_CTR_MAGIC) {
		snprintf(why, size, "not a closepolicy counters file (bad magic)");
		return -1;
	}
	if (f->version != CP_CTR_VERSION) {
		snprintf(why, size, "counters file version %u: this closepolicy reads version %u",
			 f->version, CP_CTR_VERSION);
		return -1;
	}
	if (len < sizeof *f) {
		snprintf(why, size, "truncated counters file (%zu of %zu bytes)", len, sizeof *f);
		return -1;
	}
	if (f->header_size != offsetof(struct cp_ctr_file, closes) || f->file_size != sizeof *f ||
	    f->n_rules != CP_CTR_RULES || f->n_hist != CP_CTR_HIST) {
		snprintf(why, size, "counters file with sizes this closepolicy does not know");
		return -1;
	}
	if (f->accessible != 1) {
		snprintf(why, size, "counters file not ready yet");
		return -1;
	}
	memcpy(out, f, sizeof *out);
	TERMINATE(out->program);
	TERMINATE(out->policy);
	TERMINATE(out->last_error);
	TERMINATE(out->req_path);
	if (out->rules_used > CP_CTR_RULES)
		out->rules_used = CP_CTR_RULES;
	for (unsigned i = 0; i < CP_CTR_RULES; i++) {
		struct cp_ctr_rule *r = &out->rules[i];
		TERMINATE(r->name);
		if (i >= out->rules_used || r->state != 2)
			memset(r, 0, sizeof *r); /* a slot being named: its counts are not yet anyone's */
	}
	return 0;
}

/* The file's bytes, read twice at most more while its policy section is being rewritten. */
int cp_ctrfile_read(const char *dir, pid_t pid, struct cp_ctr_file *out, char *why, size_t size)
{
	char path[600];
	if (!cp_rundir_file(path, sizeof path, dir, pid, "")) {
		snprintf(why, size, "path too long");
		errno = ENAMETOOLONG;
		return -1;
	}
	int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	if (fd < 0) {
		int err = errno;
		snprintf(why, size, "no counters file (%s): not a process under the shim, or it has "
				    "made no TCP socket yet", err == ENOENT ? path : strerror(err));
		errno = err;
		return -1;
	}
	struct stat st;
	int ret = -1;
	static union {
		struct cp_ctr_file f;
		char bytes[sizeof(struct cp_ctr_file) + 1];
	} raw;
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, size, "%s: not a regular file", path);
		errno = EINVAL;
	} else if (st.st_uid != geteuid() && geteuid() != 0) {
		snprintf(why, size, "%s belongs to another user", path);
		errno = EACCES;
	} else if (!cp_ctrfile_live(pid, (unsigned long)st.st_ino)) {
		snprintf(why, size, "process %d has exited (or no longer runs under the shim)", (int)pid);
		unlink(path);
		errno = ESRCH;
	} else {
		for (int attempt = 0; attempt < 3; attempt++) {
			ssize_t n = pread(fd, raw.bytes, sizeof raw.bytes, 0);
			if (n < 0) {
				snprintf(why, size, "%s: read: %s", path, strerror(errno));
				break;
			}
			ret = cp_ctrfile_parse(raw.bytes, (size_t)n, out, why, size);
			if (ret < 0 || (out->policy_seq & 1) == 0)
				break;
		}
		if (ret < 0)
			errno = EINVAL;
	}
	close(fd);
	return ret;
}

/* A /proc file's text, NUL-terminated (as much as buf holds). */
static bool proc_read(const char *path, char *buf, size_t size)
{
	FILE *f = fopen(path, "re");
	if (f == NULL)
		return false;
	size_t n = fread(buf, 1, size - 1, f);
	buf[n] = '\0';
	fclose(f);
	return n > 0;
}

uint64_t cp_ctrfile_started_ns(pid_t pid)
{
	char path[64], text[4096];
	snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
	if (!proc_read(path, text, sizeof text))
		return 0;
	/* the 22nd field, start time in clock ticks after boot; the 2nd (the name) may hold spaces
	 * and parentheses, so count from the last ')' (field 2's end) */
	const char *at = strrchr(text, ')');
	unsigned long long ticks = 0;
	if (at == NULL || sscanf(at + 1, " %*c %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %*s %llu",
				 &ticks) != 1) /* state, 18 fields, start time */
		return 0;
	long hz = sysconf(_SC_CLK_TCK);
	const char *b;
	unsigned long long boot;
	if (hz <= 0 || !proc_read("/proc/stat", text, sizeof text) || (b = strstr(text, "\nbtime ")) == NULL ||
	    sscanf(b, "\nbtime %llu", &boot) != 1)
		return 0;
	return boot * 1000000000ull + ticks * (1000000000ull / (unsigned long long)hz);
}

bool cp_ctrfile_live(pid_t pid, unsigned long ino)
{
	char path[64], line[1024];
	snprintf(path, sizeof path, "/proc/%d/maps", (int)pid);
	FILE *maps = fopen(path, "re");
	if (maps == NULL) /* not allowed to look: alive is all that can be known */
		return errno != ENOENT && (kill(pid, 0) == 0 || errno == EPERM);
	bool found = false;
	while (!found && fgets(line, sizeof line, maps) != NULL) {
		unsigned long inode = 0;
		if (sscanf(line, "%*s %*s %*s %*s %lu", &inode) == 1 && inode == ino)
			found = true;
	}
	fclose(maps);
	return found;
}

int cp_ctrfile_dirs(struct cp_rundirs *d)
{
	d->n = 0;
	int ret = cp_rundir(d->dir[0], sizeof d->dir[0], false);
	int err = errno;
	if (ret == 0)
		d->n = 1;
	if (geteuid() == 0 && secure_getenv("CLOSEPOLICY_RUNDIR") == NULL) {
		DIR *shm = opendir("/dev/shm");
		for (struct dirent *e; shm != NULL && (e = readdir(shm)) != NULL && d->n < CP_RUNDIRS_MAX;) {
			char *end;
			if (strncmp(e->d_name, "closepolicy-", 12) != 0)
				continue;
			unsigned long uid = strtoul(e->d_name + 12, &end, 10);
			struct stat st;
			if (*end != '\0' || fstatat(dirfd(shm), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 ||
			    !S_ISDIR(st.st_mode) || (st.st_mode & 022) != 0 || st.st_uid != uid)
				continue;
			snprintf(d->dir[d->n], sizeof d->dir[d->n], "/dev/shm/%s", e->d_name);
			bool seen = false;
			for (size_t i = 0; i < d->n; i++)
				seen |= strcmp(d->dir[i], d->dir[d->n]) == 0;
			if (!seen)
				d->n++;
		}
		if (shm != NULL)
			closedir(shm);
	}
	if (d->n == 0) {
		errno = err;
		return ret < 0 ? -1 : 0;
	}
	return 0;
}

const char *cp_ctrfile_dir_of(const struct cp_rundirs *d, pid_t pid)
{
	char path[600];
	for (size_t i = 0; i < d->n; i++)
		if (cp_rundir_file(path, sizeof path, d->dir[i], pid, "") && access(path, F_OK) == 0)
			return d->dir[i];
	return d->dir[0];
}

static int by_pid(const void *a, const void *b)
{
	pid_t x = *(const pid_t *)a, y = *(const pid_t *)b;
	return (x > y) - (x < y);
}

size_t cp_ctrfile_list(const char *dir, pid_t *pids, size_t max)
{
	DIR *d = opendir(dir);
	size_t n = 0;
	if (d == NULL)
		return 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);
		if (e->d_name[0] < '1' || e->d_name[0] > '9' || pid <= 0 || pid > INT32_MAX ||
		    (*end != '\0' && strcmp(end, ".tmp") != 0))
			continue;
		struct stat st;
		if (fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0 || !S_ISREG(st.st_mode) ||
		    (st.st_uid != geteuid() && geteuid() != 0))
			continue;
		bool live = cp_ctrfile_live((pid_t)pid, (unsigned long)st.st_ino);
		if (*end != '\0') { /* being made: removed only when its maker is gone */
			if (kill((pid_t)pid, 0) < 0 && errno == ESRCH)
				unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (!live) {
			unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (n < max)
			pids[n++] = (pid_t)pid;
	}
	closedir(d);
	qsort(pids, n, sizeof *pids, by_pid);
	return n;
}

static void add_rule(struct cp_ctr_file *a, const struct cp_ctr_rule *r)
{
	unsigned i;
	for (i = 0; i < a->rules_used; i++)
		if (strcmp(a->rules[i].name, r->name) == 0)
			break;
	if (i == a->rules_used) {
		if (i == CP_CTR_RULES)
			i = CP_CTR_RULES - 1; /* full: the last slot takes the rest */
		else
			a->rules_used++;
		if (a->rules[i].state != 2) {
			a->rules[i].state = 2;
			memcpy(a->rules[i].name, r->name, sizeof r->name);
		}
	}
	for (unsigned k = 0; k < CP_CTR_ACTIONS; k++)
		a->rules[i].closes[k] += r->closes[k];
	a->rules[i].risk += r->risk;
}

void cp_ctrfile_add(struct cp_ctr_file *a, const struct cp_ctr_file *b)
{
	/* every counter from closes to rules_used is a 64-bit sum (draining_high: the sum of each
	 * process's high-water mark, an upper bound of theirs together) */
	uint64_t *to = a->closes;
	const uint64_t *from = b->closes;
	size_t n = (offsetof(struct cp_ctr_file, rules_used) - offsetof(struct cp_ctr_file, closes)) /
		   sizeof(uint64_t);
	for (size_t i = 0; i < n; i++)
		to[i] += from[i];
	a->rejected += b->rejected;
	if (b->generation > a->generation)
		a->generation = b->generation;
	for (unsigned i = 0; i < b->rules_used && i < CP_CTR_RULES; i++)
		if (b->rules[i].state == 2)
			add_rule(a, &b->rules[i]);
}

unsigned long long cp_ctrfile_drain_pct(const struct cp_ctr_file *f, double q)
{
	long double total = 0, seen = 0;
	for (unsigned i = 0; i < CP_CTR_HIST; i++)
		total += f->drain_ms[i];
	if (total == 0)
		return 0;
	for (unsigned i = 0; i < CP_CTR_HIST; i++) {
		seen += f->drain_ms[i];
		if (seen >= total * q && f->drain_ms[i] > 0)
			return i == CP_CTR_HIST - 1 ? UINT64_MAX : 1ull << i;
	}
	return UINT64_MAX;
}
