/* closepolicy — the policy: an immutable value loaded from YAML (closepolicy.yaml(5)).
 * Pure code: no sockets, no syscalls but reading the policy file. */
#ifndef CLOSEPOLICY_POLICY_H
#define CLOSEPOLICY_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CP_POLICY_VERSION 1
/* Durations are kept in milliseconds and capped so they fit an int timeout. */
#define CP_DURATION_MAX_MS 2147483647ULL

enum cp_role { CP_ROLE_ANY = 0, CP_ROLE_SERVER, CP_ROLE_CLIENT };
enum cp_action { CP_ACTION_PASSTHROUGH = 0, CP_ACTION_GRACEFUL, CP_ACTION_LINGER, CP_ACTION_RESET };
enum cp_sigpipe { CP_SIGPIPE_LOG = 0, CP_SIGPIPE_IGNORE };
enum cp_log_target { CP_LOG_STDERR = 0, CP_LOG_SYSLOG, CP_LOG_FILE };
enum cp_log_format { CP_FORMAT_TEXT = 0, CP_FORMAT_JSON };
enum cp_log_level { CP_LEVEL_WARN = 0, CP_LEVEL_INFO, CP_LEVEL_DEBUG };

struct cp_port_range {
	uint16_t lo, hi; /* inclusive, 1..65535 */
};

/* An address as the policy sees it: family 4 or 6 (not AF_*; this code knows no sockets).
 * IPv4 occupies bytes[0..3]; IPv4-mapped IPv6 is always converted to 4. */
struct cp_addr {
	uint8_t family; /* 0 = unknown / not an IP socket */
	uint8_t bytes[16];
};

struct cp_cidr {
	struct cp_addr addr; /* host bits already cleared */
	uint8_t prefix;      /* 0..32 or 0..128 */
};

struct cp_match {
	enum cp_role role;
	size_t n_local_ports, n_peer_ports, n_local, n_peer; /* 0 = no condition */
	struct cp_port_range *local_ports, *peer_ports;
	struct cp_cidr *local, *peer;
	char *program; /* fnmatch(3) glob on the executable's basename; NULL = any */
};

struct cp_keepalive {
	bool set;
	uint32_t idle_s, interval_s, count; /* 0 = leave the kernel's default */
};

struct cp_rule {
	char *name; /* "rule-N" when not given */
	struct cp_match match;
	enum cp_action action;
	enum cp_action on_exit; /* defaults to action */
	uint32_t drain_timeout_ms, drain_max_ms;
	uint32_t linger_s; /* > 0 when action or on_exit is linger */
	struct cp_keepalive keepalive;
	bool user_timeout_set;
	uint32_t user_timeout_ms;
};

struct cp_policy {
	int version;
	bool dry_run;
	enum cp_sigpipe sigpipe;
	uint32_t exit_wait_ms;
	uint32_t max_draining;
	struct {
		enum cp_log_target target;
		char *path; /* CP_LOG_FILE only */
		enum cp_log_format format;
		enum cp_log_level level;
		uint32_t rate; /* lines a second per event kind; 0 = no limit */
	} log;
	size_t n_rules;
	struct cp_rule *rules;
	char *source; /* the file name (or "<string>"), for messages */
};

/* Defaults of closepolicy.yaml(5) that are not zero. */
#define CP_DEFAULT_EXIT_WAIT_MS 5000u
#define CP_DEFAULT_MAX_DRAINING 1024u
#define CP_DEFAULT_DRAIN_TIMEOUT_MS 5000u
#define CP_DEFAULT_DRAIN_MAX_MS 30000u

/* Diagnostics: every problem of a file, "FILE:LINE:COLUMN: message", up to a cap. */
#define CP_DIAG_MAX 32
#define CP_DIAG_MSG 320
struct cp_diag_entry {
	int line, column; /* 1-based; 0 when the problem has no position (unreadable file) */
	char message[CP_DIAG_MSG];
};
struct cp_diag {
	char file[256];
	size_t count;    /* entries stored (<= CP_DIAG_MAX) */
	bool truncated;  /* more errors existed than were stored */
	struct cp_diag_entry entries[CP_DIAG_MAX];
};

/* Load a policy. On any error return NULL and fill diag (never a partial policy).
 * Both go through one parser; the file variant only reads the bytes first. */
