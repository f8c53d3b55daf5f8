/* The compiled policy as bytes and back: what a process that parsed a policy file leaves for
 * the next ones (shim/polcache.c), so that they need neither libyaml nor the parse.
 *
 * Unpacking trusts nothing: every count, enum, string and range is checked against what the
 * loader can produce, and anything else (a torn, truncated or foreign file) gives no policy at
 * all, never a partial one. The layout is the same on every machine (little-endian fields). */
#include "policy/pack.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "policy/loader.h"

#define STRING_MAX 4096 /* log paths, program globs, rule names: the loader allows less */

uint64_t cp_pack_checksum(const unsigned char *data, size_t len)
{
	uint64_t h = 14695981039346656037ull;
	for (size_t i = 0; i < len; i++) {
		h ^= data[i];
		h *= 1099511628211ull;
	}
	return h;
}

static void put_le(unsigned char *at, uint64_t v, int bytes)
{
	for (int i = 0; i < bytes; i++)
		at[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *at, int bytes)
{
	uint64_t v = 0;
	for (int i = 0; i < bytes; i++)
		v |= (uint64_t)at[i] << (8 * i);
	return v;
}

void cp_pack_seal(unsigned char *buf, size_t payload_len)
{
	memcpy(buf, CP_PACK_MAGIC, 8);
	put_le(buf + 8, CP_PACK_FORMAT, 4);
	put_le(buf + CP_PACK_AT_LENGTH, payload_len, 4);
	put_le(buf + CP_PACK_AT_SUM, cp_pack_checksum(buf + CP_PACK_HEADER, payload_len), 8);
}

/* ---- packing: every put counts, and writes only while the buffer has room ---- */

struct writer {
	unsigned char *buf;
	size_t size, len;
};

static void put(struct writer *w, uint64_t v, int bytes)
{
	if (w->len + (size_t)bytes <= w->size)
		put_le(w->buf + w->len, v, bytes);
	w->len += (size_t)bytes;
}

static void put_bytes(struct writer *w, const void *p, size_t n)
{
	if (w->len + n <= w->size)
		memcpy(w->buf + w->len, p, n);
	w->len += n;
}

/* a length, then the bytes; NULL has length 0xffffffff */
static void put_string(struct writer *w, const char *s)
{
	if (s == NULL) {
		put(w, UINT32_MAX, 4);
		return;
	}
	size_t n = strlen(s);
	put(w, n, 4);
	put_bytes(w, s, n);
}

static void put_ports(struct writer *w, const struct cp_port_range *r, size_t n)
{
	put(w, n, 4);
	for (size_t i = 0; i < n; i++) {
		put(w, r[i].lo, 2);
		put(w, r[i].hi, 2);
	}
}

static void put_cidrs(struct writer *w, const struct cp_cidr *c, size_t n)
{
	put(w, n, 4);
	for (size_t i = 0; i < n; i++) {
		put(w, c[i].addr.family, 1);
		put_bytes(w, c[i].addr.bytes, 16);
		put(w, c[i].prefix, 1);
	}
}

static void put_rule(struct writer *w, const struct cp_rule *r)
{
	put_string(w, r->name);
	put(w, r->match.role, 1);
	put_ports(w, r->match.local_ports, r->match.n_local_ports);
	put_ports(w, r->match.peer_ports, r->match.n_peer_ports);
	put_cidrs(w, r->match.local, r->match.n_local);
	put_cidrs(w, r->match.peer, r->match.n_peer);
	put_string(w, r->match.program);
	put(w, r->action, 1);
	put(w, r->on_exit, 1);
	put(w, r->drain_timeout_ms, 4);
	put(w, r->drain_max_ms, 4);
	put(w, r->linger_s, 4);
	put(w, r->keepalive.set, 1);
	put(w, r->keepalive.idle_s, 4);
	put(w, r->keepalive.interval_s, 4);
	put(w, r->keepalive.count, 4);
	put(w, r->user_timeout_set, 1);
	put(w, r->user_timeout_ms, 4);
}

size_t cp_policy_pack(const struct cp_policy *p, unsigned char *buf, size_t size)
{
	struct writer w = {buf, size, CP_PACK_HEADER};
	put(&w, (uint32_t)p->version, 4);
	put(&w, p->dry_run, 1);
	put(&w, p->sigpipe, 1);
	put(&w, p->exit_wait_ms, 4);
	put(&w, p->max_draining, 4);
	put(&w, p->log.target, 1);
	put_string(&w, p->log.path);
	put(&w, p->log.format, 1);
	put(&w, p->log.level, 1);
	put(&w, p->log.rate, 4);
	put(&w, p->n_rules, 4);
	for (size_t i = 0; i < p->n_rules; i++)
		put_rule(&w, &p->rules[i]);
	if (w.len - CP_PACK_HEADER > UINT32_MAX)
		return 0;
	if (w.len <= size)
		cp_pack_seal(buf, w.len - CP_PACK_HEADER);
	return w.len;
}

/* ---- unpacking: a reader that stops at the first thing out of place ---- */

struct reader {
	const unsigned char *at, *end;
	bool ok;
	/* the caller's memory (unpack_in), taken from the front; NULL: calloc */
	unsigned char *mem;
	size_t mem_size, mem_used;
};

/* n zeroed bytes for the policy, or NULL (r->ok then false) */
static void *take(struct reader *r, size_t n)
{
	void *p;
	if (r->mem == NULL) {
		p = calloc(1, n);
	} else {
		size_t at = r->mem_used + (size_t)(-(uintptr_t)(r->mem + r->mem_used) & 7); /* 8-aligned */
		p = at <= r->mem_size && n <= r->mem_size - at ? r->mem + at : NULL;
		if (p != NULL) {
			memset(p, 0, n);
			r->mem_used = at + n;
		}
	}
	if (p == NULL)
		r->ok = false;
	return p;
}

static uint32_t get(struct reader *r, int bytes)
{
	if (!r->ok || (size_t)(r->end - r->at) < (size_t)bytes) {
		r->ok = false;
		return 0;
	}
	uint32_t v = (uint32_t)get_le(r->at, bytes);
	r->at += bytes;
	return v;
}

/* a value that must be at most max (enums, flags) */
static uint32_t get_max(struct reader *r, int bytes, uint32_t max)
{
	uint32_t v = get(r, bytes);
	if (v > max)
		r->ok = false;
	return v;
}

static bool get_bool(struct reader *r)
{
	return get_max(r, 1, 1) != 0;
}

/* NULL for the absent string, and when it is wrong (r->ok then false); no NUL inside */
static char *get_string(struct reader *r, bool may_be_absent)
{
	uint32_t n = get(r, 4);
	if (!r->ok || (n == UINT32_MAX && may_be_absent))
		return NULL;
	if (n > STRING_MAX || (size_t)(r->end - r->at) < n || memchr(r->at, '\0', n) != NULL) {
		r->ok = false;
		return NULL;
	}
	char *s = take(r, (size_t)n + 1);
	if (s == NULL)
		return NULL;
	memcpy(s, r->at, n);
	s[n] = '\0';
	r->at += n;
	return s;
}

/* a count of items of item_size bytes each, at most max, that the input can hold */
static uint32_t get_count(struct reader *r, uint32_t max, size_t item_size)
{
	uint32_t n = get(r, 4);
	if (n > max || (size_t)(r->end - r->at) / item_size < n)
		r->ok = false;
	return r->ok ? n : 0;
}

static void get_ports(struct reader *r, struct cp_port_range **out, size_t *count)
{
	uint32_t n = get_count(r, LIST_MAX, 4);
	if (n == 0)
		return;
	if ((*out = take(r, n * sizeof **out)) == NULL)
		return;
	*count = n;
	for (uint32_t i = 0; i < n; i++) {
		(*out)[i].lo = (uint16_t)get(r, 2);
		(*out)[i].hi = (uint16_t)get(r, 2);
		if ((*out)[i].lo == 0 || (*out)[i].lo > (*out)[i].hi)
			r->ok = false;
	}
}

/* what cp_parse_cidr gives: family 4 or 6, the prefix in range, no host bits, IPv4 in the
 * first four bytes */
static bool cidr_ok(const struct cp_cidr *c)
{
	unsigned bits = c->addr.family == 4 ? 32 : c->addr.family == 6 ? 128 : 0;
	if (bits == 0 || c->prefix > bits)
		return false;
	for (unsigned b = c->prefix; b < 128; b++)
		if (c->addr.bytes[b / 8] & (0x80u >> (b % 8)))
			return false;
	return true;
}

static void get_cidrs(struct reader *r, struct cp_cidr **out, size_t *count)
{
	uint32_t n = get_count(r, LIST_MAX, 18);
	if (n == 0)
		return;
	if ((*out = take(r, n * sizeof **out)) == NULL)
		return;
	*count = n;
	for (uint32_t i = 0; i < n && r->ok; i++) {
		struct cp_cidr *c = &(*out)[i];
		c->addr.family = (uint8_t)get(r, 1);
		if ((size_t)(r->end - r->at) < sizeof c->addr.bytes) {
			r->ok = false;
			break;
		}
		memcpy(c->addr.bytes, r->at, sizeof c->addr.bytes);
		r->at += sizeof c->addr.bytes;
		c->prefix = (uint8_t)get(r, 1);
		if (!cidr_ok(c))
			r->ok = false;
	}
}

/* the names the loader gives: 1 to 64 of [A-Za-z0-9._-] (tested by hand: strspn would be one
 * more block of the C library's code read at every start that unpacks a policy) */
static bool name_ok(const char *s)
{
	size_t n = 0;
	for (; s[n] != '\0'; n++) {
		char c = s[n];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
		      c == '_' || c == '.'))
			return false;
	}
	return n >= 1 && n <= 64;
}

