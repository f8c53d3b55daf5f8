/* closepolicy — the policy cache (see polcache.h). */
#include "shim/polcache.h"

#include <errno.h>
#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
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

/* The cache file's parts, when its header is one of this format. */
struct parts {
	size_t path_len, text_len, pack_len, total;
};

static int header(const unsigned char *file, size_t len, struct parts *p)
{
	if (len < CP_CACHE_HEADER || memcmp(file, CP_CACHE_MAGIC, 8) != 0 ||
	    get32(file + 8) != CP_CACHE_FORMAT)
		return -1;
	p->path_len = get32(file + 12);
	p->text_len = get32(file + 16);
	p->pack_len = get32(file + 20);
	if (p->path_len > PATH_MAX || p->text_len > TEXT_MAX || p->pack_len > PACK_MAX)
		return -1;
	p->total = CP_CACHE_HEADER + p->path_len + p->text_len + p->pack_len;
	return 0;
}

struct cp_policy *cp_polcache_parse(const unsigned char *file, size_t len, const char *path,
				    const char *text, size_t text_len, void *mem, size_t mem_size)
{
	struct parts p;
	const unsigned char *at = file + CP_CACHE_HEADER;
	if (header(file, len, &p) < 0 || p.total != len || p.path_len != strlen(path) ||
	    memcmp(at, path, p.path_len) != 0 || p.text_len != text_len ||
	    memcmp(at + p.path_len, text, text_len) != 0)
		return NULL;
	at += p.path_len + p.text_len;
	struct cp_policy *policy = cp_policy_unpack_in(at, p.pack_len, path, mem, mem_size);
	return policy != NULL ? policy : cp_policy_unpack(at, p.pack_len, path);
}

