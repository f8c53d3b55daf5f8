/* The keys of each map of closepolicy.yaml(5), for checking and for "did you mean" suggestions. */
#include "policy/loader.h"

#define KEY_SET(var, ...)                                                                    \
	static const char *const var##_names[] = {__VA_ARGS__};                              \
	const struct cp_key_set var = {var##_names, sizeof var##_names / sizeof *var##_names, \
				       #__VA_ARGS__}

KEY_SET(cp_keys_top, "version", "dry_run", "sigpipe", "exit_wait", "max_draining", "log", "rules");
KEY_SET(cp_keys_log, "target", "format", "level", "rate");
KEY_SET(cp_keys_rule, "name", "match", "action", "drain_timeout", "drain_max", "linger", "on_exit",
	"keepalive", "user_timeout");
KEY_SET(cp_keys_match, "role", "local_port", "peer_port", "local", "peer", "program");
KEY_SET(cp_keys_keepalive, "idle", "interval", "count");
