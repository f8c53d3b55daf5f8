/* The compiled policy as bytes (policy/pack.c), as the policy cache stores it: every key packs
 * and unpacks to the same policy; a truncated, torn or altered packing, and a packing of a value
 * the loader never gives, unpack to no policy at all. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "policy/pack.h"
#include "policy/policy.h"

static struct cp_policy *load_ok(const char *text)
{
	struct cp_diag d;
	struct cp_policy *p = cp_policy_load_string(text, strlen(text), "t.yaml", &d);
	if (!p) {
		cp_diag_print(&d, stderr);
		fail_msg("policy rejected:\n%s", text);
	}
	return p;
}

static unsigned char *pack(const struct cp_policy *p, size_t *len)
{
	*len = cp_policy_pack(p, NULL, 0);
	assert_true(*len >= CP_PACK_HEADER);
	unsigned char *buf = malloc(*len);
	assert_non_null(buf);
	assert_int_equal(cp_policy_pack(p, buf, *len), *len);
	return buf;
}

static char *dump(const struct cp_policy *p)
{
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);
	cp_policy_dump(p, f);
	fclose(f);
	return text;
}

/* Every key of closepolicy.yaml(5), each with a value other than its default somewhere. */
static const char *const policies[] = {
	"version: 1\n",
	"version: 1\ndry_run: true\nsigpipe: ignore\nexit_wait: 2500ms\nmax_draining: 77\n",
	"version: 1\nlog: {target: /var/log/cp.log, format: json, level: debug, rate: 99}\n",
	"version: 1\nlog: {target: syslog, level: warn}\n",
	"version: 1\nrules:\n  - {}\n  - action: graceful\n",
	"version: 1\nrules:\n"
	"  - name: web.front_1\n"
	"    match:\n"
	"      role: server\n"
	"      local_port: [80, \"8000-8099\", 65535]\n"
	"      peer_port: \"1-1024\"\n"
	"      local: [127.0.0.1, \"10.0.0.0/8\", \"::1\", \"fe80::/10\", \"::ffff:192.168.1.0/120\", \"0.0.0.0/0\"]\n"
	"      peer: \"2001:db8::/32\"\n"
	"      program: \"nginx*\"\n"
	"    action: linger\n"
	"    linger: 7s\n"
	"    on_exit: reset\n"
	"    drain_timeout: 250ms\n"
	"    drain_max: 2m\n"
	"    keepalive: {idle: 60s, interval: 5s, count: 4}\n"
	"    user_timeout: 30s\n"
	"  - name: clients\n"
	"    match: {role: client, program: \"w?et [a-z]*\"}\n"
	"    action: reset\n"
	"    on_exit: linger\n"
	"    linger: 1s\n"
	"    keepalive: {}\n",
	"version: 1\nrules:\n  - {action: passthrough, linger: 3s, keepalive: {count: 127}}\n",
};

static void test_round_trip(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof policies / sizeof *policies; i++) {
		struct cp_policy *p = load_ok(policies[i]);
		size_t len;
		unsigned char *buf = pack(p, &len);
		struct cp_policy *q = cp_policy_unpack(buf, len, "other.yaml");
		if (q == NULL)
			fail_msg("policy %zu: its packing did not unpack", i);
		assert_string_equal(q->source, "other.yaml");
		char *a = dump(p), *b = dump(q);
		if (strcmp(a, b) != 0)
			fail_msg("policy %zu: unpacked as\n%s\nnot\n%s", i, b, a);
		size_t len2;
		unsigned char *again = pack(q, &len2); /* the one packing of a policy */
		assert_int_equal(len2, len);
		assert_memory_equal(again, buf, len);
		free(a);
		free(b);
		free(again);
		free(buf);
		cp_policy_free(p);
		cp_policy_free(q);
	}
}

/* Unpacked into the caller's memory (the shim's start-up): the same policy, every part of it
 * inside that memory, wherever it starts (aligned or not); memory one byte too small for it
 * gives no policy at all, and the malloc'ed unpacking still does. */
static bool inside(const void *p, const unsigned char *mem, size_t size)
{
	return p == NULL || ((const unsigned char *)p >= mem && (const unsigned char *)p < mem + size);
}

