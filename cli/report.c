/* closepolicy report: summarise a JSON-lines log. */
#include "cli/cli.h"

#include <stdio.h>

int cp_cli_report(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fputs("closepolicy report: not available in this version yet\n", stderr);
	return 2;
}
