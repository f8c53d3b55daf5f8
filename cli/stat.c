/* closepolicy stat — the counters of live processes under the shim: text, JSON lines, or the
 * Prometheus text exposition format (for node_exporter's textfile collector). */
#include "cli/cli.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/ctrfile.h"
#include "shim/rundir.h"

static const char *const ACTIONS[CP_CTR_ACTIONS] = { "passthrough", "graceful", "linger", "reset" };
static const char *const DRAINS[] = CP_CTR_DRAIN_NAMES;
static const char *const CALLS[] = CP_CTR_CALL_NAMES;

static uint64_t sum(const uint64_t *v, size_t n)
{
	uint64_t s = 0;
	for (size_t i = 0; i < n; i++)
		s += v[i];
	return s;
}

static void json_str(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\u%04x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void json_counts(FILE *out, const char *key, const uint64_t *v, const char *const *names, size_t n)
{
	fprintf(out, ",\"%s\":{", key);
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%s\"%s\":%llu", i ? "," : "", names[i], (unsigned long long)v[i]);
	fputc('}', out);
}

static void print_json(FILE *out, const struct cp_stat_entry *e, bool summed)
{
	const struct cp_ctr_file *f = &e->f;
	fputs("{", out);
	if (summed) {
		fprintf(out, "\"processes\":%zu,\"pids\":[", e->n_pids);
		for (size_t i = 0; i < e->n_pids && i < 64; i++)
			fprintf(out, "%s%d", i ? "," : "", (int)e->pids[i]);
		fputs("]", out);
	} else {
		fprintf(out, "\"pid\":%d", (int)f->pid);
	}
	fputs(",\"program\":", out);
	json_str(out, f->program);
	fputs(",\"policy\":", out);
	json_str(out, f->policy);
	fprintf(out, ",\"generation\":%llu,\"loaded\":%.3f,\"rejected\":%llu",
		(unsigned long long)f->generation, (double)f->loaded_ns / 1e9, (unsigned long long)f->rejected);
	if (!summed && f->last_error[0] != '\0') {
		fputs(",\"last_error\":", out);
		json_str(out, f->last_error);
	}
	json_counts(out, "closes", f->closes, ACTIONS, CP_CTR_ACTIONS);
	fputs(",\"rules\":{", out);
	for (unsigned i = 0; i < f->rules_used; i++) {
		fputs(i ? "," : "", out);
		json_str(out, f->rules[i].name);
		fputs(":{\"risk\":", out);
		fprintf(out, "%llu", (unsigned long long)f->rules[i].risk);
		json_counts(out, "closes", f->rules[i].closes, ACTIONS, CP_CTR_ACTIONS);
		fputs("}", out);
	}
	fputs("}", out);
	json_counts(out, "no_rule", f->closes_norule, ACTIONS, CP_CTR_ACTIONS);
	fprintf(out, ",\"dry_run\":%llu,\"risk\":%llu,\"risk_unread_bytes\":%llu", (unsigned long long)f->dry_run,
		(unsigned long long)f->risk, (unsigned long long)f->risk_unread);
	json_counts(out, "drains", f->drains, DRAINS, CP_CTR_DRAINS);
	fprintf(out, ",\"draining\":%llu,\"draining_high\":%llu,\"max_draining_hits\":%llu",
		(unsigned long long)f->draining, (unsigned long long)f->draining_high,
		(unsigned long long)f->max_draining_hits);
	fputs(",\"drain_ms\":{", out); /* bucket upper bounds (exclusive) in ms */
	for (unsigned i = 0; i < CP_CTR_HIST; i++) {
		if (i == CP_CTR_HIST - 1)
			fprintf(out, ",\"inf\":%llu", (unsigned long long)f->drain_ms[i]);
		else
			fprintf(out, "%s\"%llu\":%llu", i ? "," : "", 1ull << i, (unsigned long long)f->drain_ms[i]);
	}
	fprintf(out, "},\"drain_ms_total\":%llu", (unsigned long long)f->drain_ms_total);
	fprintf(out, ",\"epipe\":%llu", (unsigned long long)sum(f->epipe, CP_CTR_CALLS));
	json_counts(out, "epipe_calls", f->epipe, CALLS, CP_CTR_CALLS);
	fprintf(out, ",\"sigpipe\":%llu", (unsigned long long)sum(f->sigpipe, CP_CTR_CALLS));
	json_counts(out, "sigpipe_calls", f->sigpipe, CALLS, CP_CTR_CALLS);
	fprintf(out, ",\"econnreset\":%llu,\"errors\":%llu,\"log_lines\":%llu,\"log_dropped\":%llu}\n",
		(unsigned long long)f->econnreset, (unsigned long long)f->errors,
		(unsigned long long)f->log_lines, (unsigned long long)f->log_dropped);
}

