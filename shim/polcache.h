/* closepolicy — the policy cache: the first process that parses a policy file leaves the
 * compiled policy in the run directory (rundir.h), next to the bytes it was compiled from; the
 * processes after it (every exec'd image of a shell script, a CGI server's every child) read it
 * there instead of loading libyaml and parsing.
 *
 * The cache is used only when the policy file holds, at that moment, exactly the bytes it was
 * made from: a file edited, replaced or renamed over gives the new policy at once, whatever its
 * timestamps say, and the cache can never bring back an older one. Anything wrong with the
 * cache file (missing, torn, foreign, from another format) means the file is parsed as before. */
#ifndef CLOSEPOLICY_POLCACHE_H
#define CLOSEPOLICY_POLCACHE_H

#include <stddef.h>

#include "policy/policy.h"

/* "CPCACHE\n", the format, the length of the policy text and of its packing (pack.h), each 4
 * bytes little-endian; then the text, then the packing. */
#define CP_CACHE_MAGIC "CPCACHE\n"
#define CP_CACHE_HEADER 20
#define CP_CACHE_FORMAT 1

/* The policy of the file at path from its cache, or NULL (not cached, or not from these bytes). */
struct cp_policy *cp_polcache_get(const char *path);
/* Parse the file at path (diag filled on error, as cp_policy_load_file) and, when it holds a
 * policy, leave it in the cache for the next processes. */
struct cp_policy *cp_polcache_load(const char *path, struct cp_diag *diag);

/* The policy a cache file's bytes hold when they were made from text, named source; NULL for
 * anything else. Pure (the fuzzer's entry). */
struct cp_policy *cp_polcache_parse(const unsigned char *file, size_t len, const char *text,
				    size_t text_len, const char *source);
/* The cache file's bytes for text and its policy (malloc'ed, *len set), or NULL. Pure. */
unsigned char *cp_polcache_build(const char *text, size_t text_len, const struct cp_policy *p,
				 size_t *len);

#endif
