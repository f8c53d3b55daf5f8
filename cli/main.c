/* closepolicy — the command: run a program under a policy, check a policy, summarise a log. */
#include "cli/cli.h"

#include <stdio.h>
#include <string.h>

static const char usage[] =
	"usage: closepolicy run [-p POLICY] [-l TARGET] [--json] [--dry-run] -- COMMAND [ARG...]\n"
	"       closepolicy check POLICY\n"
	"       closepolicy report [LOG|-]\n"
	"       closepolicy stat [--json | --prometheus] [--sum] [PID...]\n"
	"       closepolicy top [--sort closes|risk|drains|epipe|pid] [-d SECONDS] [--once] [PID...]\n"
	"       closepolicy reload [-p POLICY] PID...\n"
	"       closepolicy --version | --help\n";

static const char help[] =
	"\n"
	"Decide how a program's TCP connections end, without recompiling it.\n"
	"\n"
	"  run      check the policy, then run COMMAND with libclosepolicy.so preloaded\n"
	"             -p, --policy POLICY  the policy file (default: the built-in observe-only policy)\n"
	"             -l, --log TARGET     stderr, syslog or a file path (a relative one is taken\n"
	"                                  from the current directory)\n"
	"             --json               log JSON lines instead of text\n"
	"             --dry-run            log what each close would do, change nothing\n"
	"  check    validate POLICY: exit 0 and print it with every default filled in,\n"
	"           or exit 2 and print FILE:LINE:COLUMN: errors\n"
	"  report   summarise a JSON-lines log (a file, or - for standard input)\n"
	"  stat     the live counters of processes under the shim (all, or the PIDs given):\n"
	"           text, --json (an object a line) or --prometheus; --sum adds up each program\n"
	"  top      the same, refreshed every second: q quits, c/r/d/e/p sort; without a\n"
	"           terminal, one snapshot a second (--once: one)\n"
	"  reload   the processes take their policy file again, or POLICY (checked first: exit 2\n"
	"           when bad); exit 0 when every one took it, 1 naming those that did not\n"
	"\n"
	"Exit status: run gives COMMAND's own (127 when it is not found); 2 for bad usage or a bad\n"
	"policy. See closepolicy(1) and the README for the policy format.\n";

int cp_cli_check(int argc, char **argv)
{
	struct cp_diag diag;
	if (argc != 2 || argv[1][0] == '-') {
		fprintf(stderr, "closepolicy check: expected one policy file\n%s", usage);
		return 2;
	}
	struct cp_policy *p = cp_policy_load_file(argv[1], &diag);
	if (!p) {
		cp_diag_print(&diag, stderr);
		return 2;
	}
	printf("# %s: valid; every default filled in\n", argv[1]);
	cp_policy_dump(p, stdout);
	cp_policy_free(p);
	return fflush(stdout) == 0 ? 0 : 1;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fputs(usage, stderr);
		return 2;
	}
	const char *cmd = argv[1];
	if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage, stdout);
		fputs(help, stdout);
		return 0;
	}
	if (strcmp(cmd, "--version") == 0) {
		printf("closepolicy %s\n", CP_VERSION);
		return 0;
	}
	if (strcmp(cmd, "check") == 0)
		return cp_cli_check(argc - 1, argv + 1);
	if (strcmp(cmd, "run") == 0)
		return cp_cli_run(argc - 1, argv + 1);
	if (strcmp(cmd, "report") == 0)
		return cp_cli_report(argc - 1, argv + 1);
	if (strcmp(cmd, "stat") == 0)
		return cp_cli_stat(argc - 1, argv + 1);
	if (strcmp(cmd, "top") == 0)
		return cp_cli_top(argc - 1, argv + 1);
	if (strcmp(cmd, "reload") == 0)
		return cp_cli_reload(argc - 1, argv + 1);
	fprintf(stderr, "closepolicy: unknown command \"%s\"\n%s", cmd, usage);
	return 2;
}
