/* Walking the YAML document: typed values with their positions, for the policy loader. */
#include "policy/loader.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

void ld_fail(struct loader *L, const yaml_node_t *n, const char *fmt, ...)
{
	char msg[CP_DIAG_MSG];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	cp_diag_add(L->diag, n ? (int)n->start_mark.line + 1 : 1, n ? (int)n->start_mark.column + 1 : 1,
		    "%s", msg);
}

const char *ld_kind_name(const yaml_node_t *n)
{
	switch (n->type) {
	case YAML_MAPPING_NODE: return "a map";
	case YAML_SEQUENCE_NODE: return "a list";
	default: return "a single value";
	}
}

/* `key:` with nothing after it: absent for maps and lists, missing for values. */
bool ld_is_null(const yaml_node_t *n)
{
	if (n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
		return false;
	const char *v = (const char *)n->data.scalar.value;
	return v[0] == '\0' || strcmp(v, "~") == 0 || strcmp(v, "null") == 0;
}

const char *ld_scalar(struct loader *L, const yaml_node_t *n, const char *key, const char *want)
{
	if (n->type != YAML_SCALAR_NODE) {
		ld_fail(L, n, "%s: expected %s, got %s", key, want, ld_kind_name(n));
		return NULL;
	}
	if (ld_is_null(n)) {
		ld_fail(L, n, "%s: missing value: expected %s", key, want);
		return NULL;
	}
	return (const char *)n->data.scalar.value;
}

static bool ld_parse_uint(const char *s, uint32_t max, uint32_t *out)
{
	uint64_t v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v * 10 + (uint64_t)(*s - '0');
		if (v > max)
			return false;
	}
	*out = (uint32_t)v;
	return true;
}

/* One of a fixed set of words; returns its index or -1 (and reports). */
int ld_word(struct loader *L, const yaml_node_t *n, const char *key, const char *const *words,
		size_t count)
{
	char want[160] = "";
	for (size_t i = 0; i < count; i++) {
		strcat(want, i ? (i + 1 == count ? " or " : ", ") : "");
		strcat(want, words[i]);
	}
	const char *v = ld_scalar(L, n, key, want);
	if (!v)
		return -1;
	for (size_t i = 0; i < count; i++)
		if (strcmp(v, words[i]) == 0)
			return (int)i;
	ld_fail(L, n, "%s: unknown value \"%s\": expected %s", key, v, want);
	return -1;
}

bool ld_boolean(struct loader *L, const yaml_node_t *n, const char *key, bool *out)
{
	static const char *const yes[] = {"true", "True", "TRUE", "yes", "on"};
	static const char *const no[] = {"false", "False", "FALSE", "no", "off"};
	const char *v = ld_scalar(L, n, key, "true or false");
	if (!v)
		return false;
	for (size_t i = 0; i < 5; i++) {
		if (strcmp(v, yes[i]) == 0)
			return *out = true;
		if (strcmp(v, no[i]) == 0)
			return !(*out = false);
	}
	ld_fail(L, n, "%s: expected true or false, got \"%s\"", key, v);
	return false;
}

bool ld_duration(struct loader *L, const yaml_node_t *n, const char *key, uint32_t *ms)
{
	const char *why;
	const char *v = ld_scalar(L, n, key, "a duration (250ms, 5s, 2m)");
	if (!v)
		return false;
	if (cp_parse_duration(v, ms, &why) != 0) {
		ld_fail(L, n, "%s: %s, got \"%s\"", key, why, v);
		return false;
	}
	return true;
}

bool ld_number(struct loader *L, const yaml_node_t *n, const char *key, uint32_t min,
		   uint32_t max, uint32_t *out)
{
	const char *v = ld_scalar(L, n, key, "a number");
	if (!v)
		return false;
	if (!ld_parse_uint(v, UINT32_MAX, out)) {
		ld_fail(L, n, "%s: expected a whole number %u..%u, got \"%s\"", key, min, max, v);
		return false;
	}
	if (*out < min || *out > max) {
		ld_fail(L, n, "%s: %u is out of range %u..%u", key, *out, min, max);
		return false;
	}
	return true;
}

char *ld_dup_string(struct loader *L, const char *s)
{
	char *copy = strdup(s);
	if (!copy)
		cp_diag_add(L->diag, 0, 0, "out of memory");
	return copy;
}

/* Items of a one-or-list condition: a single scalar counts as a list of one. */
static size_t ld_list_items(struct loader *L, const yaml_node_t *n, const char *key,
			 yaml_node_t **items, size_t cap)
{
	if (n->type == YAML_MAPPING_NODE) {
		ld_fail(L, n, "%s: expected a value or a list, got a map", key);
		return 0;
	}
	if (n->type == YAML_SCALAR_NODE) {
		items[0] = (yaml_node_t *)n;
		return 1;
	}
	size_t count = 0;
	for (yaml_node_item_t *it = n->data.sequence.items.start; it < n->data.sequence.items.top; it++) {
		if (count == cap) {
			ld_fail(L, n, "%s: too many items (the limit is %zu)", key, cap);
			return 0;
		}
		items[count++] = yaml_document_get_node(L->doc, *it);
	}
	if (count == 0)
		ld_fail(L, n, "%s: empty list: give at least one value, or leave the key out", key);
	return count;
}

typedef int (*item_parser)(const char *text, void *out, const char **why);

static int parse_port_item(const char *text, void *out, const char **why)
{
	return cp_parse_port_range(text, out, why);
}

