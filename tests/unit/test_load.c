/* Loading policies: every key with its default and an explicit value, and every kind of error
 * with its exact line and column. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "policy/policy.h"

static struct cp_policy *load(const char *text, struct cp_diag *d)
{
	return cp_policy_load_string(text, strlen(text), "t.yaml", d);
}

static struct cp_policy *load_ok(const char *text)
{
	struct cp_diag d;
	struct cp_policy *p = load(text, &d);
	if (!p) {
		cp_diag_print(&d, stderr);
		fail_msg("policy rejected:\n%s", text);
	}
	return p;
}

static void test_defaults(void **state)
{
	(void)state;
	struct cp_policy *p = load_ok("version: 1\n");
	assert_int_equal(p->version, 1);
	assert_false(p->dry_run);
	assert_int_equal(p->sigpipe, CP_SIGPIPE_LOG);
	assert_int_equal(p->exit_wait_ms, 5000);
	assert_int_equal(p->max_draining, 1024);
	assert_int_equal(p->log.target, CP_LOG_STDERR);
	assert_null(p->log.path);
	assert_int_equal(p->log.format, CP_FORMAT_TEXT);
	assert_int_equal(p->log.level, CP_LEVEL_INFO);
	assert_int_equal(p->log.rate, 0);
	assert_int_equal(p->n_rules, 0);
	assert_string_equal(p->source, "t.yaml");
	cp_policy_free(p);

	p = load_ok("version: 1\nrules:\n  - {}\n  - action: graceful\n");
	assert_int_equal(p->n_rules, 2);
	const struct cp_rule *r = &p->rules[0];
	assert_string_equal(r->name, "rule-1");
	assert_string_equal(p->rules[1].name, "rule-2");
	assert_int_equal(r->match.role, CP_ROLE_ANY);
	assert_int_equal(r->match.n_local_ports + r->match.n_peer_ports + r->match.n_local + r->match.n_peer, 0);
	assert_null(r->match.program);
	assert_int_equal(r->action, CP_ACTION_PASSTHROUGH);
	assert_int_equal(r->on_exit, CP_ACTION_PASSTHROUGH);
	assert_int_equal(p->rules[1].on_exit, CP_ACTION_GRACEFUL); /* on_exit defaults to action */
	assert_int_equal(r->drain_timeout_ms, 5000);
	assert_int_equal(r->drain_max_ms, 30000);
	assert_int_equal(r->linger_s, 0);
	assert_false(r->keepalive.set);
	assert_false(r->user_timeout_set);
	cp_policy_free(p);
}

static const char full[] =
	"version: 1\n"
	"dry_run: true\n"
	"sigpipe: ignore\n"
	"exit_wait: 250ms\n"
	"max_draining: 7\n"
	"log:\n"
	"  target: /var/log/cp.log\n"
	"  format: json\n"
	"  level: debug\n"
	"  rate: 50\n"
	"rules:\n"
	"  - name: web\n"
	"    match:\n"
	"      role: server\n"
	"      local_port: 8080\n"
	"      peer_port: [5432, \"6000-6010\"]\n"
	"      local: 127.0.0.1\n"
	"      peer: [10.0.0.0/8, \"::1\"]\n"
	"      program: \"nginx*\"\n"
	"    action: linger\n"
	"    drain_timeout: 1s\n"
	"    drain_max: 2m\n"
	"    linger: 10s\n"
	"    on_exit: reset\n"
	"    keepalive:\n"
	"      idle: 60s\n"
	"      interval: 10\n"
	"      count: 5\n"
	"    user_timeout: 30s\n";

