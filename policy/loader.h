/* The policy loader's internals, shared by its files; not part of the policy interface. */
#ifndef CLOSEPOLICY_LOADER_H
#define CLOSEPOLICY_LOADER_H
#include "policy/diag_internal.h"
#include <yaml.h>

#define POLICY_FILE_MAX (1024 * 1024)
#define LIST_MAX 1024 /* ports or addresses in one condition */
#define RULES_MAX CP_MATCHER_MAX_RULES

struct loader {
	yaml_document_t *doc;
	struct cp_diag *diag;
	struct cp_policy *policy;
};

/* The keys valid in one map, for unknown-key messages. */
struct cp_key_set {
	const char *const *names;
	size_t count;
	const char *list; /* "a, b, c" */
};
extern const struct cp_key_set cp_keys_top, cp_keys_log, cp_keys_rule, cp_keys_match, cp_keys_keepalive;

__attribute__((format(printf, 3, 4)))
void ld_fail(struct loader *L, const yaml_node_t *n, const char *fmt, ...);
const char *ld_kind_name(const yaml_node_t *n);
bool ld_is_null(const yaml_node_t *n);
const char *ld_scalar(struct loader *L, const yaml_node_t *n, const char *key, const char *want);
int ld_word(struct loader *L, const yaml_node_t *n, const char *key, const char *const *words, size_t count);
bool ld_boolean(struct loader *L, const yaml_node_t *n, const char *key, bool *out);
bool ld_duration(struct loader *L, const yaml_node_t *n, const char *key, uint32_t *ms);
bool ld_number(struct loader *L, const yaml_node_t *n, const char *key, uint32_t min, uint32_t max, uint32_t *out);
char *ld_dup_string(struct loader *L, const char *s);
void ld_ports(struct loader *L, const yaml_node_t *n, const char *key, struct cp_port_range **out, size_t *count);
void ld_addresses(struct loader *L, const yaml_node_t *n, const char *key, struct cp_cidr **out, size_t *count);
void ld_check_keys(struct loader *L, const yaml_node_t *map, const char *where, const struct cp_key_set *keys);
yaml_node_t *ld_lookup(struct loader *L, const yaml_node_t *map, const char *key);
yaml_node_t *ld_section(struct loader *L, const yaml_node_t *parent, const char *key, const struct cp_key_set *keys);
void ld_rules(struct loader *L, const yaml_node_t *root);
#endif
