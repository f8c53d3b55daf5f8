/* Shared by the benchmarks: run this program again with or without the shim, and time things. */
#ifndef CLOSEPOLICY_BENCH_COMMON_H
#define CLOSEPOLICY_BENCH_COMMON_H
#include <stdint.h>

double bench_now_ns(void);
/* qsort comparison for doubles, ascending */
int bench_cmp_double(const void *a, const void *b);
/* Write a policy to a temporary file and return its path (static storage). */
const char *bench_policy(const char *yaml);
/* Run argv[0] again with extra arguments; with_shim preloads $BUILD/libclosepolicy.so with
 * policy. The child's standard output (one number) is returned; exits on failure. */
/* with_shim: 0 bare, 1 the shim, BENCH_ANCHOR an object that does nothing (bench/anchor/empty.c,
 * built by make bench): what any preloaded object costs */
#define BENCH_ANCHOR 2
double bench_run_self(const char *self, int with_shim, const char *policy, const char *arg1,
		      const char *arg2);
/* A connected loopback TCP pair: *client connected, *server accepted. */
void bench_tcp_pair(int listener, int *client, int *server);
int bench_listener(void);
void bench_raise_nofile(void);
#endif
