/* closepolicy report: summarise a JSON-lines log into what a person can act on.
 * Each line is parsed with libyaml (JSON is YAML's flow syntax), so no JSON parser of our own. */
#include "cli/cli.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#define FIELDS 16
#define TOP 10

struct record {
	const char *key[FIELDS], *value[FIELDS];
	int count;
};

static const char *field(const struct record *r, const char *key)
{
	for (int i = 0; i < r->count; i++)
		if (strcmp(r->key[i], key) == 0)
			return r->value[i];
	return NULL;
}

/* A counter keyed by a string: an open-addressing table that grows. */
struct tally {
	const char *title;
	size_t used, cap;
	struct slot {
		char *key;
		unsigned long count;
		unsigned long long bytes;
	} *slots;
};

static unsigned long hash(const char *s)
{
	unsigned long h = 5381;
	while (*s)
		h = h * 33 + (unsigned char)*s++;
	return h;
}

static void tally_add(struct tally *t, const char *key, unsigned long long bytes)
{
	if (!key)
		key = "(none)";
	if (t->used * 2 >= t->cap) {
		struct tally bigger = {t->title, 0, t->cap ? t->cap * 2 : 64, NULL};
		bigger.slots = calloc(bigger.cap, sizeof *bigger.slots);
		if (!bigger.slots) {
			perror("closepolicy report: calloc");
			exit(1);
		}
		for (size_t i = 0; i < t->cap; i++) {
			if (!t->slots[i].key)
				continue;
			size_t j = hash(t->slots[i].key) & (bigger.cap - 1);
			while (bigger.slots[j].key)
				j = (j + 1) & (bigger.cap - 1);
			bigger.slots[j] = t->slots[i];
			bigger.used++;
		}
		free(t->slots);
		*t = bigger;
	}
	size_t j = hash(key) & (t->cap - 1);
	while (t->slots[j].key && strcmp(t->slots[j].key, key) != 0)
		j = (j + 1) & (t->cap - 1);
	if (!t->slots[j].key) {
		if (!(t->slots[j].key = strdup(key))) {
			perror("closepolicy report: strdup");
			exit(1);
		}
		t->used++;
	}
	t->slots[j].count++;
	t->slots[j].bytes += bytes;
}

static int by_count(const void *a, const void *b)
{
	const struct slot *x = a, *y = b;
	if (!x->key || !y->key)
		return !x->key - !y->key;
	if (x->count != y->count)
		return x->count < y->count ? 1 : -1;
	return strcmp(x->key, y->key);
}

static void tally_print(struct tally *t, bool with_bytes, FILE *out)
{
	if (!t->used)
		return;
	qsort(t->slots, t->cap, sizeof *t->slots, by_count);
	fprintf(out, "\n%s:\n", t->title);
	for (size_t i = 0; i < t->used && i < TOP; i++) {
		fprintf(out, "  %-44s %8lu", t->slots[i].key, t->slots[i].count);
		if (with_bytes)
			fprintf(out, "  %12llu bytes", t->slots[i].bytes);
		fputc('\n', out);
	}
	if (t->used > TOP)
		fprintf(out, "  ... and %zu more\n", t->used - TOP);
	for (size_t i = 0; i < t->cap; i++)
		free(t->slots[i].key);
	free(t->slots);
	t->slots = NULL;
}

/* "10.0.0.5:41234" -> "10.0.0.5"; "[::1]:443" -> "[::1]": ephemeral ports would split hot spots. */
static const char *host_of(const char *peer, char *buf, size_t size)
{
	if (!peer)
		return NULL;
	snprintf(buf, size, "%s", peer);
	char *colon = strrchr(buf, ':');
	if (colon && (buf[0] == '[' ? colon > strchr(buf, ']') : strchr(buf, ':') == colon))
		*colon = '\0';
	return buf;
}

static bool parse_line(const char *line, size_t len, yaml_document_t *doc, struct record *r)
{
	yaml_parser_t parser;
	bool ok = false;
	if (!yaml_parser_initialize(&parser))
		return false;
	yaml_parser_set_input_string(&parser, (const unsigned char *)line, len);
	if (yaml_parser_load(&parser, doc)) {
		yaml_node_t *root = yaml_document_get_root_node(doc);
		ok = root && root->type == YAML_MAPPING_NODE;
		r->count = 0;
		for (yaml_node_pair_t *p = ok ? root->data.mapping.pairs.start : NULL;
		     p && p < root->data.mapping.pairs.top && r->count < FIELDS; p++) {
			yaml_node_t *k = yaml_document_get_node(doc, p->key);
			yaml_node_t *v = yaml_document_get_node(doc, p->value);
			if (k->type != YAML_SCALAR_NODE || v->type != YAML_SCALAR_NODE)
				continue;
			r->key[r->count] = (const char *)k->data.scalar.value;
			r->value[r->count++] = (const char *)v->data.scalar.value;
		}
		ok = ok && field(r, "event");
		if (!ok)
			yaml_document_delete(doc);
	}
	yaml_parser_delete(&parser);
	return ok;
}