static void test_every_key_explicit(void **state)
{
	(void)state;
	struct cp_policy *p = load_ok(full);
	assert_true(p->dry_run);
	assert_int_equal(p->sigpipe, CP_SIGPIPE_IGNORE);
	assert_int_equal(p->exit_wait_ms, 250);
	assert_int_equal(p->max_draining, 7);
	assert_int_equal(p->log.target, CP_LOG_FILE);
	assert_string_equal(p->log.path, "/var/log/cp.log");
	assert_int_equal(p->log.format, CP_FORMAT_JSON);
	assert_int_equal(p->log.level, CP_LEVEL_DEBUG);
	assert_int_equal(p->log.rate, 50);
	assert_int_equal(p->n_rules, 1);
	const struct cp_rule *r = &p->rules[0];
	assert_string_equal(r->name, "web");
	assert_int_equal(r->match.role, CP_ROLE_SERVER);
	assert_int_equal(r->match.n_local_ports, 1);
	assert_int_equal(r->match.local_ports[0].lo, 8080);
	assert_int_equal(r->match.n_peer_ports, 2);
	assert_int_equal(r->match.peer_ports[1].lo, 6000);
	assert_int_equal(r->match.peer_ports[1].hi, 6010);
	assert_int_equal(r->match.n_local, 1);
	assert_int_equal(r->match.n_peer, 2);
	assert_int_equal(r->match.peer[1].addr.family, 6);
	assert_string_equal(r->match.program, "nginx*");
	assert_int_equal(r->action, CP_ACTION_LINGER);
	assert_int_equal(r->drain_timeout_ms, 1000);
	assert_int_equal(r->drain_max_ms, 120000);
	assert_int_equal(r->linger_s, 10);
	assert_int_equal(r->on_exit, CP_ACTION_RESET);
	assert_true(r->keepalive.set);
	assert_int_equal(r->keepalive.idle_s, 60);
	assert_int_equal(r->keepalive.interval_s, 10);
	assert_int_equal(r->keepalive.count, 5);
	assert_true(r->user_timeout_set);
	assert_int_equal(r->user_timeout_ms, 30000);
	cp_policy_free(p);

	p = load_ok("version: 1\nlog: {target: syslog}\nrules:\n  - action: reset\n    keepalive: {}\n");
	assert_int_equal(p->log.target, CP_LOG_SYSLOG);
	assert_true(p->rules[0].keepalive.set);
	assert_int_equal(p->rules[0].keepalive.idle_s, 0); /* the kernel's default stays */
	cp_policy_free(p);
}

struct error_case {
	const char *what;
	const char *yaml;
	int line, column;
	const char *message; /* substring */
};

