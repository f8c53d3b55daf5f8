/* placeholder */
#include "cli/cli.h"
int cp_cli_top(int argc, char **argv) { (void)argc; (void)argv; return 2; }
