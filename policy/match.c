/* Matching a socket's facts against the rules: first match wins. Pure, allocation-free. */
#include "policy/policy.h"

#include <fnmatch.h>
#include <string.h>

static bool port_in(const struct cp_port_range *r, size_t n, uint16_t port)
{
	for (size_t i = 0; i < n; i++)
		if (port >= r[i].lo && port <= r[i].hi)
			return true;
	return false;
}

static bool cidr_holds(const struct cp_cidr *c, const struct cp_addr *a)
{
	if (c->addr.family != a->family)
		return false;
	unsigned full = c->prefix / 8, rest = c->prefix % 8;
	if (memcmp(c->addr.bytes, a->bytes, full) != 0)
		return false;
	if (rest == 0)
		return true;
	uint8_t mask = (uint8_t)(0xff << (8 - rest));
	return (a->bytes[full] & mask) == c->addr.bytes[full];
}

static bool addr_in(const struct cp_cidr *c, size_t n, const struct cp_addr *raw)
{
	struct cp_addr a = *raw;
	cp_addr_unmap(&a);
	for (size_t i = 0; i < n; i++)
		if (cidr_holds(&c[i], &a))
			return true;
	return false;
}

/* Everything but the program, cheapest test first. */
static bool socket_matches(const struct cp_match *m, const struct cp_socket_facts *f)
{
	if (m->role != CP_ROLE_ANY && m->role != f->role)
		return false;
	if (m->n_local_ports && !port_in(m->local_ports, m->n_local_ports, f->local_port))
		return false;
	if (m->n_peer_ports && !port_in(m->peer_ports, m->n_peer_ports, f->peer_port))
		return false;
	if (m->n_local && !addr_in(m->local, m->n_local, &f->local))
		return false;
	if (m->n_peer && !addr_in(m->peer, m->n_peer, &f->peer))
		return false;
	return true;
}

static bool program_matches(const struct cp_match *m, const char *program)
{
	return !m->program || (program && fnmatch(m->program, program, 0) == 0);
}

void cp_matcher_init(struct cp_matcher *m, const struct cp_policy *policy, const char *program)
{
	m->policy = policy;
	/* entries past the policy's rules are never read: not cleared (4 KiB written for nothing) */
	for (size_t i = 0; i < policy->n_rules && i < CP_MATCHER_MAX_RULES; i++)
		m->program_ok[i] = program_matches(&policy->rules[i].match, program);
}

const struct cp_rule *cp_matcher_match(const struct cp_matcher *m, const struct cp_socket_facts *f)
{
	const struct cp_policy *p = m->policy;
	for (size_t i = 0; i < p->n_rules && i < CP_MATCHER_MAX_RULES; i++)
		if (m->program_ok[i] && socket_matches(&p->rules[i].match, f))
			return &p->rules[i];
	return NULL;
}

const struct cp_rule *cp_policy_match(const struct cp_policy *p, const char *program,
				      const struct cp_socket_facts *f)
{
	for (size_t i = 0; i < p->n_rules; i++)
		if (socket_matches(&p->rules[i].match, f) && program_matches(&p->rules[i].match, program))
			return &p->rules[i];
	return NULL;
}

const struct cp_policy *cp_policy_default(void)
{
	static const struct cp_policy builtin = {
		.version = CP_POLICY_VERSION,
		.dry_run = false,
		.sigpipe = CP_SIGPIPE_LOG,
		.exit_wait_ms = CP_DEFAULT_EXIT_WAIT_MS,
		.max_draining = CP_DEFAULT_MAX_DRAINING,
		.log = {.target = CP_LOG_STDERR, .path = NULL, .format = CP_FORMAT_TEXT,
			.level = CP_LEVEL_INFO},
		.n_rules = 0,
		.rules = NULL,
		.source = (char *)"(built-in default)",
	};
	return &builtin;
}