static size_t parts_outside(const struct cp_policy *q, const unsigned char *mem, size_t size)
{
	size_t out = !inside(q, mem, size) + !inside(q->rules, mem, size) + !inside(q->log.path, mem, size) +
		     !inside(q->source, mem, size);
	for (size_t i = 0; i < q->n_rules; i++) {
		const struct cp_rule *r = &q->rules[i];
		out += !inside(r->name, mem, size) + !inside(r->match.program, mem, size) +
		       !inside(r->match.local_ports, mem, size) + !inside(r->match.peer_ports, mem, size) +
		       !inside(r->match.local, mem, size) + !inside(r->match.peer, mem, size);
	}
	return out;
}

static void test_unpack_in_memory(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof policies / sizeof *policies; i++) {
		struct cp_policy *p = load_ok(policies[i]);
		size_t len;
		unsigned char *buf = pack(p, &len);
		char *want = dump(p);
		unsigned char *mem = malloc(8192 + 1);
		size_t need = 0;
		for (size_t shift = 0; shift < 2; shift++) { /* 8-aligned, then not */
			struct cp_policy *q = cp_policy_unpack_in(buf, len, "other.yaml", mem + shift, 8192);
			if (q == NULL)
				fail_msg("policy %zu: not unpacked into 8 KiB", i);
			assert_int_equal(parts_outside(q, mem + shift, 8192), 0);
			assert_int_equal((uintptr_t)q % 8, 0);
			assert_int_equal((uintptr_t)q->rules % 8, 0);
			assert_string_equal(q->source, "other.yaml");
			char *got = dump(q);
			assert_string_equal(got, want);
			free(got);
			size_t len2;
			unsigned char *again = pack(q, &len2);
			assert_int_equal(len2, len);
			assert_memory_equal(again, buf, len);
			free(again);
		}
		/* the least memory that holds it, found from above; one byte less holds nothing */
		for (need = 8192; need > 0 && cp_policy_unpack_in(buf, len, "other.yaml", mem, need - 1) != NULL; need--)
			;
		assert_true(need > sizeof(struct cp_policy));
		assert_null(cp_policy_unpack_in(buf, len, "other.yaml", mem, need - 1));
		assert_null(cp_policy_unpack_in(buf, len, "other.yaml", NULL, 8192));
		struct cp_policy *q = cp_policy_unpack(buf, len, "other.yaml");
		assert_non_null(q);
		cp_policy_free(q);
		free(want);
		free(mem);
		free(buf);
		cp_policy_free(p);
	}
}

/* A buffer too small is told the size and left without a packing. */
static void test_small_buffer(void **state)
{
	(void)state;
	struct cp_policy *p = load_ok(policies[5]);
	size_t len = cp_policy_pack(p, NULL, 0);
	unsigned char *buf = calloc(1, len);
	assert_int_equal(cp_policy_pack(p, buf, len - 1), len);
	assert_null(cp_policy_unpack(buf, len, "t"));
	free(buf);
	cp_policy_free(p);
}

/* Every truncation, every byte changed: a torn or damaged cache file. */
static void test_truncated_and_corrupt(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof policies / sizeof *policies; i++) {
		struct cp_policy *p = load_ok(policies[i]);
		size_t len;
		unsigned char *buf = pack(p, &len);
		static _Alignas(8) unsigned char mem[8192];
		for (size_t cut = 0; cut < len; cut++)
			if (cp_policy_unpack(buf, cut, "t") != NULL || cp_policy_unpack_in(buf, cut, "t", mem, sizeof mem) != NULL)
				fail_msg("policy %zu cut to %zu of %zu bytes unpacked", i, cut, len);
		for (size_t at = 0; at < len; at++)
			for (int bit = 0; bit < 8; bit++) {
				buf[at] ^= (unsigned char)(1u << bit);
				if (cp_policy_unpack(buf, len, "t") != NULL || cp_policy_unpack_in(buf, len, "t", mem, sizeof mem) != NULL)
					fail_msg("policy %zu with byte %zu changed unpacked", i, at);
				buf[at] ^= (unsigned char)(1u << bit);
			}
		unsigned char *longer = malloc(len + 1); /* a byte more, the header unchanged */
		memcpy(longer, buf, len);
		longer[len] = 0;
		assert_null(cp_policy_unpack(longer, len + 1, "t"));
		free(longer);
		free(buf);
		cp_policy_free(p);
	}
}

/* Values the loader never gives, packed with a right checksum: refused all the same. */
struct bad_value {
	const char *what;
	void (*spoil)(struct cp_policy *p);
};

