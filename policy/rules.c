/* The rules list of a policy: match conditions, actions and their times. */
#include "policy/loader.h"

#include <stdlib.h>
#include <string.h>

static const char *const actions[] = {"passthrough", "graceful", "linger", "reset"};
static const char *const roles[] = {"any", "server", "client"};

/* Kernel limits: MAX_TCP_KEEPIDLE / MAX_TCP_KEEPINTVL 32767 s, MAX_TCP_KEEPCNT 127. */
static void load_keepalive(struct loader *L, const yaml_node_t *rule, struct cp_keepalive *ka)
{
	yaml_node_t *map = ld_section(L, rule, "keepalive", &cp_keys_keepalive), *n;
	uint32_t ms;
	if (!map)
		return;
	ka->set = true;
	if ((n = ld_lookup(L, map, "idle")) && ld_duration(L, n, "idle", &ms)) {
		if (ms < 1000 || ms > 32767000 || ms % 1000)
			ld_fail(L, n, "idle: keepalive counts whole seconds, 1s..32767s");
		else
			ka->idle_s = ms / 1000;
	}
	if ((n = ld_lookup(L, map, "interval")) && ld_duration(L, n, "interval", &ms)) {
		if (ms < 1000 || ms > 32767000 || ms % 1000)
			ld_fail(L, n, "interval: keepalive counts whole seconds, 1s..32767s");
		else
			ka->interval_s = ms / 1000;
	}
	if ((n = ld_lookup(L, map, "count")))
		ld_number(L, n, "count", 1, 127, &ka->count);
}

static void load_match(struct loader *L, const yaml_node_t *rule, struct cp_match *m)
{
	yaml_node_t *map = ld_section(L, rule, "match", &cp_keys_match), *n;
	int i;
	if (!map)
		return;
	if ((n = ld_lookup(L, map, "role")) && (i = ld_word(L, n, "role", roles, 3)) >= 0)
		m->role = (enum cp_role)i;
	if ((n = ld_lookup(L, map, "local_port")))
		ld_ports(L, n, "local_port", &m->local_ports, &m->n_local_ports);
	if ((n = ld_lookup(L, map, "peer_port")))
		ld_ports(L, n, "peer_port", &m->peer_ports, &m->n_peer_ports);
	if ((n = ld_lookup(L, map, "local")))
		ld_addresses(L, n, "local", &m->local, &m->n_local);
	if ((n = ld_lookup(L, map, "peer")))
		ld_addresses(L, n, "peer", &m->peer, &m->n_peer);
	if ((n = ld_lookup(L, map, "program"))) {
		const char *v = ld_scalar(L, n, "program", "a glob on the program's name");
		if (v && strchr(v, '/'))
			ld_fail(L, n, "program: \"%s\" contains /, but it is matched against the "
				      "executable's base name only (e.g. \"nginx*\")", v);
		else if (v)
			m->program = ld_dup_string(L, v);
	}
}

static bool valid_name(const char *s)
{
	if (!*s || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
		      *s == '-' || *s == '_' || *s == '.'))
			return false;
	return true;
}