static void text_counts(FILE *out, const uint64_t *v, const char *const *names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "  %s %llu", names[i], (unsigned long long)v[i]);
}

static void print_pct(FILE *out, unsigned long long ms)
{
	if (ms == 0)
		fputs("-", out);
	else if (ms == UINT64_MAX)
		fprintf(out, ">=%llus", (1ull << (CP_CTR_HIST - 1)) / 1000);
	else
		fprintf(out, "<%llums", ms);
}

static void print_text(FILE *out, const struct cp_stat_entry *e, bool summed)
{
	const struct cp_ctr_file *f = &e->f;
	char when[64] = "-";
	time_t t = (time_t)(f->loaded_ns / 1000000000u);
	struct tm tm;
	if (f->loaded_ns != 0 && localtime_r(&t, &tm) != NULL)
		strftime(when, sizeof when, "%Y-%m-%d %H:%M:%S", &tm);
	if (summed)
		fprintf(out, "%s  (%zu processes)\n", f->program, e->n_pids);
	else
		fprintf(out, "%s  pid %d\n", f->program, (int)f->pid);
	fprintf(out, "  policy      %s  generation %llu  loaded %s  rejected reloads %llu\n", f->policy,
		(unsigned long long)f->generation, when, (unsigned long long)f->rejected);
	if (!summed && f->last_error[0] != '\0')
		fprintf(out, "  last error  %s\n", f->last_error);
	fputs("  closes    ", out);
	text_counts(out, f->closes, ACTIONS, CP_CTR_ACTIONS);
	fprintf(out, "  (dry run %llu)\n", (unsigned long long)f->dry_run);
	for (unsigned i = 0; i < f->rules_used; i++) {
		fprintf(out, "    rule %-12s", f->rules[i].name);
		text_counts(out, f->rules[i].closes, ACTIONS, CP_CTR_ACTIONS);
		fprintf(out, "  risk %llu\n", (unsigned long long)f->rules[i].risk);
	}
	fprintf(out, "    no rule          ");
	text_counts(out, f->closes_norule, ACTIONS, CP_CTR_ACTIONS);
	fprintf(out, "\n  risk        %llu closes answered with RST (%llu bytes left unread)\n",
		(unsigned long long)f->risk, (unsigned long long)f->risk_unread);
	fputs("  drains    ", out);
	text_counts(out, f->drains, DRAINS, CP_CTR_DRAINS);
	fprintf(out, "\n  draining    %llu now, %llu at most, max_draining reached %llu times; drain time p50 ",
		(unsigned long long)f->draining, (unsigned long long)f->draining_high,
		(unsigned long long)f->max_draining_hits);
	print_pct(out, cp_ctrfile_drain_pct(f, 0.5));
	fputs(" p99 ", out);
	print_pct(out, cp_ctrfile_drain_pct(f, 0.99));
	fprintf(out, "\n  epipe       %llu", (unsigned long long)sum(f->epipe, CP_CTR_CALLS));
	for (unsigned i = 0; i < CP_CTR_CALLS; i++)
		if (f->epipe[i])
			fprintf(out, "  %s %llu", CALLS[i], (unsigned long long)f->epipe[i]);
	fprintf(out, "\n  sigpipe     %llu", (unsigned long long)sum(f->sigpipe, CP_CTR_CALLS));
	for (unsigned i = 0; i < CP_CTR_CALLS; i++)
		if (f->sigpipe[i])
			fprintf(out, "  %s %llu", CALLS[i], (unsigned long long)f->sigpipe[i]);
	fprintf(out, "\n  econnreset  %llu  errors %llu  log lines %llu (dropped %llu)\n\n",
		(unsigned long long)f->econnreset, (unsigned long long)f->errors,
		(unsigned long long)f->log_lines, (unsigned long long)f->log_dropped);
}

