/* A dynamically linked program carrying the section a Go toolchain writes, so `closepolicy run`
 * must warn that its system calls bypass the shim (no Go toolchain needed for the test). */
#include <stdio.h>

__attribute__((used, section(".note.go.buildid"))) static const char go_build_id[] = "test";

int main(void)
{
	puts("hello");
	return 0;
}