static struct cp_rule *r0(struct cp_policy *p) { return &p->rules[0]; }
static void version_2(struct cp_policy *p) { p->version = 2; }
static void sigpipe_3(struct cp_policy *p) { p->sigpipe = (enum cp_sigpipe)3; }
static void exit_wait_huge(struct cp_policy *p) { p->exit_wait_ms = 0x80000000u; }
static void max_draining_huge(struct cp_policy *p) { p->max_draining = 1000001; }
static void target_9(struct cp_policy *p) { p->log.target = (enum cp_log_target)9; }
static void file_without_path(struct cp_policy *p) { p->log.target = CP_LOG_FILE; }
static void path_without_file(struct cp_policy *p) { p->log.path = strdup("/var/log/x"); }
static void relative_path(struct cp_policy *p) { p->log.target = CP_LOG_FILE; p->log.path = strdup("x.log"); }
static void format_2(struct cp_policy *p) { p->log.format = (enum cp_log_format)2; }
static void level_3(struct cp_policy *p) { p->log.level = (enum cp_log_level)3; }
static void rate_huge(struct cp_policy *p) { p->log.rate = 1000001; }
static void empty_name(struct cp_policy *p) { r0(p)->name[0] = '\0'; }
static void name_with_slash(struct cp_policy *p) { r0(p)->name[0] = '/'; }
static void long_name(struct cp_policy *p)
{
	free(r0(p)->name);
	r0(p)->name = calloc(1, 66);
	memset(r0(p)->name, 'a', 65);
}
static void no_name(struct cp_policy *p) { free(r0(p)->name); r0(p)->name = NULL; }
static void role_3(struct cp_policy *p) { r0(p)->match.role = (enum cp_role)3; }
static void port_0(struct cp_policy *p) { r0(p)->match.local_ports[0].lo = 0; }
static void ports_reversed(struct cp_policy *p) { r0(p)->match.local_ports[0].lo = 90; r0(p)->match.local_ports[0].hi = 80; }
static void family_5(struct cp_policy *p) { r0(p)->match.peer[0].addr.family = 5; }
static void prefix_33(struct cp_policy *p) { r0(p)->match.peer[0].prefix = 33; }
static void host_bits(struct cp_policy *p) { r0(p)->match.peer[0].addr.bytes[3] = 1; }
static void v4_past_4_bytes(struct cp_policy *p) { r0(p)->match.peer[0].addr.bytes[9] = 1; }
static void program_with_slash(struct cp_policy *p) { r0(p)->match.program = strdup("/bin/x"); }
static void action_4(struct cp_policy *p) { r0(p)->action = (enum cp_action)4; }
static void on_exit_200(struct cp_policy *p) { r0(p)->on_exit = (enum cp_action)200; }
static void linger_without_time(struct cp_policy *p) { r0(p)->action = CP_ACTION_LINGER; }
static void drain_timeout_0(struct cp_policy *p) { r0(p)->drain_timeout_ms = 0; }
static void drain_max_0(struct cp_policy *p) { r0(p)->drain_max_ms = 0; }
static void keepalive_unset_with_idle(struct cp_policy *p) { r0(p)->keepalive.idle_s = 5; }
static void keepalive_count_128(struct cp_policy *p) { r0(p)->keepalive.set = true; r0(p)->keepalive.count = 128; }
static void keepalive_idle_huge(struct cp_policy *p) { r0(p)->keepalive.set = true; r0(p)->keepalive.idle_s = 32768; }
static void user_timeout_set_0(struct cp_policy *p) { r0(p)->user_timeout_set = true; }
static void user_timeout_unset(struct cp_policy *p) { r0(p)->user_timeout_ms = 5; }
static void too_many_ports(struct cp_policy *p)
{
	struct cp_match *m = &r0(p)->match;
	m->local_ports = realloc(m->local_ports, 1025 * sizeof *m->local_ports);
	for (size_t i = 0; i < 1025; i++)
		m->local_ports[i] = (struct cp_port_range){80, 80};
	m->n_local_ports = 1025;
}
static void too_many_rules(struct cp_policy *p)
{
	p->rules = realloc(p->rules, (CP_MATCHER_MAX_RULES + 1) * sizeof *p->rules);
	for (size_t i = 1; i <= CP_MATCHER_MAX_RULES; i++)
		p->rules[i] = (struct cp_rule){.name = strdup("r"), .drain_timeout_ms = 1, .drain_max_ms = 1};
	p->n_rules = CP_MATCHER_MAX_RULES + 1;
}

