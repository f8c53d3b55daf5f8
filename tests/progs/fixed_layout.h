/* The fault-counting programs run without address space randomization where they may (they
 * exec themselves again so): each figure then depends on the program and the object, not on
 * where the loader put them. */
#ifndef CP_TEST_FIXED_LAYOUT_H
#define CP_TEST_FIXED_LAYOUT_H

#include <stdlib.h>
#include <sys/personality.h>
#include <unistd.h>

static inline void fixed_layout(char **argv)
{
	int persona = personality(0xffffffff);
	if (persona != -1 && !(persona & ADDR_NO_RANDOMIZE) && getenv("FORK_COST_FIXED") == NULL &&
	    personality((unsigned long)persona | ADDR_NO_RANDOMIZE) != -1) {
		setenv("FORK_COST_FIXED", "1", 1);
		execv("/proc/self/exe", argv);
		/* not possible here: measured as it is */
	}
}

#endif
