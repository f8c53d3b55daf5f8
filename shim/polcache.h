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

/* "CPCACHE\n", the format, the lengths of the policy file's path, of its text and of the
 * text's packing (pack.h), each 4 bytes little-endian; then the path, the text, the packing. */
#define CP_CACHE_MAGIC "CPCACHE\n"
#define CP_CACHE_HEADER 24
#define CP_CACHE_FORMAT 1

/* The policy of the file at path from its cache, or NULL (not cached, or not from these bytes):
 * in the mem_size bytes at mem when they hold it (no allocation at all), else malloc'ed. */
struct cp_policy *cp_polcache_get(const char *path, void *mem, size_t mem_size);
/* Parse the file at path (diag filled on error, as cp_policy_load_file) and, when it holds a
 * policy, leave it in the cache for the next processes. */
struct cp_policy *cp_polcache_load(const char *path, struct cp_diag *diag);

/* The policy a cache file's bytes hold when they were made from the file at path holding text;
 * NULL for anything else. In mem as cp_policy_unpack_in when it holds it (mem NULL: none), else
 * malloc'ed; text may lie in mem (it is compared before anything is unpacked there). Pure (the
 * fuzzer's entry). */
struct cp_policy *cp_polcache_parse(const unsigned char *file, size_t len, const char *path,
				    const char *text, size_t text_len, void *mem, size_t mem_size);
/* The cache file's bytes for the file at path, its text and its policy (malloc'ed, *len set),
 * or NULL. Pure. */
unsigned char *cp_polcache_build(const char *path, const char *text, size_t text_len,
				 const struct cp_policy *policy, size_t *len);

#endif
