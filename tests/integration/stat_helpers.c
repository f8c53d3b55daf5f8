/* Helpers of the live-view tests (see stat_helpers.h). */
#include "stat_helpers.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

void h_rundir_make(struct h_rundir *rd)
{
	strcpy(rd->dir, "/tmp/cp-run-XXXXXX");
	if (mkdtemp(rd->dir) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
	snprintf(rd->var, sizeof rd->var, "CLOSEPOLICY_RUNDIR=%s", rd->dir);
	rd->env[0] = rd->var;
	rd->env[1] = NULL;
}

void h_rundir_remove(struct h_rundir *rd)
{
	DIR *d = opendir(rd->dir);
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.')
			unlinkat(dirfd(d), e->d_name, 0);
	if (d != NULL)
		closedir(d);
	rmdir(rd->dir);
}

int h_cp(const struct h_rundir *rd, const char *args, char *out, size_t size)
{
	char script[1024];
	snprintf(script, sizeof script, "exec '%s' %s 2>&1", h_build_path("closepolicy"), args);
	return h_run((const char *[]){ "/bin/sh", "-c", script, NULL }, rd->env, out, size, 10000);
}

void h_close_with_rst(int fd)
{
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

static int count_lines(const struct h_proc *p, const char *a, const char *b, char **last)
{
	char *log = h_log(p);
	int n = 0;
	for (char *line = log, *next; line != NULL && *line; line = next) {
		next = strchr(line, '\n');
		if (next != NULL)
			*next++ = '\0';
		if (strstr(line, a) && (b == NULL || strstr(line, b))) {
			n++;
			free(*last);
			*last = strdup(line);
		}
	}
	free(log);
	return n;
}

char *h_log_wait_count(const struct h_proc *p, int n, int timeout_ms, const char *a, const char *b)
{
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (in < 0 || inotify_add_watch(in, p->log, IN_MODIFY) < 0)
		fail_msg("inotify on %s: %s", p->log, strerror(errno));
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	char *last = NULL;
	for (;;) {
		if (count_lines(p, a, b, &last) >= n)
			break;
		struct timespec t;
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0) {
			free(last);
			last = NULL;
			break;
		}
		struct pollfd pf = { .fd = in, .events = POLLIN };
		if (poll(&pf, 1, (int)left) > 0) {
			char buf[4096];
			while (read(in, buf, sizeof buf) > 0)
				;
		}
	}
	close(in);
	return last;
}

/* ---- JSON ---- */

static const char *skip_string(const char *s)
{
	for (s++; *s && *s != '"'; s++)
		if (*s == '\\' && s[1])
			s++;
	if (*s != '"')
		fail_msg("unterminated JSON string");
	return s + 1;
}

const char *h_json_get(const char *obj, const char *key)
{
	if (obj == NULL || *obj != '{')
		fail_msg("not a JSON object where \"%s\" was looked for: %.60s", key, obj ? obj : "(null)");
	int depth = 0;
	size_t klen = strlen(key);
	for (const char *s = obj; *s;) {
		if (*s == '"') {
			const char *end = skip_string(s);
			if (depth == 1 && (size_t)(end - s) == klen + 2 && strncmp(s + 1, key, klen) == 0 &&
			    *end == ':')
				return end + 1;
			s = end;
			continue;
		}
		if (*s == '{' || *s == '[')
			depth++;
		else if (*s == '}' || *s == ']') {
			if (--depth == 0)
				break;
		}
		s++;
	}
	fail_msg("no key \"%s\" in %.200s", key, obj);
	return NULL;
}

long long h_json_num(const char *obj, const char *key)
{
	const char *v = h_json_get(obj, key);
	char *end;
	long long n = strtoll(v, &end, 10);
	if (end == v || (*end != ',' && *end != '}' && *end != '.'))
		fail_msg("\"%s\" is not a number: %.40s", key, v);
	return n;
}

const char *h_json_str(const char *obj, const char *key)
{
	static char buf[1024];
	const char *v = h_json_get(obj, key);
	if (*v != '"')
		fail_msg("\"%s\" is not a string: %.40s", key, v);
	size_t n = 0;
	for (v++; *v != '"' && n + 1 < sizeof buf; v++)
		buf[n++] = *v == '\\' ? *++v : *v;
	buf[n] = '\0';
	return buf;
}

/* ---- Prometheus text format ---- */

#define MAX_FAMILIES 64
#define MAX_SERIES 4096

static bool name_ok(const char *s, size_t n)
{
	if (n == 0 || !(isalpha((unsigned char)s[0]) || s[0] == '_' || s[0] == ':'))
		return false;
	for (size_t i = 1; i < n; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '_' || s[i] == ':'))
			return false;
	return true;
}

struct prom_state {
	char families[MAX_FAMILIES][96], types[MAX_FAMILIES][16];
	int n_families;
	char *series[MAX_SERIES];
	int n_series;
	/* the histogram being read: the last bucket value per series prefix */
	char bucket_key[600];
	double last_bucket;
};

static int family_of(struct prom_state *st, const char *name, size_t n, const char **suffix)
{
	*suffix = "";
	for (int i = 0; i < st->n_families; i++) {
		size_t fl = strlen(st->families[i]);
		if (n == fl && strncmp(name, st->families[i], n) == 0)
			return i;
		if (strcmp(st->types[i], "histogram") == 0 && n > fl && strncmp(name, st->families[i], fl) == 0) {
			const char *rest = name + fl;
			size_t rl = n - fl;
			if ((rl == 7 && strncmp(rest, "_bucket", 7) == 0) || (rl == 4 && strncmp(rest, "_sum", 4) == 0) ||
			    (rl == 6 && strncmp(rest, "_count", 6) == 0)) {
				*suffix = rl == 7 ? "_bucket" : rl == 4 ? "_sum" : "_count";
				return i;
			}
		}
	}
	return -1;
}

