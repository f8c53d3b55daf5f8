/* closepolicy — reading the processes' counters files (stat, top, reload).
 * A file is trusted for nothing: its size, magic, version, every size in its header and the
 * `accessible` flag are checked, every string is cut at its field's end, and what is read is a
 * copy, so a file rewritten while it is read cannot make the reader misbehave. */
#ifndef CLOSEPOLICY_CTRFILE_H
#define CLOSEPOLICY_CTRFILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>

#include "shim/counters_file.h"

/* Check and copy a file's bytes into out (strings terminated, rule slots cleaned).
 * 0, or -1 with the reason in why. Pure: the fuzzer drives it. */
int cp_ctrfile_parse(const void *bytes, size_t len, struct cp_ctr_file *out, char *why, size_t size);

/* The counters of one process, read from dir/PID: 0; -1 with why (and errno ENOENT when there
 * is no file, EACCES when it belongs to another user, ESRCH when the process is gone). */
int cp_ctrfile_read(const char *dir, pid_t pid, struct cp_ctr_file *out, char *why, size_t size);

/* The PIDs with a counters file in dir, live processes only; the files of processes that are
 * gone (or whose image no longer has the file mapped: it exec'd without the shim) are removed.
 * Returns the count (at most max), sorted. */
size_t cp_ctrfile_list(const char *dir, pid_t *pids, size_t max);

/* The directories to look in: the caller's run directory (rundir.h); for root without
 * CLOSEPOLICY_RUNDIR also every other user's /dev/shm/closepolicy-UID (the workers of a server
 * that gives up root, such as nginx's, make theirs there). A directory writable by others, or
 * not owned by the user its name says, is skipped. */
#define CP_RUNDIRS_MAX 32
struct cp_rundirs {
	size_t n;
	char dir[CP_RUNDIRS_MAX][400];
};
/* 0; -1 with errno when the caller's own directory is unusable (ENOENT: none made yet). */
int cp_ctrfile_dirs(struct cp_rundirs *d);
/* The directory holding pid's file (the first, when none does). */
const char *cp_ctrfile_dir_of(const struct cp_rundirs *d, pid_t pid);

/* Whether pid maps the file with inode ino (a live process under the shim that made it). */
bool cp_ctrfile_live(pid_t pid, unsigned long ino);

/* When pid started (CLOCK_REALTIME, ns, to the kernel's clock tick): the load time of its
 * start-up policy, which the shim does not write (loaded_ns 0); 0 when /proc does not say. */
uint64_t cp_ctrfile_started_ns(pid_t pid);

/* Sum b into a (rule slots merged by name); for --sum and for top's totals. */
void cp_ctrfile_add(struct cp_ctr_file *a, const struct cp_ctr_file *b);

/* Percentile q (0..1) of the drain durations, in ms: the upper bound of the bucket that holds it
 * (0 when there are none; UINT64_MAX for the last, open bucket). */
unsigned long long cp_ctrfile_drain_pct(const struct cp_ctr_file *f, double q);

/* One process, or (--sum) every process of one program. */
struct cp_stat_entry {
	struct cp_ctr_file f;
	pid_t pids[64];
	size_t n_pids; /* processes summed (pids holds the first 64) */
};
/* Read the processes named (PIDs as text; none = every live one in dir) into *out (malloc'd),
 * summed by program with `summed`; *missing counts the named ones that could not be read (each
 * said on stderr). Returns the number of entries. */
enum cp_stat_format { CP_STAT_TEXT, CP_STAT_JSON, CP_STAT_PROMETHEUS };
void cp_stat_print(FILE *out, enum cp_stat_format fmt, const struct cp_stat_entry *es, size_t n, bool summed);
size_t cp_stat_gather(const struct cp_rundirs *dirs, char **names, int n_names, bool summed,
		      struct cp_stat_entry **out, int *missing);

#endif
