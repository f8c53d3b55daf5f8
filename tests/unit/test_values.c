/* Durations, ports and addresses: every accepted form and every kind of bad input. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "policy/policy.h"

struct duration_case {
	const char *text;
	int ok;
	uint32_t ms;
	const char *why; /* substring of the reason when !ok */
};

static const struct duration_case durations[] = {
	{"0", 1, 0, NULL},
	{"5", 1, 5000, NULL},
	{"250ms", 1, 250, NULL},
	{"5s", 1, 5000, NULL},
	{"2m", 1, 120000, NULL},
	{"1.5s", 1, 1500, NULL},
	{"0.25m", 1, 15000, NULL},
	{"0ms", 1, 0, NULL},
	{"2147483647ms", 1, 2147483647u, NULL},
	{"2147483648ms", 0, 0, "too large"},
	{"35791m", 1, 2147460000u, NULL},
	{"35792m", 0, 0, "too large"},
	{"99999999999999999999s", 0, 0, "too large"},
	{"-1s", 0, 0, "negative"},
	{"", 0, 0, "expected a duration"},
	{"s", 0, 0, "expected a duration"},
	{"5h", 0, 0, "unit"},
	{"5 s", 0, 0, "unit"},
	{"1.5", 0, 0, "needs a unit"},
	{"0.0001s", 0, 0, "whole number of milliseconds"},
	{"1e3ms", 0, 0, "unit"},
	{"inf", 0, 0, "expected a duration"},
	{"0x10s", 0, 0, "unit"},
};

static void test_durations(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof durations / sizeof *durations; i++) {
		const struct duration_case *c = &durations[i];
		uint32_t ms = 12345;
		const char *why = NULL;
		int rc = cp_parse_duration(c->text, &ms, &why);
		if (c->ok) {
			if (rc != 0 || ms != c->ms)
				fail_msg("duration \"%s\": rc %d ms %u, want %u", c->text, rc, ms, c->ms);
		} else if (rc == 0 || !why || !strstr(why, c->why)) {
			fail_msg("duration \"%s\": rc %d why \"%s\", want failure with \"%s\"", c->text, rc,
				 why ? why : "", c->why);
		}
	}
}

struct port_case {
	const char *text;
	int ok;
	uint16_t lo, hi;
	const char *why;
};

static const struct port_case ports[] = {
	{"1", 1, 1, 1, NULL},
	{"80", 1, 80, 80, NULL},
	{"65535", 1, 65535, 65535, NULL},
	{"8000-8099", 1, 8000, 8099, NULL},
	{"443-443", 1, 443, 443, NULL},
	{"0", 0, 0, 0, "out of range"},
	{"65536", 0, 0, 0, "out of range"},
	{"99999999999", 0, 0, 0, "out of range"},
	{"90-80", 0, 0, 0, "reversed"},
	{"0-80", 0, 0, 0, "out of range"},
	{"80-", 0, 0, 0, "expected a port"},
	{"-80", 0, 0, 0, "expected a port"},
	{"http", 0, 0, 0, "expected a port"},
	{"80-90-100", 0, 0, 0, "expected a port"},
	{"", 0, 0, 0, "expected a port"},
};

static void test_ports(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof ports / sizeof *ports; i++) {
		const struct port_case *c = &ports[i];
		struct cp_port_range r = {0, 0};
		const char *why = NULL;
		int rc = cp_parse_port_range(c->text, &r, &why);
		if (c->ok) {
			if (rc != 0 || r.lo != c->lo || r.hi != c->hi)
				fail_msg("port \"%s\": rc %d %u-%u", c->text, rc, r.lo, r.hi);
		} else if (rc == 0 || !why || !strstr(why, c->why)) {
			fail_msg("port \"%s\": rc %d why \"%s\", want \"%s\"", c->text, rc, why ? why : "", c->why);
		}
	}
}

struct cidr_case {
	const char *text;
	int ok;
	int family;
	int prefix;
	uint8_t first, second; /* first two bytes after masking */
	const char *why;
};

static const struct cidr_case cidrs[] = {
	{"127.0.0.1", 1, 4, 32, 127, 0, NULL},
	{"10.0.0.0/8", 1, 4, 8, 10, 0, NULL},
	{"10.1.2.3/8", 1, 4, 8, 10, 0, NULL}, /* host bits cleared */
	{"192.168.255.1/12", 1, 4, 12, 192, 160, NULL},
	{"0.0.0.0/0", 1, 4, 0, 0, 0, NULL},
	{"::1", 1, 6, 128, 0, 0, NULL},
	{"fd00::/8", 1, 6, 8, 0xfd, 0, NULL},
	{"fe80::1/10", 1, 6, 10, 0xfe, 0x80, NULL},
	{"::ffff:10.1.2.3", 1, 4, 32, 10, 1, NULL},       /* mapped = IPv4 */
	{"::ffff:192.168.0.0/112", 1, 4, 16, 192, 168, NULL},
	{"::ffff:0:0/80", 1, 6, 80, 0, 0, NULL},           /* wider than the mapped range stays v6 */
	{"10.0.0.0/33", 0, 0, 0, 0, 0, "0..32"},
	{"::/129", 0, 0, 0, 0, 0, "0..128"},
	{"10.0.0.0/", 0, 0, 0, 0, 0, "0..32"},
	{"10.0.0.0/x", 0, 0, 0, 0, 0, "must be a number"},
	{"10.0.0.0/-1", 0, 0, 0, 0, 0, "must be a number"},
	{"10.0.0.256", 0, 0, 0, 0, 0, "unparsable"},
	{"localhost", 0, 0, 0, 0, 0, "unparsable"},
	{"", 0, 0, 0, 0, 0, "expected an IPv4"},
	{"/8", 0, 0, 0, 0, 0, "expected an IPv4"},
	{"[::1]", 0, 0, 0, 0, 0, "unparsable"},
};

static void test_cidrs(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof cidrs / sizeof *cidrs; i++) {
		const struct cidr_case *c = &cidrs[i];
		struct cp_cidr r;
		const char *why = NULL;
		int rc = cp_parse_cidr(c->text, &r, &why);
		if (c->ok) {
			if (rc != 0 || r.addr.family != c->family || r.prefix != c->prefix ||
			    r.addr.bytes[0] != c->first || r.addr.bytes[1] != c->second)
				fail_msg("cidr \"%s\": rc %d family %d prefix %d bytes %u.%u", c->text, rc,
					 r.addr.family, r.prefix, r.addr.bytes[0], r.addr.bytes[1]);
		} else if (rc == 0 || !why || !strstr(why, c->why)) {
			fail_msg("cidr \"%s\": rc %d why \"%s\", want \"%s\"", c->text, rc, why ? why : "", c->why);
		}
	}
}

static void test_names(void **state)
{
	(void)state;
	assert_string_equal(cp_action_name(CP_ACTION_GRACEFUL), "graceful");
	assert_string_equal(cp_action_name(CP_ACTION_RESET), "reset");
	assert_string_equal(cp_role_name(CP_ROLE_CLIENT), "client");
	assert_string_equal(cp_level_name(CP_LEVEL_DEBUG), "debug");
	assert_string_equal(cp_action_name((enum cp_action)42), "?");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_durations),
		cmocka_unit_test(test_ports),
		cmocka_unit_test(test_cidrs),
		cmocka_unit_test(test_names),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
