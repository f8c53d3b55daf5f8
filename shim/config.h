/* closepolicy — the shim's configuration: the policy in force and who we are.
 * Set once by cp_init_ensure() (the constructor, or the first wrapper that needs it). */
#ifndef CLOSEPOLICY_CONFIG_H
#define CLOSEPOLICY_CONFIG_H

#include <stdbool.h>
#include <sys/types.h>

#include "policy/policy.h"

#define CP_CONFIG_POLICY_MEM 2048

struct cp_config {
	/* atomic: `closepolicy reload` swaps them on the shim's thread (reload.c) */
	const struct cp_policy *_Atomic policy; /* never NULL after init: the file's, or the default */
	_Atomic bool dry_run;           /* policy dry_run, or CLOSEPOLICY_DRY_RUN */
	_Atomic bool match_needs_addresses; /* some rule has a port or address condition */
	char program[128];              /* basename of the executable */
	const struct cp_matcher *_Atomic reloaded; /* the matcher of a reloaded policy, or NULL */
	/* the policy of start-up, when it comes from the cache and fits (a few rules do): on the
	 * page start-up writes anyway, with no heap started for it (polcache.h) */
	_Alignas(8) unsigned char policy_mem[CP_CONFIG_POLICY_MEM];
	/* last: its 4 KiB table is written only as far as the policy has rules (start-up writes
	 * one page of this struct, not two) */
	struct cp_matcher matcher;
};
extern struct cp_config cp_cfg;

void cp_init_ensure(void);

/* The matcher in force: start-up's, or the last reload's. */
static inline const struct cp_matcher *cp_cfg_matcher(void)
{
	const struct cp_matcher *m = cp_cfg.reloaded;
	return m != NULL ? m : &cp_cfg.matcher;
}

#endif