#define V "version: 1\n"
static const struct error_case errors[] = {
	{"unknown key, suggestion", V "rules:\n  - acton: graceful\n", 3, 5, "unknown key acton in a rule: did you mean action?"},
	{"unknown top key", V "rulez: []\n", 2, 1, "did you mean rules?"},
	{"unknown key, no near one", V "colour: red\n", 2, 1, "valid keys: \"version\""},
	{"unknown match key", V "rules:\n  - match: {rol: server}\n", 3, 13, "unknown key rol in match: did you mean role?"},
	{"unknown keepalive key", V "rules:\n  - keepalive: {idel: 5s}\n", 3, 17, "did you mean idle?"},
	{"list where a map belongs", V "log: [stderr]\n", 2, 6, "log: expected a map, got a list"},
	{"value where a map belongs", V "rules:\n  - match: server\n", 3, 12, "match: expected a map, got a single value"},
	{"map where a list belongs", V "rules: {a: 1}\n", 2, 8, "rules: expected a list of rules"},
	{"rule not a map", V "rules:\n  - graceful\n", 3, 5, "each rule must be a map"},
	{"list where a number belongs", V "max_draining: [1]\n", 2, 15, "expected a number, got a list"},
	{"string where a number belongs", V "max_draining: lots\n", 2, 15, "expected a whole number"},
	{"number out of range", V "max_draining: 1000001\n", 2, 15, "out of range 0..1000000"},
	{"log rate not a number", V "log: {rate: fast}\n", 2, 13, "rate: expected a whole number"},
	{"log rate negative", V "log: {rate: -5}\n", 2, 13, "rate"},
	{"log rate out of range", V "log: {rate: 1000001}\n", 2, 13, "out of range 0..1000000"},
	{"log rate a list", V "log:\n  rate: [10]\n", 3, 9, "expected a number, got a list"},
	{"log rate misspelt", V "log: {rat: 10}\n", 2, 7, "did you mean rate?"},
	{"map where a port belongs", V "rules:\n  - match:\n      local_port: {a: 1}\n", 4, 19, "expected a value or a list, got a map"},
	{"port zero", V "rules:\n  - match: {local_port: 0}\n", 3, 25, "port out of range 1..65535"},
	{"port too big", V "rules:\n  - match: {peer_port: 65536}\n", 3, 24, "port out of range"},
	{"port in a list", V "rules:\n  - match:\n      peer_port: [80, 99999]\n", 4, 23, "port out of range"},
	{"reversed range", V "rules:\n  - match: {local_port: \"9-1\"}\n", 3, 25, "reversed port range"},
	{"empty port list", V "rules:\n  - match: {local_port: []}\n", 3, 25, "empty list"},
	{"cidr v4 prefix", V "rules:\n  - match: {peer: 10.0.0.0/33}\n", 3, 19, "CIDR prefix out of range 0..32"},
	{"cidr v6 prefix", V "rules:\n  - match: {local: \"::/200\"}\n", 3, 20, "0..128"},
	{"bad address", V "rules:\n  - match: {peer: 300.1.1.1}\n", 3, 19, "unparsable address"},
	{"program with slash", V "rules:\n  - match: {program: /usr/bin/x}\n", 3, 22, "base name"},
	{"bad duration", V "exit_wait: soon\n", 2, 12, "exit_wait: expected a duration"},
	{"negative duration", V "exit_wait: -1s\n", 2, 12, "cannot be negative"},
	{"duration unit", V "rules:\n  - drain_max: 1h\n", 3, 16, "unknown duration unit"},
	{"duration overflow", V "exit_wait: 99999999999m\n", 2, 12, "too large"},
	{"zero drain_timeout", V "rules:\n  - drain_timeout: 0\n", 3, 20, "must be more than 0"},
	{"unknown action", V "rules:\n  - action: close\n", 3, 13, "unknown value \"close\": expected passthrough, graceful, linger or reset"},
	{"unknown on_exit", V "rules:\n  - on_exit: kill\n", 3, 14, "on_exit: unknown value"},
	{"unknown role", V "rules:\n  - match: {role: both}\n", 3, 19, "expected any, server or client"},
	{"unknown sigpipe", V "sigpipe: die\n", 2, 10, "expected log or ignore"},
	{"unknown log target", V "log: {target: logs/x.log}\n", 2, 15, "absolute file path"},
	{"unknown format", V "log:\n  format: yaml\n", 3, 11, "expected text or json"},
	{"unknown level", V "log:\n  level: error\n", 3, 10, "expected warn, info or debug"},
	{"bad boolean", V "dry_run: perhaps\n", 2, 10, "expected true or false"},
	{"linger missing", V "rules:\n  - action: linger\n", 3, 13, "linger needs a time"},
	{"linger missing for on_exit", V "rules:\n  - on_exit: linger\n", 3, 14, "linger needs a time"},
	{"linger zero", V "rules:\n  - action: linger\n    linger: 0s\n", 4, 13, "give 1s or more"},
	{"linger fraction", V "rules:\n  - action: linger\n    linger: 1500ms\n", 4, 13, "whole seconds"},
	{"keepalive idle zero", V "rules:\n  - keepalive: {idle: 0}\n", 3, 23, "1s..32767s"},
	{"keepalive interval too big", V "rules:\n  - keepalive: {interval: 9h}\n", 3, 27, "unknown duration unit"},
	{"keepalive interval range", V "rules:\n  - keepalive: {interval: 600m}\n", 3, 27, "1s..32767s"},
	{"keepalive count", V "rules:\n  - keepalive: {count: 128}\n", 3, 24, "out of range 1..127"},
	{"keepalive count zero", V "rules:\n  - keepalive: {count: 0}\n", 3, 24, "out of range 1..127"},
	{"user_timeout zero", V "rules:\n  - user_timeout: 0s\n", 3, 19, "must be more than 0"},
	{"missing version", "rules: []\n", 1, 1, "missing required key version"},
	{"unsupported version", "version: 2\n", 1, 10, "unsupported version \"2\""},
	{"version as a list", "version: [1]\n", 1, 10, "version: expected 1, got a list"},
	{"duplicate key", V "sigpipe: log\nsigpipe: ignore\n", 3, 1, "duplicate key sigpipe (first given at line 2)"},
	{"duplicate rule name", V "rules:\n  - name: a\n  - name: a\n", 4, 11, "duplicate rule name \"a\""},
	{"bad rule name", V "rules:\n  - name: \"two words\"\n", 3, 11, "letters, digits"},
	{"missing value", V "sigpipe:\n", 2, 9, "missing value"},
	{"yaml syntax", V "rules: [\n", 3, 1, "YAML syntax error"},
	{"yaml tab", V "log:\n\ttarget: stderr\n", 3, 1, "YAML syntax error"},
	{"yaml bad indent", V "log:\n  target: stderr\n format: json\n", 4, 2, "YAML syntax error"},
	{"empty document", "", 1, 1, "empty policy"},
	{"only comments", "# nothing\n", 1, 1, "empty policy"},
	{"not a map", "- a\n", 1, 1, "must be a map"},
	{"a plain string", "hello\n", 1, 1, "must be a map"},
	{"two documents", V "---\nversion: 1\n", 3, 1, "one YAML document"},
	{"a huge map", V "log: {a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10, k: 11, l: 12, m: 13, n: 14, o: 15, p: 16, q: 17}\n", 2, 6, "17 keys, but only 4 are valid here"},
	{"key not a name", V "[a]: 1\n", 2, 1, "a key must be a plain name"},
};