/* ---- Prometheus ---- */

static void prom_escape(FILE *out, const char *s)
{
	for (; *s; s++) {
		if (*s == '\\' || *s == '"')
			fprintf(out, "\\%c", *s);
		else if (*s == '\n')
			fputs("\\n", out);
		else
			fputc(*s, out);
	}
}

/* The labels every sample of one entry carries. */
static void prom_ids(FILE *out, const struct cp_stat_entry *e, bool summed)
{
	fputs("program=\"", out);
	prom_escape(out, e->f.program);
	fputc('"', out);
	if (!summed)
		fprintf(out, ",pid=\"%d\"", (int)e->f.pid);
}

struct family {
	const char *name, *type, *help;
};

static const struct family FAMILIES[] = {
	{ "closepolicy_closes_total", "counter", "TCP connections closed, by the action taken and the rule matched (\"\" = none)" },
	{ "closepolicy_dry_run_total", "counter", "closes whose action was only logged (dry run)" },
	{ "closepolicy_risk_total", "counter", "closes the kernel answered with RST" },
	{ "closepolicy_risk_unread_bytes_total", "counter", "bytes left unread at those closes" },
	{ "closepolicy_drains_total", "counter", "graceful closes finished, by outcome" },
	{ "closepolicy_draining", "gauge", "graceful closes in progress" },
	{ "closepolicy_draining_high", "gauge", "most graceful closes in progress at once" },
	{ "closepolicy_max_draining_hits_total", "counter", "graceful closes drained in close() because max_draining was reached" },
	{ "closepolicy_drain_duration_seconds", "histogram", "how long graceful closes took" },
	{ "closepolicy_epipe_total", "counter", "write-type calls that failed with EPIPE, by call" },
	{ "closepolicy_sigpipe_total", "counter", "SIGPIPE signals, by call" },
	{ "closepolicy_econnreset_total", "counter", "calls that failed with ECONNRESET" },
	{ "closepolicy_errors_total", "counter", "things the shim could not do (see the log)" },
	{ "closepolicy_log_lines_total", "counter", "log lines written" },
	{ "closepolicy_log_dropped_total", "counter", "log lines dropped by log.rate" },
	{ "closepolicy_policy_generation", "gauge", "policy generation in force (1 = start-up's)" },
	{ "closepolicy_policy_loaded_timestamp_seconds", "gauge", "when the policy in force was loaded" },
	{ "closepolicy_policy_rejected_total", "counter", "reloads refused (the old policy stayed)" },
};
#define N_FAMILIES (sizeof FAMILIES / sizeof *FAMILIES)

