/* closepolicy top — the counters of live processes as rates, refreshed every second, in 80
 * columns: one line per process, one under it per rule. In a terminal: q quits, c r d e p sort
 * (closes, risky closes, drains in progress, EPIPE+SIGPIPE, PID). Without one (a pipe, a log),
 * one snapshot per interval; --once: a single one. */
#include "cli/cli.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "cli/ctrfile.h"
#include "shim/rundir.h"

enum sort_key { SORT_CLOSES, SORT_RISK, SORT_DRAINS, SORT_EPIPE, SORT_PID };

/* A process's rates over the last interval. */
struct row {
	const struct cp_stat_entry *now;
	double closes[CP_CTR_ACTIONS], risk, epipe, sigpipe, total;
	double rule_closes[CP_CTR_RULES][CP_CTR_ACTIONS];
	struct cp_ctr_file hist; /* drain durations of the interval */
};

static volatile sig_atomic_t stop;
static enum sort_key sort_key = SORT_CLOSES;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static const struct cp_stat_entry *find(const struct cp_stat_entry *es, size_t n, pid_t pid)
{
	for (size_t i = 0; i < n; i++)
		if (es[i].f.pid == pid)
			return &es[i];
	return NULL;
}

static double rate(uint64_t now, uint64_t before, double secs)
{
	return now >= before ? (double)(now - before) / secs : 0;
}

static const struct cp_ctr_rule *find_rule(const struct cp_ctr_file *f, const char *name)
{
	for (unsigned i = 0; f != NULL && i < f->rules_used; i++)
		if (strcmp(f->rules[i].name, name) == 0)
			return &f->rules[i];
	return NULL;
}

static void make_row(struct row *r, const struct cp_stat_entry *now, const struct cp_stat_entry *before,
		     double secs)
{
	static const struct cp_ctr_file zero;
	const struct cp_ctr_file *a = &now->f, *b = before ? &before->f : &zero;
	memset(r, 0, sizeof *r);
	r->now = now;
	for (unsigned k = 0; k < CP_CTR_ACTIONS; k++) {
		r->closes[k] = rate(a->closes[k], b->closes[k], secs);
		r->total += r->closes[k];
	}
	r->risk = rate(a->risk, b->risk, secs);
	for (unsigned k = 0; k < CP_CTR_CALLS; k++) {
		r->epipe += rate(a->epipe[k], b->epipe[k], secs);
		r->sigpipe += rate(a->sigpipe[k], b->sigpipe[k], secs);
	}
	for (unsigned i = 0; i < a->rules_used; i++) {
		const struct cp_ctr_rule *old = find_rule(before ? b : NULL, a->rules[i].name);
		for (unsigned k = 0; k < CP_CTR_ACTIONS; k++)
			r->rule_closes[i][k] = rate(a->rules[i].closes[k], old ? old->closes[k] : 0, secs);
	}
	for (unsigned i = 0; i < CP_CTR_HIST; i++)
		r->hist.drain_ms[i] = a->drain_ms[i] >= b->drain_ms[i] ? a->drain_ms[i] - b->drain_ms[i] : 0;
}

static int compare(const void *x, const void *y)
{
	const struct row *a = x, *b = y;
	double ka, kb;
	switch (sort_key) {
	case SORT_RISK: ka = a->risk, kb = b->risk; break;
	case SORT_DRAINS: ka = (double)a->now->f.draining, kb = (double)b->now->f.draining; break;
	case SORT_EPIPE: ka = a->epipe + a->sigpipe, kb = b->epipe + b->sigpipe; break;
	case SORT_PID: return (a->now->f.pid > b->now->f.pid) - (a->now->f.pid < b->now->f.pid);
	default: ka = a->total, kb = b->total; break;
	}
	if (ka != kb)
		return ka < kb ? 1 : -1;
	return (a->now->f.pid > b->now->f.pid) - (a->now->f.pid < b->now->f.pid);
}

/* A rate in at most `width` characters. */
static void put_rate(char *buf, size_t size, double v)
{
	if (v == 0)
		snprintf(buf, size, "0");
	else if (v < 100)
		snprintf(buf, size, "%.1f", v);
	else if (v < 100000)
		snprintf(buf, size, "%.0f", v);
	else
		snprintf(buf, size, "%.0fk", v / 1000);
}

static void put_ms(char *buf, size_t size, unsigned long long ms)
{
	if (ms == 0)
		snprintf(buf, size, "-");
	else if (ms == UINT64_MAX)
		snprintf(buf, size, "long");
	else if (ms < 100)
		snprintf(buf, size, "<%llums", ms);
	else if (ms < 10000)
		snprintf(buf, size, "<%.1fs", (double)ms / 1000);
	else
		snprintf(buf, size, "<%llus", (ms + 999) / 1000);
}

#define COLS "%-7.7s%-10.10s%6s%6s%7s%6s%7s%6s%8s%7s%5s%5s\n"
#define RULE_COLS "%-7.7s%-10.10s%6s%6s%7s%6s\n"