static void test_errors(void **state)
{
	(void)state;
	int failures = 0;
	for (size_t i = 0; i < sizeof errors / sizeof *errors; i++) {
		const struct error_case *c = &errors[i];
		struct cp_diag d;
		struct cp_policy *p = load(c->yaml, &d);
		char first[512] = "";
		if (d.count)
			cp_diag_format(&d, 0, first, sizeof first);
		if (p || d.count == 0 || d.entries[0].line != c->line || d.entries[0].column != c->column ||
		    !strstr(d.entries[0].message, c->message)) {
			print_error("%s: got %s (%zu errors), want t.yaml:%d:%d: ...%s...\n", c->what,
				    p ? "a policy" : first, d.count, c->line, c->column, c->message);
			cp_policy_free(p);
			failures++;
			continue;
		}
		/* The message is FILE:LINE:COLUMN: message. */
		char prefix[64];
		snprintf(prefix, sizeof prefix, "t.yaml:%d:%d: ", c->line, c->column);
		assert_memory_equal(first, prefix, strlen(prefix));
	}
	assert_int_equal(failures, 0);
}

static void test_all_errors_reported(void **state)
{
	(void)state;
	struct cp_diag d;
	const char *text = "version: 1\nsigpipe: x\nexit_wait: y\nrules:\n  - action: z\n    linger: -1s\n";
	assert_null(load(text, &d));
	assert_int_equal(d.count, 4);
	assert_int_equal(d.entries[0].line, 2);
	assert_int_equal(d.entries[3].line, 6); /* in the file's order */
	assert_false(d.truncated);

	/* A sane cap: many bad rules give CP_DIAG_MAX errors and a note, not thousands. */
	char big[64 * 200] = "version: 1\nrules:\n";
	for (int i = 0; i < 200; i++)
		strcat(big, "  - action: nope\n");
	assert_null(load(big, &d));
	assert_int_equal(d.count, CP_DIAG_MAX);
	assert_true(d.truncated);
	char *out = NULL;
	size_t size = 0;
	FILE *f = open_memstream(&out, &size);
	cp_diag_print(&d, f);
	fclose(f);
	assert_non_null(strstr(out, "too many errors"));
	free(out);
}

static char dir[] = "/tmp/cp-unit-XXXXXX";

static const char *write_file(const char *name, const char *text)
{
	static char path[128];
	snprintf(path, sizeof path, "%s/%s", dir, name);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
	return path;
}