struct cp_policy *cp_policy_load_file(const char *path, struct cp_diag *diag);
struct cp_policy *cp_policy_load_string(const char *text, size_t len, const char *name,
					struct cp_diag *diag);
void cp_policy_free(struct cp_policy *policy);
/* The file's bytes as the file loader takes them (read again until two readings agree): 0 and
 * *text (malloc'ed, the caller frees it) and *len, or -1 and diag filled. */
int cp_policy_read_file(const char *path, struct cp_diag *diag, char **text, size_t *len);

/* The compiled policy as bytes (pack.c), so that a policy parsed once need not be parsed by
 * every process. Pack: the length of the packing, written to buf only when size holds it (0 when
 * it cannot be packed). Unpack: the policy, named source, or NULL when buf is anything but a
 * packing of this format (truncated, torn, foreign, or a value the loader never gives). */
#define CP_PACK_FORMAT 1
size_t cp_policy_pack(const struct cp_policy *policy, unsigned char *buf, size_t size);
struct cp_policy *cp_policy_unpack(const unsigned char *buf, size_t len, const char *source);
/* The same, with the policy's every part in the caller's size bytes at mem (no allocation): NULL
 * also when they do not hold it. A policy unpacked there is never given to cp_policy_free; mem
 * keeps nothing of use from a packing refused. */
struct cp_policy *cp_policy_unpack_in(const unsigned char *buf, size_t len, const char *source, void *mem,
				      size_t size);

/* The built-in policy used without CLOSEPOLICY_FILE: no rules, sigpipe log, stderr, text, info.
 * A static value: never freed, safe to use before any allocation works. */
const struct cp_policy *cp_policy_default(void);

/* Write "FILE:LINE:COLUMN: message\n" for every entry (and a line when truncated). */
void cp_diag_print(const struct cp_diag *diag, FILE *out);
/* Format one entry into buf, as above without the newline. */
void cp_diag_format(const struct cp_diag *diag, size_t i, char *buf, size_t size);

/* Print the policy as YAML with every default filled in; loading it back gives the same policy. */
void cp_policy_dump(const struct cp_policy *policy, FILE *out);

/* Names, for logs and the dump. */
const char *cp_action_name(enum cp_action a);
const char *cp_role_name(enum cp_role r);
const char *cp_level_name(enum cp_log_level l);

/* Durations: "250ms", "5s", "2m", "1.5s", or a whole number of seconds.
 * Return 0 and set *ms, or -1 and a reason (static string). */
int cp_parse_duration(const char *text, uint32_t *ms, const char **why);
/* Addresses: "10.0.0.0/8", "::1", "::ffff:1.2.3.4". 0 or -1 and a reason. */
int cp_parse_cidr(const char *text, struct cp_cidr *out, const char **why);
/* Ports: "80", "8000-8099". 0 or -1 and a reason. */
int cp_parse_port_range(const char *text, struct cp_port_range *out, const char **why);

/* ---- matching ---- */

/* What the shim knows about a socket when it decides. */
struct cp_socket_facts {
	enum cp_role role; /* CP_ROLE_SERVER (accepted) or CP_ROLE_CLIENT (connected) */
	struct cp_addr local, peer;
	uint16_t local_port, peer_port;
};

/* Normalise an address: an IPv4-mapped IPv6 address becomes IPv4. */
void cp_addr_unmap(struct cp_addr *addr);

/* The program name never changes in a process, so its globs are evaluated once. */
#define CP_MATCHER_MAX_RULES 4096
struct cp_matcher {
	const struct cp_policy *policy;
	uint8_t program_ok[CP_MATCHER_MAX_RULES]; /* rule i's program glob holds */
};
void cp_matcher_init(struct cp_matcher *m, const struct cp_policy *policy, const char *program);
/* First matching rule, or NULL. Pure; no allocation; safe in any context. */
const struct cp_rule *cp_matcher_match(const struct cp_matcher *m, const struct cp_socket_facts *f);
/* Convenience for callers that match once: same result, evaluates the glob each time. */
const struct cp_rule *cp_policy_match(const struct cp_policy *policy, const char *program,
				      const struct cp_socket_facts *f);

#endif