static const struct bad_value bad_values[] = {
	{"version 2", version_2},
	{"sigpipe 3", sigpipe_3},
	{"exit_wait past the longest duration", exit_wait_huge},
	{"max_draining past 1000000", max_draining_huge},
	{"log target 9", target_9},
	{"a log file without a path", file_without_path},
	{"a log path without the file target", path_without_file},
	{"a relative log path", relative_path},
	{"log format 2", format_2},
	{"log level 3", level_3},
	{"log rate past 1000000", rate_huge},
	{"an empty rule name", empty_name},
	{"a rule name with /", name_with_slash},
	{"a rule name of 65 characters", long_name},
	{"a rule without a name", no_name},
	{"role 3", role_3},
	{"port 0", port_0},
	{"a port range high to low", ports_reversed},
	{"address family 5", family_5},
	{"an IPv4 prefix of 33", prefix_33},
	{"host bits past the prefix", host_bits},
	{"an IPv4 address with bytes past its fourth", v4_past_4_bytes},
	{"a program glob with /", program_with_slash},
	{"action 4", action_4},
	{"on_exit 200", on_exit_200},
	{"linger without a time", linger_without_time},
	{"drain_timeout 0", drain_timeout_0},
	{"drain_max 0", drain_max_0},
	{"keepalive values without keepalive", keepalive_unset_with_idle},
	{"keepalive count 128", keepalive_count_128},
	{"keepalive idle past 32767 s", keepalive_idle_huge},
	{"user_timeout set to 0", user_timeout_set_0},
	{"a user_timeout not set", user_timeout_unset},
	{"1025 ports in one condition", too_many_ports},
	{"4097 rules", too_many_rules},
};

static void test_bad_values(void **state)
{
	(void)state;
	static const char base[] = "version: 1\nrules:\n"
				   "  - {name: a, match: {local_port: 80, peer: 10.0.0.0/8}, action: graceful}\n";
	struct cp_policy *good = load_ok(base);
	size_t len;
	unsigned char *buf = pack(good, &len);
	struct cp_policy *q = cp_policy_unpack(buf, len, "t");
	assert_non_null(q); /* the base itself is fine */
	cp_policy_free(q);
	free(buf);
	cp_policy_free(good);
	for (size_t i = 0; i < sizeof bad_values / sizeof *bad_values; i++) {
		struct cp_policy *p = load_ok(base);
		bad_values[i].spoil(p);
		buf = pack(p, &len);
		static _Alignas(8) unsigned char mem[65536];
		if ((q = cp_policy_unpack(buf, len, "t")) != NULL ||
		    cp_policy_unpack_in(buf, len, "t", mem, sizeof mem) != NULL)
			fail_msg("%s: unpacked", bad_values[i].what);
		free(buf);
		cp_policy_free(p);
	}
}

/* Another format's packing, or another magic, sealed right: refused. */
static void test_foreign(void **state)
{
	(void)state;
	struct cp_policy *p = load_ok(policies[1]);
	size_t len;
	unsigned char *buf = pack(p, &len);
	buf[8] = CP_PACK_FORMAT + 1;
	assert_null(cp_policy_unpack(buf, len, "t"));
	buf[8] = CP_PACK_FORMAT;
	buf[0] = 'X';
	assert_null(cp_policy_unpack(buf, len, "t"));
	buf[0] = CP_PACK_MAGIC[0]; /* and back: it unpacks again */
	unsigned char *longer = malloc(len + 1); /* a byte past the last rule, sealed with it */
	memcpy(longer, buf, len);
	longer[len] = 0;
	cp_pack_seal(longer, len + 1 - CP_PACK_HEADER);
	assert_null(cp_policy_unpack(longer, len + 1, "t"));
	free(longer);
	cp_policy_free(p);
	p = cp_policy_unpack(buf, len, "t");
	assert_non_null(p);
	free(buf);
	cp_policy_free(p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_unpack_in_memory),
		cmocka_unit_test(test_small_buffer),
		cmocka_unit_test(test_truncated_and_corrupt),
		cmocka_unit_test(test_bad_values),
		cmocka_unit_test(test_foreign),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
