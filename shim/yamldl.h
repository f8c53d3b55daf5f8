/* closepolicy — libyaml, opened for reading a policy (see yamldl.c). */
#ifndef CLOSEPOLICY_YAMLDL_H
#define CLOSEPOLICY_YAMLDL_H

/* The policy is read: close libyaml (nothing of it is kept); a later parse opens it again. */
void cp_yaml_unload(void);

#endif
