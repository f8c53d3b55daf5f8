/* Matching: each condition alone and combined, IPv4/IPv6/mapped, lists and ranges,
 * first match wins, no match. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <cmocka.h>

#include "policy/policy.h"

static const char policy_text[] =
	"version: 1\n"
	"rules:\n"
	"  - name: ssh-peer\n"          /* peer port only */
	"    match: {peer_port: 22}\n"
	"  - name: web-server\n"        /* role + local port list/range */
	"    match: {role: server, local_port: [80, \"8000-8099\"]}\n"
	"  - name: lan-client\n"        /* role + peer CIDR list, v4 and v6 */
	"    match: {role: client, peer: [10.0.0.0/8, \"fd00::/8\"]}\n"
	"  - name: local-v6\n"          /* local address, v6 */
	"    match: {local: \"::1\"}\n"
	"  - name: mapped\n"            /* a mapped network in the policy is IPv4 */
	"    match: {peer: \"::ffff:192.168.0.0/112\"}\n"
	"  - name: nginx-only\n"        /* program glob */
	"    match: {program: \"nginx*\", peer_port: \"5000-5001\"}\n"
	"  - name: everything-on-9\n"   /* all conditions at once */
	"    match: {role: server, local_port: 9999, peer_port: 40000, local: 127.0.0.0/8, peer: 127.0.0.2, program: \"srv\"}\n"
	"  - name: shadowed\n"          /* never reached for port 22: first match wins */
	"    match: {peer_port: 22, role: client}\n";

struct match_case {
	const char *what;
	enum cp_role role;
	const char *local, *peer;
	uint16_t local_port, peer_port;
	const char *program;
	const char *want; /* rule name, or NULL for no match */
};

static const struct match_case cases[] = {
	{"peer port alone", CP_ROLE_CLIENT, "127.0.0.1", "127.0.0.1", 50000, 22, "x", "ssh-peer"},
	{"first match wins", CP_ROLE_CLIENT, "10.1.1.1", "10.2.2.2", 50000, 22, "x", "ssh-peer"},
	{"port in list", CP_ROLE_SERVER, "127.0.0.1", "127.0.0.1", 80, 50000, "x", "web-server"},
	{"port at range start", CP_ROLE_SERVER, "127.0.0.1", "127.0.0.1", 8000, 50000, "x", "web-server"},
	{"port at range end", CP_ROLE_SERVER, "127.0.0.1", "127.0.0.1", 8099, 50000, "x", "web-server"},
	{"port past range", CP_ROLE_SERVER, "127.0.0.1", "127.0.0.1", 8100, 50000, "x", NULL},
	{"role mismatch", CP_ROLE_CLIENT, "127.0.0.1", "127.0.0.1", 80, 50000, "x", NULL},
	{"peer v4 in CIDR", CP_ROLE_CLIENT, "127.0.0.1", "10.255.0.1", 50000, 443, "x", "lan-client"},
	{"peer v4 mapped in CIDR", CP_ROLE_CLIENT, "::ffff:127.0.0.1", "::ffff:10.0.0.9", 50000, 443, "x", "lan-client"},
	{"peer v6 in CIDR", CP_ROLE_CLIENT, "::1", "fd12::1", 50000, 443, "x", "lan-client"},
	{"peer outside CIDR", CP_ROLE_CLIENT, "127.0.0.1", "11.0.0.1", 50000, 443, "x", NULL},
	{"peer v6 outside", CP_ROLE_CLIENT, "fe80::2", "fe80::1", 50000, 443, "x", NULL},
	{"local v6", CP_ROLE_SERVER, "::1", "::1", 7000, 50000, "x", "local-v6"},
	{"local v4 is not v6", CP_ROLE_SERVER, "127.0.0.1", "127.0.0.1", 7000, 50000, "x", NULL},
	{"mapped policy, v4 socket", CP_ROLE_SERVER, "127.0.0.1", "192.168.3.4", 7000, 50000, "x", "mapped"},
	{"mapped policy, mapped socket", CP_ROLE_SERVER, "::ffff:127.0.0.1", "::ffff:192.168.3.4", 7000, 50000, "x", "mapped"},
	{"program glob holds", CP_ROLE_CLIENT, "127.0.0.1", "127.0.0.1", 50000, 5001, "nginx-worker", "nginx-only"},
	{"program glob fails", CP_ROLE_CLIENT, "127.0.0.1", "127.0.0.1", 50000, 5001, "apache2", NULL},
	{"all conditions", CP_ROLE_SERVER, "127.0.0.5", "127.0.0.2", 9999, 40000, "srv", "everything-on-9"},
	{"all but peer", CP_ROLE_SERVER, "127.0.0.5", "127.0.0.3", 9999, 40000, "srv", NULL},
	{"all but program", CP_ROLE_SERVER, "127.0.0.5", "127.0.0.2", 9999, 40000, "srv2", NULL},
	{"all but local", CP_ROLE_SERVER, "128.0.0.5", "127.0.0.2", 9999, 40000, "srv", NULL},
	{"all but role", CP_ROLE_CLIENT, "127.0.0.5", "127.0.0.2", 9999, 40000, "srv", NULL},
	{"unknown family", CP_ROLE_CLIENT, NULL, NULL, 50000, 443, "x", NULL},
};

