/* Scalar values of a policy: durations, ports, addresses, and the names of enums. */
#include "policy/policy.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

const char *cp_action_name(enum cp_action a)
{
	static const char *const names[] = {"passthrough", "graceful", "linger", "reset"};
	return (unsigned)a < 4 ? names[a] : "?";
}

const char *cp_role_name(enum cp_role r)
{
	static const char *const names[] = {"any", "server", "client"};
	return (unsigned)r < 3 ? names[r] : "?";
}

const char *cp_level_name(enum cp_log_level l)
{
	static const char *const names[] = {"warn", "info", "debug"};
	return (unsigned)l < 3 ? names[l] : "?";
}

/* A number with an optional fraction, then a unit. Parsed by hand: strtod would accept
 * "inf", hex, exponents and locale-dependent separators, none of which a policy means. */
int cp_parse_duration(const char *text, uint32_t *ms, const char **why)
{
	const char *p = text;
	uint64_t whole = 0, frac = 0, frac_scale = 1;
	int digits = 0;

	while (*p == ' ')
		p++;
	if (*p == '-') {
		*why = "a duration cannot be negative";
		return -1;
	}
	if (*p == '+')
		p++;
	for (; isdigit((unsigned char)*p); p++, digits++) {
		whole = whole * 10 + (uint64_t)(*p - '0');
		if (whole > CP_DURATION_MAX_MS) {
			*why = "duration too large (the longest is 596h, 2147483647ms)";
			return -1;
		}
	}
	if (*p == '.') {
		p++;
		for (; isdigit((unsigned char)*p); p++, digits++) {
			if (frac_scale < 1000000) {
				frac = frac * 10 + (uint64_t)(*p - '0');
				frac_scale *= 10;
			}
		}
	}
	if (digits == 0) {
		*why = "expected a duration such as 250ms, 5s, 2m or a whole number of seconds";
		return -1;
	}
	uint64_t unit;
	if (strcmp(p, "ms") == 0)
		unit = 1;
	else if (strcmp(p, "s") == 0 || *p == '\0')
		unit = 1000;
	else if (strcmp(p, "m") == 0)
		unit = 60000;
	else {
		*why = "unknown duration unit: use ms, s or m (250ms, 5s, 2m)";
		return -1;
	}
	if (*p == '\0' && frac_scale != 1) {
		*why = "a duration with a fraction needs a unit (1.5s, 0.25m)";
		return -1;
	}
	uint64_t total = whole * unit;
	uint64_t frac_ms = frac * unit;
	if (frac_ms % frac_scale != 0) {
		*why = "a duration must be a whole number of milliseconds";
		return -1;
	}
	total += frac_ms / frac_scale;
	if (total > CP_DURATION_MAX_MS) {
		*why = "duration too large (the longest is 596h, 2147483647ms)";
		return -1;
	}
	*ms = (uint32_t)total;
	return 0;
}

static int parse_port(const char *s, const char *end, uint16_t *out, const char **why)
{
	uint32_t v = 0;
	if (s == end) {
		*why = "expected a port number 1..65535";
		return -1;
	}
	for (const char *p = s; p < end; p++) {
		if (!isdigit((unsigned char)*p)) {
			*why = "expected a port number 1..65535, a list of them, or a range \"A-B\"";
			return -1;
		}
		v = v * 10 + (uint32_t)(*p - '0');
		if (v > 65535) {
			*why = "port out of range 1..65535";
			return -1;
		}
	}
	if (v == 0) {
		*why = "port out of range 1..65535";
		return -1;
	}
	*out = (uint16_t)v;
	return 0;
}

int cp_parse_port_range(const char *text, struct cp_port_range *out, const char **why)
{
	const char *end = text + strlen(text);
	const char *dash = strchr(text, '-');

	if (!dash)
		return parse_port(text, end, &out->lo, why) ? -1 : (out->hi = out->lo, 0);
	if (parse_port(text, dash, &out->lo, why) || parse_port(dash + 1, end, &out->hi, why))
		return -1;
	if (out->lo > out->hi) {
		*why = "reversed port range: the first port must not exceed the second";
		return -1;
	}
	return 0;
}

void cp_addr_unmap(struct cp_addr *a)
{
	static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
	if (a->family == 6 && memcmp(a->bytes, mapped, 12) == 0) {
		memmove(a->bytes, a->bytes + 12, 4);
		memset(a->bytes + 4, 0, 12);
		a->family = 4;
	}
}

int cp_parse_cidr(const char *text, struct cp_cidr *out, const char **why)
{
	char host[64];
	const char *slash = strchr(text, '/');
	size_t hlen = slash ? (size_t)(slash - text) : strlen(text);
	long prefix = -1;

	if (hlen == 0 || hlen >= sizeof host) {
		*why = "expected an IPv4 or IPv6 address or CIDR (10.0.0.0/8, ::1, fd00::/8)";
		return -1;
	}
	memcpy(host, text, hlen);
	host[hlen] = '\0';
	memset(out, 0, sizeof *out);
	if (inet_pton(AF_INET, host, out->addr.bytes) == 1)
		out->addr.family = 4;
	else if (inet_pton(AF_INET6, host, out->addr.bytes) == 1)
		out->addr.family = 6;
	else {
		*why = "unparsable address: expected IPv4 (10.0.0.1) or IPv6 (::1), optionally /PREFIX";
		return -1;
	}
	int max = out->addr.family == 4 ? 32 : 128;
	if (slash) {
		const char *p = slash + 1;
		if (!*p || strlen(p) > 3) {
			*why = out->addr.family == 4 ? "CIDR prefix out of range 0..32"
						    : "CIDR prefix out of range 0..128";
			return -1;
		}
		prefix = 0;
		for (; *p; p++) {
			if (!isdigit((unsigned char)*p)) {
				*why = "CIDR prefix must be a number";
				return -1;
			}
			prefix = prefix * 10 + (*p - '0');
		}
		if (prefix > max) {
			*why = out->addr.family == 4 ? "CIDR prefix out of range 0..32"
						    : "CIDR prefix out of range 0..128";
			return -1;
		}
	} else {
		prefix = max;
	}
	/* ::ffff:a.b.c.d/p with p >= 96 is the IPv4 network a.b.c.d/(p-96). */
	if (out->addr.family == 6 && prefix >= 96) {
		struct cp_addr probe = out->addr;
		cp_addr_unmap(&probe);
		if (probe.family == 4) {
			out->addr = probe;
			prefix -= 96;
		}
	}
	out->prefix = (uint8_t)prefix;
	/* Clear host bits so matching is a plain prefix compare. */
	int bytes = out->addr.family == 4 ? 4 : 16;
	for (int i = 0; i < bytes; i++) {
		int keep = (int)prefix - i * 8;
		if (keep <= 0)
			out->addr.bytes[i] = 0;
		else if (keep < 8)
			out->addr.bytes[i] &= (uint8_t)(0xff << (8 - keep));
	}
	return 0;
}