static void get_rule(struct reader *r, struct cp_rule *rule)
{
	struct cp_match *m = &rule->match;
	rule->name = get_string(r, false);
	if (rule->name != NULL && !name_ok(rule->name))
		r->ok = false;
	m->role = (enum cp_role)get_max(r, 1, CP_ROLE_CLIENT);
	get_ports(r, &m->local_ports, &m->n_local_ports);
	get_ports(r, &m->peer_ports, &m->n_peer_ports);
	get_cidrs(r, &m->local, &m->n_local);
	get_cidrs(r, &m->peer, &m->n_peer);
	m->program = get_string(r, true);
	if (m->program != NULL && strchr(m->program, '/') != NULL)
		r->ok = false;
	rule->action = (enum cp_action)get_max(r, 1, CP_ACTION_RESET);
	rule->on_exit = (enum cp_action)get_max(r, 1, CP_ACTION_RESET);
	rule->drain_timeout_ms = get_max(r, 4, CP_DURATION_MAX_MS);
	rule->drain_max_ms = get_max(r, 4, CP_DURATION_MAX_MS);
	rule->linger_s = get_max(r, 4, CP_DURATION_MAX_MS / 1000);
	rule->keepalive.set = get_bool(r);
	rule->keepalive.idle_s = get_max(r, 4, 32767);
	rule->keepalive.interval_s = get_max(r, 4, 32767);
	rule->keepalive.count = get_max(r, 4, 127);
	rule->user_timeout_set = get_bool(r);
	rule->user_timeout_ms = get_max(r, 4, CP_DURATION_MAX_MS);
	bool lingers = rule->action == CP_ACTION_LINGER || rule->on_exit == CP_ACTION_LINGER;
	const struct cp_keepalive *ka = &rule->keepalive;
	if (rule->drain_timeout_ms == 0 || rule->drain_max_ms == 0 || (lingers && rule->linger_s == 0) ||
	    (!ka->set && (ka->idle_s || ka->interval_s || ka->count)) ||
	    rule->user_timeout_set != (rule->user_timeout_ms != 0))
		r->ok = false;
}