static void to_addr(const char *text, struct cp_addr *a)
{
	memset(a, 0, sizeof *a);
	if (!text)
		return;
	if (inet_pton(AF_INET, text, a->bytes) == 1)
		a->family = 4;
	else if (inet_pton(AF_INET6, text, a->bytes) == 1)
		a->family = 6;
	else
		fail_msg("bad test address %s", text);
}

static void test_match_table(void **state)
{
	(void)state;
	struct cp_diag d;
	struct cp_policy *p = cp_policy_load_string(policy_text, strlen(policy_text), "m.yaml", &d);
	if (!p)
		cp_diag_print(&d, stderr);
	assert_non_null(p);
	static struct cp_matcher m;
	int failures = 0;
	for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
		const struct match_case *c = &cases[i];
		struct cp_socket_facts f = {.role = c->role, .local_port = c->local_port, .peer_port = c->peer_port};
		to_addr(c->local, &f.local);
		to_addr(c->peer, &f.peer);
		cp_matcher_init(&m, p, c->program);
		const struct cp_rule *a = cp_matcher_match(&m, &f);
		const struct cp_rule *b = cp_policy_match(p, c->program, &f);
		const char *got = a ? a->name : NULL;
		if (a != b || (got == NULL) != (c->want == NULL) || (got && strcmp(got, c->want) != 0)) {
			print_error("%s: got %s (uncached %s), want %s\n", c->what, got ? got : "none",
				    b ? b->name : "none", c->want ? c->want : "none");
			failures++;
		}
	}
	cp_policy_free(p);
	assert_int_equal(failures, 0);
}

static void test_no_rules_and_catch_all(void **state)
{
	(void)state;
	struct cp_socket_facts f = {.role = CP_ROLE_SERVER, .local_port = 1, .peer_port = 2};
	to_addr("127.0.0.1", &f.local);
	to_addr("127.0.0.1", &f.peer);
	assert_null(cp_policy_match(cp_policy_default(), "any", &f));

	struct cp_diag d;
	const char *text = "version: 1\nrules:\n  - action: graceful\n";
	struct cp_policy *p = cp_policy_load_string(text, strlen(text), "c.yaml", &d);
	assert_non_null(p);
	const struct cp_rule *r = cp_policy_match(p, NULL, &f);
	assert_non_null(r);
	assert_int_equal(r->action, CP_ACTION_GRACEFUL);
	cp_policy_free(p);
}

static void test_unmap(void **state)
{
	(void)state;
	struct cp_addr a;
	to_addr("::ffff:1.2.3.4", &a);
	cp_addr_unmap(&a);
	assert_int_equal(a.family, 4);
	assert_int_equal(a.bytes[0], 1);
	assert_int_equal(a.bytes[3], 4);
	to_addr("::1", &a);
	cp_addr_unmap(&a);
	assert_int_equal(a.family, 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_match_table),
		cmocka_unit_test(test_no_rules_and_catch_all),
		cmocka_unit_test(test_unmap),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