static void test_files(void **state)
{
	(void)state;
	struct cp_diag d;
	char path[160];
	assert_non_null(mkdtemp(dir));

	struct cp_policy *p = cp_policy_load_file(write_file("ok.yaml", full), &d);
	assert_non_null(p);
	assert_int_equal(p->rules[0].linger_s, 10);
	assert_non_null(strstr(p->source, "ok.yaml"));
	cp_policy_free(p);

	assert_null(cp_policy_load_file(write_file("bad.yaml", "version: 1\nsigpipe: no\n"), &d));
	char line[512];
	cp_diag_format(&d, 0, line, sizeof line);
	assert_non_null(strstr(line, "bad.yaml:2:10: sigpipe"));

	snprintf(path, sizeof path, "%s/missing.yaml", dir);
	assert_null(cp_policy_load_file(path, &d));
	cp_diag_format(&d, 0, line, sizeof line);
	assert_non_null(strstr(line, "missing.yaml: cannot open policy: No such file or directory"));

	assert_null(cp_policy_load_file(dir, &d));
	assert_non_null(strstr(d.entries[0].message, "directory"));

	snprintf(path, sizeof path, "%s/fifo", dir);
	assert_int_equal(mkfifo(path, 0600), 0);
	assert_null(cp_policy_load_file(path, &d)); /* must not block */
	assert_non_null(strstr(d.entries[0].message, "not a regular file"));
	unlink(path);

	write_file("empty.yaml", "");
	snprintf(path, sizeof path, "%s/empty.yaml", dir);
	assert_null(cp_policy_load_file(path, &d));
	assert_non_null(strstr(d.entries[0].message, "empty policy"));

	/* Over the size limit: refused, not truncated into a partial policy. */
	snprintf(path, sizeof path, "%s/huge.yaml", dir);
	FILE *f = fopen(path, "w");
	fputs("version: 1\n", f);
	for (int i = 0; i < 120000; i++)
		fputs("# padding\n", f);
	fclose(f);
	assert_null(cp_policy_load_file(path, &d));
	assert_non_null(strstr(d.entries[0].message, "too large"));
	unlink(path);

	if (geteuid() != 0) { /* root reads anything; the check is only meaningful for others */
		snprintf(path, sizeof path, "%s/ok.yaml", dir);
		chmod(path, 0);
		assert_null(cp_policy_load_file(path, &d));
		assert_non_null(strstr(d.entries[0].message, "Permission denied"));
	}
	snprintf(path, sizeof path, "rm -rf %s", dir);
	assert_int_equal(system(path), 0);
}

/* What check prints must load back to the same policy. */
static void test_dump_round_trip(void **state)
{
	(void)state;
	const char *inputs[] = {full, "version: 1\n",
				"version: 1\nrules:\n  - match: {peer: \"::ffff:10.0.0.0/104\", local_port: \"1-65535\"}\n"
				"    action: graceful\n    drain_timeout: 1500ms\n    keepalive: {count: 3}\n",
				/* found by the fuzzer: a line break inside a quoted glob was folded on reload */
				"version: 1\nrules:\n  - match: {program: \"a\\\"b\\\\c\\td\\ne\\x7f\"}\n"};
	for (size_t i = 0; i < sizeof inputs / sizeof *inputs; i++) {
		struct cp_policy *p = load_ok(inputs[i]);
		char *a = NULL, *b = NULL;
		size_t na = 0, nb = 0;
		FILE *f = open_memstream(&a, &na);
		cp_policy_dump(p, f);
		fclose(f);
		struct cp_policy *q = load_ok(a);
		f = open_memstream(&b, &nb);
		cp_policy_dump(q, f);
		fclose(f);
		assert_string_equal(a, b);
		assert_int_equal(p->n_rules, q->n_rules);
		free(a);
		free(b);
		cp_policy_free(p);
		cp_policy_free(q);
	}
}

static void test_builtin_default(void **state)
{
	(void)state;
	const struct cp_policy *p = cp_policy_default();
	assert_int_equal(p->n_rules, 0);
	assert_int_equal(p->sigpipe, CP_SIGPIPE_LOG);
	assert_int_equal(p->log.target, CP_LOG_STDERR);
	assert_int_equal(p->log.format, CP_FORMAT_TEXT);
	assert_int_equal(p->log.level, CP_LEVEL_INFO);
	assert_false(p->dry_run);
	cp_policy_free((struct cp_policy *)p); /* a no-op: the default is static */
	assert_int_equal(cp_policy_default()->version, 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_every_key_explicit),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_all_errors_reported),
		cmocka_unit_test(test_files),
		cmocka_unit_test(test_dump_round_trip),
		cmocka_unit_test(test_builtin_default),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
