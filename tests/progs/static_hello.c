/* Built statically (see the Makefile): `closepolicy run` must warn that it cannot be preloaded. */
#include <stdio.h>

int main(void)
{
	puts("hello");
	return 0;
}
