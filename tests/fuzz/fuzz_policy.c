/* libFuzzer harness for the policy loader: any bytes must give either a policy that dumps and
 * loads back identically, or diagnostics — never a crash, a hang or a leak. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "policy/policy.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct cp_diag diag;
	struct cp_policy *p = cp_policy_load_string((const char *)data, size, "fuzz", &diag);
	if (!p) {
		if (diag.count == 0)
			abort(); /* rejected without saying why */
		char line[1024];
		for (size_t i = 0; i < diag.count; i++)
			cp_diag_format(&diag, i, line, sizeof line);
		return 0;
	}
	char *a = NULL, *b = NULL;
	size_t na = 0, nb = 0;
	FILE *f = open_memstream(&a, &na);
	cp_policy_dump(p, f);
	fclose(f);
	struct cp_policy *q = cp_policy_load_string(a, na, "dump", &diag);
	if (!q) {
		cp_diag_print(&diag, stderr);
		fprintf(stderr, "dump did not load back:\n%s\n", a);
		abort();
	}
	f = open_memstream(&b, &nb);
	cp_policy_dump(q, f);
	fclose(f);
	if (na != nb || memcmp(a, b, na) != 0)
		abort();
	struct cp_matcher *m = malloc(sizeof *m);
	struct cp_socket_facts facts = {.role = CP_ROLE_SERVER, .local_port = 80, .peer_port = 5555};
	facts.peer.family = 4;
	cp_matcher_init(m, p, "prog");
	if (cp_matcher_match(m, &facts) != cp_policy_match(p, "prog", &facts))
		abort();
	free(m);
	free(a);
	free(b);
	cp_policy_free(p);
	cp_policy_free(q);
	return 0;
}
