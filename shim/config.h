/* closepolicy — the shim's configuration: the policy in force and who we are.
 * Set once by cp_init_ensure() (the constructor, or the first wrapper that needs it). */
#ifndef CLOSEPOLICY_CONFIG_H
#define CLOSEPOLICY_CONFIG_H

#include <stdbool.h>
#include <sys/types.h>

#include "policy/policy.h"

struct cp_config {
	const struct cp_policy *policy; /* never NULL after init: the file's, or the default */
	bool dry_run;                   /* policy dry_run, or CLOSEPOLICY_DRY_RUN */
	bool match_needs_addresses;     /* some rule has a port or address condition */
	char program[128];              /* basename of the executable */
	/* last: its 4 KiB table is written only as far as the policy has rules (start-up writes
	 * one page of this struct, not two) */
	struct cp_matcher matcher;
};
extern struct cp_config cp_cfg;

void cp_init_ensure(void);

#endif
