/* The policy as YAML with every default written out: what `closepolicy check` prints,
 * and valid input for the loader (tests load it back). */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <sys/socket.h>

static void put_duration(FILE *out, uint32_t ms)
{
	if (ms >= 60000 && ms % 60000 == 0)
		fprintf(out, "%um", ms / 60000);
	else if (ms % 1000 == 0)
		fprintf(out, "%us", ms / 1000);
	else
		fprintf(out, "%ums", ms);
}

/* A YAML double-quoted scalar; control characters escaped, or a line break in a glob would be
 * folded into a space when the dump is read back. */
static void put_quoted(FILE *out, const char *s)
{
	fputc('"', out);
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\')
			fprintf(out, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			fprintf(out, "\\x%02x", c);
		else
			fputc(c, out);
	}
	fputc('"', out);
}

static void put_ports(FILE *out, const char *key, const struct cp_port_range *r, size_t n)
{
	if (!n)
		return;
	fprintf(out, "      %s: [", key);
	for (size_t i = 0; i < n; i++) {
		if (r[i].lo == r[i].hi)
			fprintf(out, "%s%u", i ? ", " : "", r[i].lo);
		else
			fprintf(out, "%s\"%u-%u\"", i ? ", " : "", r[i].lo, r[i].hi);
	}
	fputs("]\n", out);
}

static void put_cidrs(FILE *out, const char *key, const struct cp_cidr *c, size_t n)
{
	char text[INET6_ADDRSTRLEN];
	if (!n)
		return;
	fprintf(out, "      %s: [", key);
	for (size_t i = 0; i < n; i++) {
		inet_ntop(c[i].addr.family == 4 ? AF_INET : AF_INET6, c[i].addr.bytes, text, sizeof text);
		fprintf(out, "%s\"%s/%u\"", i ? ", " : "", text, c[i].prefix);
	}
	fputs("]\n", out);
}

static void put_rule(FILE *out, const struct cp_rule *r)
{
	const struct cp_match *m = &r->match;
	fprintf(out, "  - name: %s\n    match:\n      role: %s\n", r->name, cp_role_name(m->role));
	put_ports(out, "local_port", m->local_ports, m->n_local_ports);
	put_ports(out, "peer_port", m->peer_ports, m->n_peer_ports);
	put_cidrs(out, "local", m->local, m->n_local);
	put_cidrs(out, "peer", m->peer, m->n_peer);
	if (m->program) {
		fputs("      program: ", out);
		put_quoted(out, m->program);
		fputc('\n', out);
	}
	fprintf(out, "    action: %s\n    drain_timeout: ", cp_action_name(r->action));
	put_duration(out, r->drain_timeout_ms);
	fputs("\n    drain_max: ", out);
	put_duration(out, r->drain_max_ms);
	fputc('\n', out);
	if (r->linger_s)
		fprintf(out, "    linger: %us\n", r->linger_s);
	fprintf(out, "    on_exit: %s\n", cp_action_name(r->on_exit));
	if (r->keepalive.set) {
		fputs("    keepalive:", out);
		if (!r->keepalive.idle_s && !r->keepalive.interval_s && !r->keepalive.count)
			fputs(" {}", out);
		fputc('\n', out);
		if (r->keepalive.idle_s)
			fprintf(out, "      idle: %us\n", r->keepalive.idle_s);
		if (r->keepalive.interval_s)
			fprintf(out, "      interval: %us\n", r->keepalive.interval_s);
		if (r->keepalive.count)
			fprintf(out, "      count: %u\n", r->keepalive.count);
	}
	if (r->user_timeout_set) {
		fputs("    user_timeout: ", out);
		put_duration(out, r->user_timeout_ms);
		fputc('\n', out);
	}
}

void cp_policy_dump(const struct cp_policy *p, FILE *out)
{
	fprintf(out, "version: %d\ndry_run: %s\nsigpipe: %s\nexit_wait: ", p->version,
		p->dry_run ? "true" : "false", p->sigpipe == CP_SIGPIPE_IGNORE ? "ignore" : "log");
	put_duration(out, p->exit_wait_ms);
	fprintf(out, "\nmax_draining: %u\nlog:\n  target: ", p->max_draining);
	if (p->log.target == CP_LOG_FILE)
		put_quoted(out, p->log.path);
	else
		fputs(p->log.target == CP_LOG_SYSLOG ? "syslog" : "stderr", out);
	fprintf(out, "\n  format: %s\n  level: %s\n  rate: %u\n", p->log.format == CP_FORMAT_JSON ? "json" : "text",
		cp_level_name(p->log.level), p->log.rate);
	if (!p->n_rules) {
		fputs("rules: []\n", out);
		return;
	}
	fputs("rules:\n", out);
	for (size_t i = 0; i < p->n_rules; i++)
		put_rule(out, &p->rules[i]);
}