static void load_rule(struct loader *L, const yaml_node_t *n, size_t index, struct cp_rule *r)
{
	yaml_node_t *v, *action_node, *on_exit_node;
	int i;

	r->drain_timeout_ms = CP_DEFAULT_DRAIN_TIMEOUT_MS;
	r->drain_max_ms = CP_DEFAULT_DRAIN_MAX_MS;
	if (n->type != YAML_MAPPING_NODE) {
		ld_fail(L, n, "rules: each rule must be a map (name, match, action, ...), got %s",
			ld_kind_name(n));
		return;
	}
	ld_check_keys(L, n, "a rule", &cp_keys_rule);
	if ((v = ld_lookup(L, n, "name"))) {
		const char *s = ld_scalar(L, v, "name", "a rule name");
		if (s && !valid_name(s))
			ld_fail(L, v, "name: \"%s\": use 1 to 64 letters, digits, '-', '_' or '.'", s);
		else if (s)
			r->name = ld_dup_string(L, s);
	}
	if (!r->name) {
		char buf[32];
		snprintf(buf, sizeof buf, "rule-%zu", index + 1);
		r->name = ld_dup_string(L, buf);
	}
	load_match(L, n, &r->match);
	if ((action_node = ld_lookup(L, n, "action")) &&
	    (i = ld_word(L, action_node, "action", actions, 4)) >= 0)
		r->action = (enum cp_action)i;
	r->on_exit = r->action;
	if ((on_exit_node = ld_lookup(L, n, "on_exit")) &&
	    (i = ld_word(L, on_exit_node, "on_exit", actions, 4)) >= 0)
		r->on_exit = (enum cp_action)i;
	if ((v = ld_lookup(L, n, "drain_timeout")) && ld_duration(L, v, "drain_timeout", &r->drain_timeout_ms) &&
	    r->drain_timeout_ms == 0)
		ld_fail(L, v, "drain_timeout: must be more than 0 (the silence after which draining stops)");
	if ((v = ld_lookup(L, n, "drain_max")) && ld_duration(L, v, "drain_max", &r->drain_max_ms) &&
	    r->drain_max_ms == 0)
		ld_fail(L, v, "drain_max: must be more than 0 (the longest a graceful close may drain)");
	uint32_t linger_ms = 0;
	yaml_node_t *linger_node = ld_lookup(L, n, "linger");
	if (linger_node && ld_duration(L, linger_node, "linger", &linger_ms)) {
		if (linger_ms == 0 || linger_ms % 1000)
			ld_fail(L, linger_node, "linger: SO_LINGER counts whole seconds: give 1s or more");
		else
			r->linger_s = linger_ms / 1000;
	}
	if (!linger_node && (r->action == CP_ACTION_LINGER || r->on_exit == CP_ACTION_LINGER)) {
		const yaml_node_t *where = r->action == CP_ACTION_LINGER ? action_node : on_exit_node;
		ld_fail(L, where, "linger needs a time: add \"linger: 10s\" to this rule (SO_LINGER seconds, > 0)");
	}
	load_keepalive(L, n, &r->keepalive);
	if ((v = ld_lookup(L, n, "user_timeout")) && ld_duration(L, v, "user_timeout", &r->user_timeout_ms)) {
		if (r->user_timeout_ms == 0)
			ld_fail(L, v, "user_timeout: must be more than 0 (leave it out for the kernel's default)");
		else
			r->user_timeout_set = true;
	}
}

void ld_rules(struct loader *L, const yaml_node_t *root)
{
	struct cp_policy *p = L->policy;
	yaml_node_t *list = ld_lookup(L, root, "rules");
	if (!list || ld_is_null(list))
		return;
	if (list->type != YAML_SEQUENCE_NODE) {
		ld_fail(L, list, "rules: expected a list of rules (each starting with \"- \"), got %s",
			ld_kind_name(list));
		return;
	}
	size_t count = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
	if (count > RULES_MAX) {
		ld_fail(L, list, "rules: %zu rules, the limit is %d", count, RULES_MAX);
		return;
	}
	if (count == 0 || !(p->rules = calloc(count, sizeof *p->rules)))
		return;
	for (size_t i = 0; i < count; i++) {
		yaml_node_t *n = yaml_document_get_node(L->doc, list->data.sequence.items.start[i]);
		p->n_rules = i + 1;
		load_rule(L, n, i, &p->rules[i]);
		for (size_t j = 0; j < i && n->type == YAML_MAPPING_NODE; j++) {
			if (p->rules[i].name && p->rules[j].name && strcmp(p->rules[i].name, p->rules[j].name) == 0) {
				yaml_node_t *name_node = ld_lookup(L, n, "name");
				ld_fail(L, name_node ? name_node : n, "name: duplicate rule name \"%s\" (rule %zu has it too)",
					p->rules[i].name, j + 1);
				break;
			}
		}
	}
}