static void prom_family(FILE *out, size_t k, const struct cp_stat_entry *es, size_t n, bool summed)
{
	const char *name = FAMILIES[k].name;
	fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, FAMILIES[k].help, name, FAMILIES[k].type);
	for (size_t j = 0; j < n; j++) {
		const struct cp_stat_entry *e = &es[j];
		const struct cp_ctr_file *f = &e->f;
#define SAMPLE(extra, value)                                                        \
	do {                                                                        \
		fprintf(out, "%s{", name);                                          \
		prom_ids(out, e, summed);                                           \
		fprintf(out, "%s} %llu\n", extra, (unsigned long long)(value));     \
	} while (0)
		char lab[200];
		switch (k) {
		case 0:
			for (unsigned a = 0; a < CP_CTR_ACTIONS; a++) {
				for (unsigned r = 0; r < f->rules_used; r++) {
					fprintf(out, "%s{", name);
					prom_ids(out, e, summed);
					fputs(",rule=\"", out);
					prom_escape(out, f->rules[r].name);
					fprintf(out, "\",action=\"%s\"} %llu\n", ACTIONS[a],
						(unsigned long long)f->rules[r].closes[a]);
				}
				snprintf(lab, sizeof lab, ",rule=\"\",action=\"%s\"", ACTIONS[a]);
				SAMPLE(lab, f->closes_norule[a]);
			}
			break;
		case 1: SAMPLE("", f->dry_run); break;
		case 2: SAMPLE("", f->risk); break;
		case 3: SAMPLE("", f->risk_unread); break;
		case 4:
			for (unsigned i = 0; i < CP_CTR_DRAINS; i++) {
				snprintf(lab, sizeof lab, ",outcome=\"%s\"", DRAINS[i]);
				SAMPLE(lab, f->drains[i]);
			}
			break;
		case 5: SAMPLE("", f->draining); break;
		case 6: SAMPLE("", f->draining_high); break;
		case 7: SAMPLE("", f->max_draining_hits); break;
		case 8: {
			uint64_t cum = 0;
			for (unsigned i = 0; i < CP_CTR_HIST; i++) {
				cum += f->drain_ms[i];
				if (i == CP_CTR_HIST - 1)
					snprintf(lab, sizeof lab, ",le=\"+Inf\"");
				else
					snprintf(lab, sizeof lab, ",le=\"%g\"", (double)(1ull << i) / 1000.0);
				fprintf(out, "%s_bucket{", name);
				prom_ids(out, e, summed);
				fprintf(out, "%s} %llu\n", lab, (unsigned long long)cum);
			}
			fprintf(out, "%s_sum{", name);
			prom_ids(out, e, summed);
			fprintf(out, "} %.3f\n", (double)f->drain_ms_total / 1000.0);
			fprintf(out, "%s_count{", name);
			prom_ids(out, e, summed);
			fprintf(out, "} %llu\n", (unsigned long long)cum);
			break;
		}
		case 9:
		case 10:
			for (unsigned i = 0; i < CP_CTR_CALLS; i++) {
				snprintf(lab, sizeof lab, ",call=\"%s\"", CALLS[i]);
				SAMPLE(lab, k == 9 ? f->epipe[i] : f->sigpipe[i]);
			}
			break;
		case 11: SAMPLE("", f->econnreset); break;
		case 12: SAMPLE("", f->errors); break;
		case 13: SAMPLE("", f->log_lines); break;
		case 14: SAMPLE("", f->log_dropped); break;
		case 15:
			fprintf(out, "%s{", name);
			prom_ids(out, e, summed);
			if (!summed) {
				fputs(",policy=\"", out);
				prom_escape(out, f->policy);
				fputc('"', out);
			}
			fprintf(out, "} %llu\n", (unsigned long long)f->generation);
			break;
		case 16:
			fprintf(out, "%s{", name);
			prom_ids(out, e, summed);
			fprintf(out, "} %.3f\n", (double)f->loaded_ns / 1e9);
			break;
		case 17: SAMPLE("", f->rejected); break;
		}
#undef SAMPLE
	}
}

static void print_prometheus(FILE *out, const struct cp_stat_entry *es, size_t n, bool summed)
{
	for (size_t k = 0; k < N_FAMILIES; k++)
		prom_family(out, k, es, n, summed);
}

void cp_stat_print(FILE *out, enum cp_stat_format fmt, const struct cp_stat_entry *es, size_t n, bool summed)
{
	if (fmt == CP_STAT_PROMETHEUS)
		print_prometheus(out, es, n, summed);
	for (size_t k = 0; fmt != CP_STAT_PROMETHEUS && k < n; k++)
		(fmt == CP_STAT_JSON ? print_json : print_text)(out, &es[k], summed);
}