static int parse_cidr_item(const char *text, void *out, const char **why)
{
	return cp_parse_cidr(text, out, why);
}

/* A one-or-list condition, each item parsed into a fresh array of elem_size entries; *count
 * tells how many parsed (the others are reported). NULL when there is nothing to hold. */
static void *parsed_list(struct loader *L, const yaml_node_t *n, const char *key, const char *want,
			 size_t elem_size, item_parser parse, size_t *count)
{
	yaml_node_t *items[LIST_MAX];
	size_t k = ld_list_items(L, n, key, items, LIST_MAX);
	char *out;
	if (k == 0 || !(out = calloc(k, elem_size)))
		return NULL;
	for (size_t i = 0; i < k; i++) {
		const char *why;
		const char *v = ld_scalar(L, items[i], key, want);
		if (v && parse(v, out + *count * elem_size, &why) == 0)
			++*count;
		else if (v)
			ld_fail(L, items[i], "%s: %s, got \"%s\"", key, why, v);
	}
	return out;
}

void ld_ports(struct loader *L, const yaml_node_t *n, const char *key,
	      struct cp_port_range **out, size_t *count)
{
	*out = parsed_list(L, n, key, "a port 1..65535 or a range \"A-B\"", sizeof **out,
			   parse_port_item, count);
}

void ld_addresses(struct loader *L, const yaml_node_t *n, const char *key,
		  struct cp_cidr **out, size_t *count)
{
	*out = parsed_list(L, n, key, "an address or CIDR", sizeof **out, parse_cidr_item, count);
}

static int ld_suggestion_distance(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);
	int row[40];
	if (la >= 40 || lb >= 40)
		return 99;
	for (size_t j = 0; j <= lb; j++)
		row[j] = (int)j;
	for (size_t i = 1; i <= la; i++) {
		int diag = row[0];
		row[0] = (int)i;
		for (size_t j = 1; j <= lb; j++) {
			int up = row[j];
			int cost = a[i - 1] == b[j - 1] ? 0 : 1;
			int best = diag + cost;
			if (up + 1 < best) best = up + 1;
			if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
			row[j] = best;
			diag = up;
		}
	}
	return row[lb];
}

/* Unknown keys (with the nearest valid one), duplicate keys and non-scalar keys of a map. */
void ld_check_keys(struct loader *L, const yaml_node_t *map, const char *where,
		       const struct cp_key_set *keys)
{
	yaml_node_pair_t *start = map->data.mapping.pairs.start, *top = map->data.mapping.pairs.top;
	/* Duplicate detection is quadratic: a map far larger than its valid keys is refused first. */
	if ((size_t)(top - start) > 4 * keys->count) {
		ld_fail(L, map, "%s: %zu keys, but only %zu are valid here (%s)", where,
			(size_t)(top - start), keys->count, keys->list);
		return;
	}
	for (yaml_node_pair_t *p = start; p < top; p++) {
		yaml_node_t *k = yaml_document_get_node(L->doc, p->key);
		if (k->type != YAML_SCALAR_NODE) {
			ld_fail(L, k, "%s: a key must be a plain name, got %s", where, ld_kind_name(k));
			continue;
		}
		const char *name = (const char *)k->data.scalar.value;
		for (yaml_node_pair_t *q = start; q < p; q++) {
			yaml_node_t *prev = yaml_document_get_node(L->doc, q->key);
			if (prev->type == YAML_SCALAR_NODE &&
			    strcmp((const char *)prev->data.scalar.value, name) == 0) {
				ld_fail(L, k, "duplicate key %s (first given at line %zu)", name,
				     prev->start_mark.line + 1);
				break;
			}
		}
		const char *best = NULL;
		int best_distance = 99;
		size_t i;
		for (i = 0; i < keys->count; i++) {
			if (strcmp(name, keys->names[i]) == 0)
				break;
			int d = ld_suggestion_distance(name, keys->names[i]);
			if (d < best_distance)
				best_distance = d, best = keys->names[i];
		}
		if (i < keys->count)
			continue;
		if (best && best_distance <= 2 && (size_t)best_distance < strlen(name))
			ld_fail(L, k, "unknown key %s in %s: did you mean %s?", name, where, best);
		else
			ld_fail(L, k, "unknown key %s in %s (valid keys: %s)", name, where, keys->list);
	}
}

/* The value of key in map, or NULL; first occurrence (duplicates are reported separately). */
yaml_node_t *ld_lookup(struct loader *L, const yaml_node_t *map, const char *key)
{
	for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top; p++) {
		yaml_node_t *k = yaml_document_get_node(L->doc, p->key);
		if (k->type == YAML_SCALAR_NODE && strcmp((const char *)k->data.scalar.value, key) == 0)
			return yaml_document_get_node(L->doc, p->value);
	}
	return NULL;
}

/* A map, or NULL when absent/null/wrong (wrong is reported). */
yaml_node_t *ld_section(struct loader *L, const yaml_node_t *parent, const char *key,
			    const struct cp_key_set *keys)
{
	yaml_node_t *n = ld_lookup(L, parent, key);
	if (!n || ld_is_null(n))
		return NULL;
	if (n->type != YAML_MAPPING_NODE) {
		ld_fail(L, n, "%s: expected a map, got %s", key, ld_kind_name(n));
		return NULL;
	}
	ld_check_keys(L, n, key, keys);
	return n;
}

