/* libFuzzer harness for the policy cache's reader (shim/polcache.c, policy/pack.c): whatever a
 * cache file holds (torn, damaged, another version's, written by anything), it gives no policy,
 * or a policy that packs again to exactly the bytes it came from and that the matcher can use —
 * never a crash, a hang or a leak. The first byte picks the shape: odd, the bytes are a whole
 * cache file, checked against the policy path and text it names itself; even, they are a
 * packing's payload, sealed here with its right checksum, so that the fuzzer spends its time on
 * hostile counts, strings and values rather than on the checksum. Seeds: tests/fuzz/corpus-cache
 * (both shapes, from the example policies). */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "policy/pack.h"
#include "shim/polcache.h"
#include "shim/real.h"

/* polcache.c's file handling closes and writes through the shim's real functions */
int cp_real_close(int fd)
{
	return (int)syscall(SYS_close, fd);
}

ssize_t cp_real_write(int fd, const void *buf, size_t n)
{
	return syscall(SYS_write, fd, buf, n);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* what the shim unpacks a cached policy into (its start-up's memory), small here so that the
 * fuzzer reaches both the policies it holds and those it does not (then malloc'ed) */
static _Alignas(8) unsigned char arena[512];

static bool in_arena(const void *p)
{
	return (const unsigned char *)p >= arena && (const unsigned char *)p < arena + sizeof arena;
}

static uint32_t get32(const uint8_t *at)
{
	return (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
}

/* The packing q came from must be q's one packing. */
static void check(const struct cp_policy *q, const uint8_t *packing, size_t len)
{
	size_t n = cp_policy_pack(q, NULL, 0);
	uint8_t *again = malloc(n);
	if (again == NULL || n != len || cp_policy_pack(q, again, n) != n || memcmp(again, packing, n) != 0)
		abort();
	free(again);
	struct cp_matcher *m = malloc(sizeof *m);
	struct cp_socket_facts facts = {.role = CP_ROLE_SERVER, .local_port = 80, .peer_port = 5555};
	facts.peer.family = 4;
	cp_matcher_init(m, q, "prog");
	if (cp_matcher_match(m, &facts) != cp_policy_match(q, "prog", &facts))
		abort();
	free(m);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0)
		return 0;
	if (data[0] & 1) {
		const uint8_t *file = data + 1;
		size_t len = size - 1;
		if (len < CP_CACHE_HEADER) {
			if (cp_polcache_parse(file, len, "", "", 0, arena, sizeof arena) != NULL)
				abort();
			return 0;
		}
		/* the path and text the header names, when the file holds them: the parse then goes
		 * as far as the packing */
		size_t path_len = get32(file + 12), text_len = get32(file + 16);
		char *path = NULL, *text = NULL;
		if (path_len <= len - CP_CACHE_HEADER && text_len <= len - CP_CACHE_HEADER - path_len) {
			path = strndup((const char *)file + CP_CACHE_HEADER, path_len);
			text = malloc(text_len + 1);
			memcpy(text, file + CP_CACHE_HEADER + path_len, text_len);
		}
		struct cp_policy *q = cp_polcache_parse(file, len, path ? path : "x", text ? text : "",
							text ? text_len : 0, arena, sizeof arena);
		if (q != NULL) {
			size_t at = CP_CACHE_HEADER + path_len + text_len;
			check(q, file + at, len - at);
			if (strcmp(q->source, path) != 0)
				abort();
			if (!in_arena(q))
				cp_policy_free(q);
		}
		free(path);
		free(text);
		return 0;
	}
	size_t len = CP_PACK_HEADER + size - 1;
	uint8_t *packing = malloc(len);
	memcpy(packing + CP_PACK_HEADER, data + 1, size - 1);
	cp_pack_seal(packing, size - 1);
	struct cp_policy *q = cp_policy_unpack(packing, len, "fuzz");
	/* in the caller's memory: the same policy, or none when it does not fit there */
	struct cp_policy *in = cp_policy_unpack_in(packing, len, "fuzz", arena, sizeof arena);
	if (in != NULL && (q == NULL || !in_arena(in)))
		abort();
	if (in != NULL)
		check(in, packing, len);
	if (q != NULL) {
		check(q, packing, len);
		cp_policy_free(q);
	}
	free(packing);
	return 0;
}
