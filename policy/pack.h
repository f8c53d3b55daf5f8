/* The layout of a packed policy (pack.c), for the tests and the fuzzer that build bad ones. */
#ifndef CLOSEPOLICY_PACK_H
#define CLOSEPOLICY_PACK_H
#include <stddef.h>
#include <stdint.h>

/* "CPPOLICY", the format (CP_PACK_FORMAT), the payload's length and its checksum, all
 * little-endian; then the payload. */
#define CP_PACK_MAGIC "CPPOLICY"
#define CP_PACK_HEADER 24
#define CP_PACK_AT_LENGTH 12
#define CP_PACK_AT_SUM 16

/* FNV-1a, 64 bits: finds a torn or truncated file, not an adversary (the cache directory is the
 * user's own). */
uint64_t cp_pack_checksum(const unsigned char *data, size_t len);
/* Write the payload's length and checksum into a header (buf holds CP_PACK_HEADER + payload). */
void cp_pack_seal(unsigned char *buf, size_t payload_len);

#endif
