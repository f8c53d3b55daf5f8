/* Helpers of the live-view tests (itest_stat, itest_reload): a run directory of the test's own,
 * the closepolicy command run against it, a depth-aware reader of the JSON objects `stat --json`
 * prints, and a strict parser of the Prometheus text exposition format. */
#ifndef CLOSEPOLICY_STAT_HELPERS_H
#define CLOSEPOLICY_STAT_HELPERS_H

#include "harness.h"

struct h_rundir {
	char dir[64];
	char var[128];
	const char *env[2]; /* { "CLOSEPOLICY_RUNDIR=dir", NULL }: for h_spawn */
};
void h_rundir_make(struct h_rundir *rd);
void h_rundir_remove(struct h_rundir *rd);
/* `closepolicy ARGS 2>&1` with the run directory: its output in out; the wait status. */
int h_cp(const struct h_rundir *rd, const char *args, char *out, size_t size);

/* Close with SO_LINGER {1, 0}: the peer gets RST. */
void h_close_with_rst(int fd);
/* Wait (inotify) until the log has n lines containing a and b (b may be NULL): the last such
 * line (malloc'd), or NULL at the deadline. */
char *h_log_wait_count(const struct h_proc *p, int n, int timeout_ms, const char *a, const char *b);

/* The value of key in the JSON object starting at obj (keys of nested objects are not seen);
 * fails the test when absent. */
const char *h_json_get(const char *obj, const char *key);
long long h_json_num(const char *obj, const char *key);
const char *h_json_str(const char *obj, const char *key); /* static storage */

/* Parse Prometheus text; fails the test at the first line that breaks the format: a sample of
 * a family without # TYPE, a family declared twice, a bad name, label or value, a repeated
 * series, histogram buckets that shrink or whose +Inf differs from _count. */
struct h_prom_check {
	int families, samples;
};
struct h_prom_check h_prom_parse(const char *text);

#endif