static unsigned long long number(const char *s)
{
	return s ? strtoull(s, NULL, 10) : 0;
}

int cp_cli_report(int argc, char **argv)
{
	const char *path = argc > 1 ? argv[1] : "-";
	if (argc > 2) {
		fputs("usage: closepolicy report [LOG|-]\n", stderr);
		return 2;
	}
	FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
	if (!in) {
		fprintf(stderr, "closepolicy report: %s: %s\n", path, strerror(errno));
		return 2;
	}
	struct tally events = {.title = "events"}, programs = {.title = "by program"}, rules = {.title = "closes by rule and action"},
		     peers = {.title = "by peer (host)"}, pipes = {.title = "EPIPE / SIGPIPE hot spots (program, call, peer)"},
		     drains = {.title = "drains by outcome (bytes thrown away)"},
		     risks = {.title = "risky closes: RST sent (program, peer; unread bytes)"},
		     errors = {.title = "shim errors"}, resets = {.title = "ECONNRESET (program, call, peer)"};
	char *line = NULL, host[128], key[512];
	size_t cap = 0, lineno = 0, skipped = 0, total = 0, first_skipped = 0;
	ssize_t len;
	while ((len = getline(&line, &cap, in)) > 0) {
		yaml_document_t doc;
		struct record r;
		lineno++;
		if (len == 1 && line[0] == '\n')
			continue;
		if (!parse_line(line, (size_t)len, &doc, &r)) {
			if (!skipped++)
				first_skipped = lineno;
			continue;
		}
		total++;
		const char *event = field(&r, "event"), *program = field(&r, "program");
		const char *peer = host_of(field(&r, "peer"), host, sizeof host);
		tally_add(&events, event, 0);
		tally_add(&programs, program, 0);
		if (peer)
			tally_add(&peers, peer, 0);
		snprintf(key, sizeof key, "%s, %s, %s", program ? program : "?",
			 field(&r, "call") ? field(&r, "call") : (strcmp(event, "sigpipe") == 0 ? "signal" : "?"),
			 peer ? peer : "-");
		if (strcmp(event, "epipe") == 0 || strcmp(event, "sigpipe") == 0)
			tally_add(&pipes, key, 0);
		else if (strcmp(event, "econnreset") == 0)
			tally_add(&resets, key, 0);
		else if (strcmp(event, "drain") == 0)
			tally_add(&drains, field(&r, "outcome"), number(field(&r, "bytes")));
		else if (strcmp(event, "error") == 0)
			tally_add(&errors, field(&r, "message"), 0);
		else if (strcmp(event, "close") == 0) {
			snprintf(key, sizeof key, "%s: %s", field(&r, "rule") ? field(&r, "rule") : "(no rule)",
				 field(&r, "action") ? field(&r, "action") : "?");
			tally_add(&rules, key, 0);
		} else if (strcmp(event, "risk") == 0) {
			snprintf(key, sizeof key, "%s, %s", program ? program : "?", peer ? peer : "-");
			tally_add(&risks, key, number(field(&r, "unread")));
		}
		yaml_document_delete(&doc);
	}
	free(line);
	if (in != stdin)
		fclose(in);
	printf("closepolicy report: %s: %zu events", path, total);
	if (skipped)
		printf(", %zu lines skipped (not a JSON log event; the first is line %zu)", skipped, first_skipped);
	putchar('\n');
	if (!total) {
		puts("nothing to report: the log holds no events (was the log written with format: json?)");
		return 0;
	}
	tally_print(&events, false, stdout);
	tally_print(&pipes, false, stdout);
	tally_print(&resets, false, stdout);
	tally_print(&risks, true, stdout);
	tally_print(&drains, true, stdout);
	tally_print(&rules, false, stdout);
	tally_print(&programs, false, stdout);
	tally_print(&peers, false, stdout);
	tally_print(&errors, false, stdout);
	return 0;
}