unsigned char *cp_polcache_build(const char *path, const char *text, size_t text_len,
				 const struct cp_policy *policy, size_t *len)
{
	size_t path_len = strlen(path), pack = cp_policy_pack(policy, NULL, 0);
	if (pack == 0 || pack > PACK_MAX || text_len > TEXT_MAX || path_len > PATH_MAX)
		return NULL;
	size_t total = CP_CACHE_HEADER + path_len + text_len + pack;
	unsigned char *file = malloc(total);
	if (file == NULL)
		return NULL;
	memcpy(file, CP_CACHE_MAGIC, 8);
	put32(file + 8, CP_CACHE_FORMAT);
	put32(file + 12, (uint32_t)path_len);
	put32(file + 16, (uint32_t)text_len);
	put32(file + 20, (uint32_t)pack);
	unsigned char *at = file + CP_CACHE_HEADER;
	memcpy(at, path, path_len);
	memcpy(at + path_len, text, text_len);
	cp_policy_pack(policy, at + path_len + text_len, pack);
	*len = total;
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

/* The cache file whole: into buf (FIRST_READ bytes) when it fits, else malloc'ed; NULL when it
 * is not there or not of this format. */
static unsigned char *read_cache(const char *name, struct parts *p, unsigned char *buf)
{
	int fd = open(name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
	if (fd < 0)
		return NULL;
	unsigned char *file = buf;
	ssize_t got = read_once(fd, file, FIRST_READ);
	if (got < 0 || header(file, (size_t)got, p) < 0 || (p->total <= FIRST_READ && (size_t)got != p->total)) {
		file = NULL;
	} else if (p->total > FIRST_READ) {
		file = malloc(p->total);
		if (file != NULL) {
			memcpy(file, buf, FIRST_READ);
			if (!read_rest(fd, file + FIRST_READ, p->total - FIRST_READ)) {
				free(file);
				file = NULL;
			}
		}
	}
	cp_real_close(fd);
	return file;
}

/* The policy file's bytes, when it holds len bytes (into buf of size bytes when they fit, else
 * malloc'ed): one read of one byte more, with no fstat (fewer bytes than asked means the end of
 * a regular file; a file that is not these bytes is a miss, however it reads, and no second
 * reading, as the loader's, is needed to trust bytes that equal a text once read whole). */
static char *read_text(const char *path, size_t len, char *buf, size_t size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0)
		return NULL;
	char *text = len < size ? buf : malloc(len + 1);
	if (text != NULL && read_once(fd, text, len + 1) != (ssize_t)len) {
		if (text != buf)
			free(text);
		text = NULL;
	}
	cp_real_close(fd);
	return text;
}

struct cp_policy *cp_polcache_get(const char *path, void *mem, size_t mem_size)
{
	/* a usual policy's cache file on the stack, and its text in mem, which the policy is
	 * unpacked over once the text compared equal: a process that reads its policy from the
	 * cache starts no heap (getrandom, brk, and its pages) and goes no deeper into its stack */
	unsigned char file_buf[FIRST_READ];
	char name[512];
	struct parts parts;
	unsigned char *file;
	if (cache_name(name, sizeof name, path, false) < 0 || (file = read_cache(name, &parts, file_buf)) == NULL)
		return NULL;
	char *text = read_text(path, parts.text_len, mem, mem != NULL ? mem_size : 0);
	struct cp_policy *p =
		text ? cp_polcache_parse(file, parts.total, path, text, parts.text_len, mem, mem_size) : NULL;
	if (text != mem)
		free(text);
	if (file != file_buf)
		free(file);
	return p;
}

/* The caches of policy files that are gone (a test suite's temporary policies, a policy moved
 * away), and those of another version of the format (left by an upgrade), removed by the next
 * process that writes one: the directory keeps one file per policy in use. Absolute paths only
 * (a relative one is another process's working directory's). */
static void sweep(const char *name)
{
	char dir[512];
	const char *slash = strrchr(name, '/');
	size_t dir_len = slash ? (size_t)(slash - name) : 0;
	if (dir_len == 0 || dir_len >= sizeof dir)
		return;
	memcpy(dir, name, dir_len);
	dir[dir_len] = '\0';
	const char *own = slash + 1; /* just written: its policy file exists */
	size_t cap = CP_CACHE_HEADER + PATH_MAX + 1;
	unsigned char *head = malloc(cap);
	DIR *d = head ? opendir(dir) : NULL;
	for (struct dirent *e; d != NULL && (e = readdir(d)) != NULL;) {
		if (strncmp(e->d_name, "policy-", 7) != 0 || strlen(e->d_name) != 7 + 16 || strcmp(e->d_name, own) == 0)
			continue;
		int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK);
		if (fd < 0)
			continue;
		ssize_t got = read_once(fd, head, cap - 1);
		cp_real_close(fd);
		struct parts p;
		if (got >= CP_CACHE_HEADER && memcmp(head, CP_CACHE_MAGIC, 8) == 0 &&
		    get32(head + 8) != CP_CACHE_FORMAT) {
			/* another version's: no image of this one reads it, and no image of that one
			 * would sweep this one's; that version writes it again if it still runs */
			unlinkat(dirfd(d), e->d_name, 0);
			continue;
		}
		if (got < CP_CACHE_HEADER || header(head, (size_t)got, &p) < 0 || p.path_len == 0 ||
		    (size_t)got < CP_CACHE_HEADER + p.path_len || head[CP_CACHE_HEADER] != '/')
			continue;
		char *path = (char *)head + CP_CACHE_HEADER;
		path[p.path_len] = '\0';
		struct stat st;
		if (strlen(path) == p.path_len && stat(path, &st) < 0 && errno == ENOENT)
			unlinkat(dirfd(d), e->d_name, 0);
	}
	if (d != NULL)
		closedir(d);
	free(head);
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
	else
		sweep(name);
}

struct cp_policy *cp_polcache_load(const char *path, struct cp_diag *diag)
{
	char *text;
	size_t text_len, len;
	if (cp_policy_read_file(path, diag, &text, &text_len) < 0)
		return NULL;
	struct cp_policy *p = cp_policy_load_string(text, text_len, path, diag);
	unsigned char *file = p ? cp_polcache_build(path, text, text_len, p, &len) : NULL;
	if (file != NULL)
		store(path, file, len);
	free(file);
	free(text);
	return p;
}