static void print_rows(FILE *out, struct row *rows, size_t n)
{
	time_t t = time(NULL);
	struct tm tm;
	char when[16] = "";
	if (localtime_r(&t, &tm) != NULL)
		strftime(when, sizeof when, "%H:%M:%S", &tm);
	static const char *const sorts[] = { "closes", "risk", "drains", "epipe", "pid" };
	fprintf(out, "closepolicy top %s  %zu process%s  per second  sort: %s  [q c r d e p]\n", when, n,
		n == 1 ? "" : "es", sorts[sort_key]);
	fprintf(out, COLS, "PID", "PROGRAM", "PASS", "GRACE", "LINGER", "RESET", "RISK/s", "DRAIN", "EPIPE/s",
		"SIGP/s", "P50", "P99");
	qsort(rows, n, sizeof *rows, compare);
	for (size_t i = 0; i < n; i++) {
		const struct row *r = &rows[i];
		const struct cp_ctr_file *f = &r->now->f;
		char pid[16], c[4][32], risk[32], drain[32], ep[32], sp[32], p50[32], p99[32];
		snprintf(pid, sizeof pid, "%d", (int)f->pid);
		for (int k = 0; k < 4; k++)
			put_rate(c[k], sizeof c[k], r->closes[k]);
		put_rate(risk, sizeof risk, r->risk);
		snprintf(drain, sizeof drain, "%llu", (unsigned long long)f->draining);
		put_rate(ep, sizeof ep, r->epipe);
		put_rate(sp, sizeof sp, r->sigpipe);
		put_ms(p50, sizeof p50, cp_ctrfile_drain_pct(&r->hist, 0.5));
		put_ms(p99, sizeof p99, cp_ctrfile_drain_pct(&r->hist, 0.99));
		fprintf(out, COLS, pid, f->program, c[0], c[1], c[2], c[3], risk, drain, ep, sp, p50, p99);
		for (unsigned k = 0; k < f->rules_used; k++) {
			char name[32];
			snprintf(name, sizeof name, " %s", f->rules[k].name);
			for (int a = 0; a < 4; a++)
				put_rate(c[a], sizeof c[a], r->rule_closes[k][a]);
			fprintf(out, RULE_COLS, "", name, c[0], c[1], c[2], c[3]);
		}
	}
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Wait up to secs for a key (a terminal) or just the time (not one). */
static void wait_key(bool tty, double secs)
{
	double end = now_s() + secs;
	for (double left = secs; left > 0 && !stop; left = end - now_s()) {
		struct pollfd p = { .fd = 0, .events = POLLIN };
		int r = poll(&p, tty ? 1 : 0, (int)(left * 1000) + 1);
		if (r <= 0 || !tty)
			continue;
		char ch;
		if (read(0, &ch, 1) != 1) {
			stop = 1;
			return;
		}
		const char *keys = "crdep";
		const char *k = strchr(keys, ch);
		if (ch == 'q' || ch == 'Q')
			stop = 1;
		else if (k != NULL && ch != '\0') {
			sort_key = (enum sort_key)(k - keys);
			return; /* show the new order now */
		}
	}
}

int cp_cli_top(int argc, char **argv)
{
	bool once = false;
	double interval = 1;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		static const char *const sorts[] = { "closes", "risk", "drains", "epipe", "pid" };
		if (strcmp(argv[i], "--once") == 0) {
			once = true;
		} else if ((strcmp(argv[i], "-d") == 0 || strcmp(argv[i], "--interval") == 0) && i + 1 < argc &&
			   (interval = atof(argv[i + 1])) > 0) {
			i++;
		} else if (strcmp(argv[i], "--sort") == 0 && i + 1 < argc) {
			size_t k = 0;
			while (k < 5 && strcmp(argv[i + 1], sorts[k]) != 0)
				k++;
			if (k == 5)
				goto usage;
			sort_key = (enum sort_key)k;
			i++;
		} else {
			goto usage;
		}
	}
	static struct cp_rundirs dirs;
	if (cp_ctrfile_dirs(&dirs) < 0 && errno != ENOENT) {
		fprintf(stderr, "closepolicy top: the run directory %s: %s\n", dirs.dir[0], strerror(errno));
		return 1;
	}
	bool tty = isatty(1) && isatty(0) && !once;
	struct termios saved, raw;
	if (tty && tcgetattr(0, &saved) == 0) {
		raw = saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 1;
		raw.c_cc[VTIME] = 0;
		tcsetattr(0, TCSANOW, &raw);
	} else {
		tty = false;
	}
	struct sigaction sa = { .sa_handler = on_signal };
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);

	struct cp_stat_entry *before = NULL;
	size_t n_before = 0;
	double t_before = now_s();
	int missing, status = 0;
	n_before = cp_stat_gather(&dirs, argv + i, argc - i, false, &before, &missing);
	if (missing)
		status = 1;
	while (!stop) {
		wait_key(tty, interval);
		if (stop)
			break;
		struct cp_stat_entry *now;
		size_t n = cp_stat_gather(&dirs, argv + i, argc - i, false, &now, &missing);
		double t = now_s();
		struct row *rows = calloc(n ? n : 1, sizeof *rows);
		if (now == NULL || rows == NULL) {
			status = 1;
			break;
		}
		for (size_t k = 0; k < n; k++)
			make_row(&rows[k], &now[k], find(before, n_before, now[k].f.pid), t - t_before);
		if (tty)
			fputs("\033[H\033[2J", stdout);
		print_rows(stdout, rows, n);
		if (!tty)
			fputc('\n', stdout);
		fflush(stdout);
		free(rows);
		free(before);
		before = now;
		n_before = n;
		t_before = t;
		if (once || (argc > i && n == 0)) /* every process named has gone */
			break;
	}
	free(before);
	if (tty)
		tcsetattr(0, TCSANOW, &saved);
	return status;
usage:
	fprintf(stderr, "usage: closepolicy top [--sort closes|risk|drains|epipe|pid] [-d SECONDS] [--once] "
			"[PID...]\n");
	return 2;
}
