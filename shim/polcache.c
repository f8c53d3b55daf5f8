/* closepolicy — the policy cache (see polcache.h). */
#include "shim/polcache.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "policy/pack.h"
#include "shim/real.h"
#include "shim/rundir.h"

#define TEXT_MAX (1024 * 1024)        /* the loader's limit on a policy file */
#define PACK_MAX (64u * 1024 * 1024)  /* far above 4096 rules of 1024 addresses */
#define FIRST_READ 4096               /* a cache file of a usual policy, in one read */

static uint32_t get32(const unsigned char *at)
{
	return (uint32_t)at[0] | (uint32_t)at[1] << 8 | (uint32_t)at[2] << 16 | (uint32_t)at[3] << 24;
}

static void put32(unsigned char *at, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		at[i] = (unsigned char)(v >> (8 * i));
}

/* The header's lengths, when it is one of this format: the text's, and the file's in all. */
static int header(const unsigned char *file, size_t len, size_t *text_len, size_t *total)
{
	if (len < CP_CACHE_HEADER || memcmp(file, CP_CACHE_MAGIC, 8) != 0 ||
	    get32(file + 8) != CP_CACHE_FORMAT)
		return -1;
	uint32_t text = get32(file + 12), pack = get32(file + 16);
	if (text > TEXT_MAX || pack > PACK_MAX)
		return -1;
	*text_len = text;
	*total = CP_CACHE_HEADER + (size_t)text + pack;
	return 0;
}

struct cp_policy *cp_polcache_parse(const unsigned char *file, size_t len, const char *text,
				    size_t text_len, const char *source)
{
	size_t cached_len, total;
	if (header(file, len, &cached_len, &total) < 0 || total != len || cached_len != text_len ||
	    memcmp(file + CP_CACHE_HEADER, text, text_len) != 0)
		return NULL;
	return cp_policy_unpack(file + CP_CACHE_HEADER + text_len, len - CP_CACHE_HEADER - text_len, source);
}

unsigned char *cp_polcache_build(const char *text, size_t text_len, const struct cp_policy *p,
				 size_t *len)
{
	size_t pack = cp_policy_pack(p, NULL, 0);
	if (pack == 0 || pack > PACK_MAX || text_len > TEXT_MAX)
		return NULL;
	unsigned char *file = malloc(CP_CACHE_HEADER + text_len + pack);
	if (file == NULL)
		return NULL;
	memcpy(file, CP_CACHE_MAGIC, 8);
	put32(file + 8, CP_CACHE_FORMAT);
	put32(file + 12, (uint32_t)text_len);
	put32(file + 16, (uint32_t)pack);
	memcpy(file + CP_CACHE_HEADER, text, text_len);
	cp_policy_pack(p, file + CP_CACHE_HEADER + text_len, pack);
	*len = CP_CACHE_HEADER + text_len + pack;
	return file;
}

/* The cache file's name: one per policy path (a file edited in place or renamed over has one
 * cache, rewritten, not one per version): "policy-" and the path's FNV-1a in hexadecimal, which
 * the counters readers pass over (their names are process ids). Formatted by hand: the first
 * snprintf of a process costs it more than reading the cache does. */
static int cache_name(char *buf, size_t size, const char *path, bool create)
{
	static const char prefix[] = "/policy-", hex[] = "0123456789abcdef";
	if (cp_rundir(buf, size, create) < 0)
		return -1;
	size_t len = strlen(buf);
	if (len + sizeof prefix - 1 + 16 + 1 > size)
		return -1;
	memcpy(buf + len, prefix, sizeof prefix - 1);
	len += sizeof prefix - 1;
	uint64_t h = cp_pack_checksum((const unsigned char *)path, strlen(path));
	for (int i = 15; i >= 0; i--, h >>= 4)
		buf[len + (size_t)i] = hex[h & 15];
	buf[len + 16] = '\0';
	return 0;
}

/* One read: of a regular file, fewer bytes than asked means its end. */
static ssize_t read_once(int fd, void *buf, size_t n)
{
	ssize_t r;
	do
		r = read(fd, buf, n);
	while (r < 0 && errno == EINTR);
	return r;
}

/* The rest of a large file, to its expected end. */
static bool read_rest(int fd, unsigned char *buf, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read_once(fd, buf + got, n - got);
		if (r <= 0)
			return false;
		got += (size_t)r;
	}
	return true;
}

/* The cache file whole, or NULL. */
static unsigned char *read_cache(const char *name, size_t *len)
{
	int fd = open(name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	size_t text_len, total;
	unsigned char *file = malloc(FIRST_READ);
	ssize_t got = file ? read_once(fd, file, FIRST_READ) : -1;
	if (got < 0 || header(file, (size_t)got, &text_len, &total) < 0 ||
	    (total <= FIRST_READ && (size_t)got != total)) {
		free(file);
		file = NULL;
	} else if (total > FIRST_READ) {
		unsigned char *more = realloc(file, total);
		if (more == NULL || !read_rest(fd, more + FIRST_READ, total - FIRST_READ)) {
			free(more ? more : file);
			file = NULL;
		} else {
			file = more;
		}
	}
	cp_real_close(fd);
	*len = total;
	return file;
}

/* The policy file's bytes, when it is a regular file of len bytes (one read: a file that is
 * not these bytes is a miss, however it reads; no second reading, as the loader's, is needed
 * to trust bytes that equal a text once read whole). */
static char *read_text(const char *path, size_t len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return NULL;
	struct stat st;
	char *text = NULL;
	if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (size_t)st.st_size == len &&
	    (text = malloc(len + 1)) != NULL && read_once(fd, text, len + 1) != (ssize_t)len) {
		free(text);
		text = NULL;
	}
	cp_real_close(fd);
	return text;
}

struct cp_policy *cp_polcache_get(const char *path)
{
	char name[512];
	size_t len;
	unsigned char *file;
	if (cache_name(name, sizeof name, path, false) < 0 || (file = read_cache(name, &len)) == NULL)
		return NULL;
	size_t text_len = get32(file + 12);
	char *text = read_text(path, text_len);
	struct cp_policy *p = text ? cp_polcache_parse(file, len, text, text_len, path) : NULL;
	free(text);
	free(file);
	return p;
}

/* Written whole under a name of this process's, then renamed: a reader finds the old file,
 * the new one, or none, never a part. */
static void store(const char *path, const unsigned char *file, size_t len)
{
	char name[512], tmp[540];
	if (cache_name(name, sizeof name, path, true) < 0)
		return;
	snprintf(tmp, sizeof tmp, "%s.%d.tmp", name, (int)getpid());
	unlink(tmp); /* left by an image of this PID that died while writing it */
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return;
	size_t done = 0;
	while (done < len) {
		ssize_t n = cp_real_write(fd, file + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		done += (size_t)n;
	}
	if (cp_real_close(fd) < 0 || done < len || rename(tmp, name) < 0)
		unlink(tmp);
}

struct cp_policy *cp_polcache_load(const char *path, struct cp_diag *diag)
{
	char *text;
	size_t text_len, len;
	if (cp_policy_read_file(path, diag, &text, &text_len) < 0)
		return NULL;
	struct cp_policy *p = cp_policy_load_string(text, text_len, path, diag);
	unsigned char *file = p ? cp_polcache_build(text, text_len, p, &len) : NULL;
	if (file != NULL)
		store(path, file, len);
	free(file);
	free(text);
	return p;
}