static void sample(struct prom_state *st, const char *line, struct h_prom_check *c)
{
	const char *s = line;
	while (*s && *s != '{' && *s != ' ')
		s++;
	size_t nlen = (size_t)(s - line);
	if (!name_ok(line, nlen))
		fail_msg("bad metric name: %s", line);
	const char *suffix;
	int fam = family_of(st, line, nlen, &suffix);
	if (fam < 0)
		fail_msg("sample of a family with no # TYPE before it: %s", line);
	char le[256] = "";
	char without_le[512];
	size_t wl = 0;
	if (*s == '{') {
		s++;
		while (*s != '}') {
			const char *k = s;
			while (*s && *s != '=')
				s++;
			if (!name_ok(k, (size_t)(s - k)) || s[0] != '=' || s[1] != '"')
				fail_msg("bad label in: %s", line);
			bool is_le = (size_t)(s - k) == 2 && strncmp(k, "le", 2) == 0;
			const char *v = s + 2;
			char val[256];
			size_t vl = 0;
			for (s = v; *s != '"'; s++) {
				if (*s == '\0' || *s == '\n')
					fail_msg("unterminated label value in: %s", line);
				if (*s == '\\') {
					s++;
					if (*s != '\\' && *s != '"' && *s != 'n')
						fail_msg("bad escape in label value: %s", line);
				}
				if (vl + 1 < sizeof val)
					val[vl++] = *s;
			}
			val[vl] = '\0';
			if (is_le)
				snprintf(le, sizeof le, "%s", val);
			else
				wl += (size_t)snprintf(without_le + wl, sizeof without_le - wl, "%.*s=%s,",
						       (int)(v - 2 - k), k, val);
			s++;
			if (*s == ',')
				s++;
			else if (*s != '}')
				fail_msg("labels not separated by commas: %s", line);
		}
		s++;
	}
	without_le[wl] = '\0';
	if (*s != ' ')
		fail_msg("no space before the value: %s", line);
	s++;
	char *end;
	double value = strtod(s, &end);
	if (end == s || (*end != '\0' && *end != ' '))
		fail_msg("bad value: %s", line);
	if (strcmp(st->types[fam], "counter") == 0 && value < 0)
		fail_msg("negative counter: %s", line);
	/* a series appears once */
	if (st->n_series >= MAX_SERIES)
		fail_msg("too many series");
	char *id = NULL;
	if (asprintf(&id, "%.*s{%s,le=%s}", (int)nlen, line, without_le, le) < 0)
		fail_msg("asprintf");
	for (int i = 0; i < st->n_series; i++)
		if (strcmp(st->series[i], id) == 0)
			fail_msg("series repeated: %s", line);
	st->series[st->n_series++] = id;
	/* histogram: buckets only grow, +Inf is last and equals _count */
	char key[600];
	snprintf(key, sizeof key, "%s{%s}", st->families[fam], without_le);
	if (strcmp(suffix, "_bucket") == 0) {
		if (le[0] == '\0')
			fail_msg("bucket without le: %s", line);
		if (strcmp(key, st->bucket_key) != 0) {
			snprintf(st->bucket_key, sizeof st->bucket_key, "%s", key);
			st->last_bucket = 0;
		}
		if (value < st->last_bucket)
			fail_msg("histogram bucket smaller than the one before: %s", line);
		st->last_bucket = value;
		if (strcmp(le, "+Inf") == 0)
			st->bucket_key[0] = '\0', st->last_bucket = -value - 1; /* remembered for _count */
	} else if (strcmp(suffix, "_count") == 0) {
		if (st->last_bucket != -value - 1)
			fail_msg("histogram _count differs from its +Inf bucket (or no +Inf bucket): %s", line);
	}
	c->samples++;
}

struct h_prom_check h_prom_parse(const char *text)
{
	struct h_prom_check c = { 0, 0 };
	struct prom_state *st = calloc(1, sizeof *st);
	char *copy = strdup(text);
	if (text[0] == '\0' || text[strlen(text) - 1] != '\n')
		fail_msg("the exposition must end with a newline");
	for (char *line = copy, *next; line && *line; line = next) {
		next = strchr(line, '\n');
		*next++ = '\0';
		if (strncmp(line, "# HELP ", 7) == 0) {
			continue;
		} else if (strncmp(line, "# TYPE ", 7) == 0) {
			char name[96], type[16];
			if (sscanf(line + 7, "%95s %15s", name, type) != 2 || !name_ok(name, strlen(name)))
				fail_msg("bad TYPE line: %s", line);
			if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram") &&
			    strcmp(type, "summary") && strcmp(type, "untyped"))
				fail_msg("unknown type: %s", line);
			for (int i = 0; i < st->n_families; i++)
				if (strcmp(st->families[i], name) == 0)
					fail_msg("family declared twice: %s", line);
			if (st->n_families >= MAX_FAMILIES)
				fail_msg("too many families");
			strcpy(st->families[st->n_families], name);
			strcpy(st->types[st->n_families++], type);
			c.families++;
		} else if (line[0] == '#') {
			continue;
		} else if (line[0] == '\0') {
			fail_msg("empty line in the exposition");
		} else {
			sample(st, line, &c);
		}
	}
	for (int i = 0; i < st->n_series; i++)
		free(st->series[i]);
	free(st);
	free(copy);
	return c;
}