/* ---- gathering ---- */

#define MAX_PROCS 4096

size_t cp_stat_gather(const struct cp_rundirs *dirs, char **names, int n_names, bool summed,
		      struct cp_stat_entry **out, int *missing)
{
	static pid_t pids[MAX_PROCS];
	size_t n = 0;
	*missing = 0;
	if (n_names == 0) {
		for (size_t d = 0; d < dirs->n; d++)
			n += cp_ctrfile_list(dirs->dir[d], pids + n, MAX_PROCS - n);
	} else {
		for (int i = 0; i < n_names && n < MAX_PROCS; i++) {
			char *end;
			long v = strtol(names[i], &end, 10);
			if (*end != '\0' || v <= 0) {
				fprintf(stderr, "closepolicy: not a PID: \"%s\"\n", names[i]);
				(*missing)++;
				continue;
			}
			pids[n++] = (pid_t)v;
		}
	}
	struct cp_stat_entry *es = calloc(n ? n : 1, sizeof *es);
	size_t m = 0;
	char why[400];
	for (size_t i = 0; es != NULL && i < n; i++) {
		struct cp_stat_entry *e = &es[m];
		if (dirs->n == 0 || cp_ctrfile_read(cp_ctrfile_dir_of(dirs, pids[i]), pids[i], &e->f, why, sizeof why) < 0) {
			if (dirs->n == 0)
				snprintf(why, sizeof why, "no counters file: no process under the shim has made one");
			if (n_names > 0) { /* a process named on the command line: say why */
				fprintf(stderr, "closepolicy: %d: %s\n", (int)pids[i], why);
				(*missing)++;
			}
			continue;
		}
		if (e->f.loaded_ns == 0) /* start-up's policy: loaded as the process started */
			e->f.loaded_ns = cp_ctrfile_started_ns(pids[i]);
		e->pids[0] = pids[i];
		e->n_pids = 1;
		size_t k = 0;
		while (summed && k < m && strcmp(es[k].f.program, e->f.program) != 0)
			k++;
		if (summed && k < m) {
			cp_ctrfile_add(&es[k].f, &e->f);
			if (es[k].n_pids < 64)
				es[k].pids[es[k].n_pids] = pids[i];
			es[k].n_pids++;
			continue;
		}
		m++;
	}
	*out = es;
	return m;
}

int cp_cli_stat(int argc, char **argv)
{
	enum cp_stat_format fmt = CP_STAT_TEXT;
	bool summed = false;
	int i = 1;
	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--json") == 0)
			fmt = CP_STAT_JSON;
		else if (strcmp(argv[i], "--prometheus") == 0)
			fmt = CP_STAT_PROMETHEUS;
		else if (strcmp(argv[i], "--sum") == 0)
			summed = true;
		else if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		} else {
			fprintf(stderr, "closepolicy stat: unknown option \"%s\"\nusage: closepolicy stat "
					"[--json | --prometheus] [--sum] [PID...]\n", argv[i]);
			return 2;
		}
	}
	static struct cp_rundirs dirs;
	if (cp_ctrfile_dirs(&dirs) < 0 && errno != ENOENT) { /* ENOENT: no file made yet */
		fprintf(stderr, "closepolicy stat: the run directory %s: %s\n", dirs.dir[0], strerror(errno));
		return 1;
	}
	struct cp_stat_entry *es;
	int missing;
	size_t n = cp_stat_gather(&dirs, argv + i, argc - i, summed, &es, &missing);
	if (es == NULL) {
		fprintf(stderr, "closepolicy stat: out of memory\n");
		return 1;
	}
	cp_stat_print(stdout, fmt, es, n, summed);
	free(es);
	if (fflush(stdout) != 0)
		return 1;
	return missing ? 1 : 0;
}