static struct cp_policy *unpack_payload(struct reader *r, const char *source)
{
	struct cp_policy *p = take(r, sizeof *p);
	if (p == NULL)
		return NULL;
	p->version = (int)get(r, 4);
	p->dry_run = get_bool(r);
	p->sigpipe = (enum cp_sigpipe)get_max(r, 1, CP_SIGPIPE_IGNORE);
	p->exit_wait_ms = get_max(r, 4, CP_DURATION_MAX_MS);
	p->max_draining = get_max(r, 4, 1000000);
	p->log.target = (enum cp_log_target)get_max(r, 1, CP_LOG_FILE);
	p->log.path = get_string(r, true);
	p->log.format = (enum cp_log_format)get_max(r, 1, CP_FORMAT_JSON);
	p->log.level = (enum cp_log_level)get_max(r, 1, CP_LEVEL_DEBUG);
	p->log.rate = get_max(r, 4, 1000000);
	if (p->version != CP_POLICY_VERSION ||
	    (p->log.target == CP_LOG_FILE) != (p->log.path != NULL && p->log.path[0] == '/') ||
	    (p->log.path != NULL && p->log.target != CP_LOG_FILE))
		r->ok = false;
	/* the smallest rule is 58 bytes: a count the input cannot hold is refused before memory is taken */
	uint32_t n = get_count(r, RULES_MAX, 58);
	if (n > 0 && (p->rules = take(r, n * sizeof *p->rules)) == NULL)
		r->ok = false;
	else
		p->n_rules = n;
	for (size_t i = 0; i < p->n_rules && r->ok; i++)
		get_rule(r, &p->rules[i]);
	if (r->ok && r->at != r->end)
		r->ok = false; /* bytes left over: not what was packed */
	if (r->ok && (p->source = take(r, strlen(source) + 1)) != NULL)
		strcpy(p->source, source);
	if (!r->ok || p->source == NULL) {
		if (r->mem == NULL) /* (the caller's memory holds no pointer of the allocator's) */
			cp_policy_free(p);
		return NULL;
	}
	return p;
}

static struct cp_policy *unpack(const unsigned char *buf, size_t len, const char *source, void *mem,
				size_t mem_size)
{
	if (len < CP_PACK_HEADER || memcmp(buf, CP_PACK_MAGIC, 8) != 0 ||
	    get_le(buf + 8, 4) != CP_PACK_FORMAT)
		return NULL;
	uint64_t payload = get_le(buf + CP_PACK_AT_LENGTH, 4);
	if (payload != len - CP_PACK_HEADER ||
	    get_le(buf + CP_PACK_AT_SUM, 8) != cp_pack_checksum(buf + CP_PACK_HEADER, (size_t)payload))
		return NULL;
	struct reader r = {buf + CP_PACK_HEADER, buf + len, true, mem, mem_size, 0};
	return unpack_payload(&r, source);
}

struct cp_policy *cp_policy_unpack(const unsigned char *buf, size_t len, const char *source)
{
	return unpack(buf, len, source, NULL, 0);
}

struct cp_policy *cp_policy_unpack_in(const unsigned char *buf, size_t len, const char *source, void *mem,
				      size_t size)
{
	return mem != NULL ? unpack(buf, len, source, mem, size) : NULL;
}
