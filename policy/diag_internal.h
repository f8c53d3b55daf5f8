/* Shared by the loader's files; not part of the policy interface. */
#ifndef CLOSEPOLICY_DIAG_INTERNAL_H
#define CLOSEPOLICY_DIAG_INTERNAL_H
#include "policy/policy.h"

void cp_diag_reset(struct cp_diag *d, const char *file);
__attribute__((format(printf, 4, 5)))
void cp_diag_add(struct cp_diag *d, int line, int column, const char *fmt, ...);
#endif
