#ifndef CLOSEPOLICY_CLI_H
#define CLOSEPOLICY_CLI_H
#include "policy/policy.h"

int cp_cli_check(int argc, char **argv);
int cp_cli_run(int argc, char **argv);
int cp_cli_report(int argc, char **argv);
int cp_cli_stat(int argc, char **argv);
int cp_cli_top(int argc, char **argv);
int cp_cli_reload(int argc, char **argv);
/* Warn on stderr when COMMAND cannot load a preloaded object (static, set-user-ID, ...). */
void cp_cli_warn_unpreloadable(const char *command);
#endif
