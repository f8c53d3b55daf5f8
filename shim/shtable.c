/* closepolicy — the cross-process reference table (see shtable.h). */
#include "shim/shtable.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "shim/hot.h"
#include "shim/ownfd.h"
#include "shim/real.h"

/* "clp4": one 16-byte slot per socket (cookie and count together) after a 128-byte header on the
 * table's first page. An image of another layout (another magic, or a size too small) is refused
 * at attach, in both directions: "clp3" images check the magic too. */
#define MAGIC 0x636c7034u
#define HOLDERS 8
#define EMPTY 0u               /* SO_COOKIE is never 0 */
#define FREED UINT64_MAX       /* a slot whose socket nobody holds any more: reusable */
#define UNNAMED (UINT64_MAX - 1) /* taken, its cookie not asked yet (cp_sht_name) */

struct holder {
	atomic_int pid, fd;
};

/* Processes that opened or attached the table and keep a descriptor to it (forked children
 * hold one too, under their parent's number, without registering). */
struct header {
	uint32_t magic, slots;
	atomic_uint next_holder;
	struct holder holders[HOLDERS];
	/* Slots are taken lowest first, not by hash: the sockets a fork gives away sit side by side,
	 * so a child that releases them at exit touches a page or two of the table, not one page per
	 * socket. `hint`: no free slot below it (a hint: a claim is a compare-and-swap on the slot);
	 * `high`: no slot at or above it was ever taken (where a search by cookie ends). */
	atomic_uint hint, high;
};

/* A slot's cookie and count share a line, and the first slots share the header's page: a forked
 * child's first touch of a shared page is a fault (fork copies no page table entry of a shared
 * mapping), and a child that frees the slot its parent just took (busybox's, at exit) touches
 * one page, not three (cookies, counts, header). */
struct slot {
	_Atomic uint64_t cookie;
	atomic_int count;
	int unused;
};

#define HEADER_SIZE 128 /* two cache lines: the slots' lines are not the header's */
#define MAP_SIZE (HEADER_SIZE + (size_t)CP_SHT_SLOTS * sizeof(struct slot))
_Static_assert(sizeof(struct header) <= HEADER_SIZE, "the header fits before the slots");
_Static_assert(sizeof(struct slot) == 16, "four slots to a cache line");

static struct header *hdr;
static struct slot *slots; /* NULL: no table */
static atomic_int table_fd = -1;
static uint64_t table_ino, table_dev;

bool cp_sht_present(void)
{
	return slots != NULL;
}

static void register_holder(void)
{
	unsigned i = atomic_fetch_add(&hdr->next_holder, 1) % HOLDERS;
	atomic_store(&hdr->holders[i].fd, table_fd);
	atomic_store(&hdr->holders[i].pid, (int)getpid());
}

static int map_fd(int fd)
{
	struct stat st;
	if (fstat(fd, &st) < 0)
		return -1;
	void *m = mmap(NULL, MAP_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return -1;
	/* far above the program's numbers, close-on-exec, marked as the shim's (ownfd.h) */
	int high = cp_ownfd_move_high(fd);
	if (high < 0)
		cp_ownfd_mark(fd);
	else
		fd = high;
	hdr = m;
	slots = (struct slot *)(void *)((char *)m + HEADER_SIZE);
	table_fd = fd;
	table_ino = (uint64_t)st.st_ino;
	table_dev = (uint64_t)st.st_dev;
	return 0;
}

int cp_sht_ensure(void)
{
	if (slots != NULL)
		return 0;
	int fd = memfd_create("closepolicy-refs", MFD_CLOEXEC);
	if (fd < 0)
		return -1;
	if (ftruncate(fd, (off_t)MAP_SIZE) < 0 || map_fd(fd) < 0) {
		int e = errno;
		cp_real_close(fd);
		errno = e;
		return -1;
	}
	hdr->magic = MAGIC;
	hdr->slots = CP_SHT_SLOTS;
	register_holder();
	return 0;
}

static void lower_hint(unsigned i)
{
	unsigned h = atomic_load(&hdr->hint);
	while (i < h && !atomic_compare_exchange_weak(&hdr->hint, &h, i))
		;
}

bool cp_sht_fd_moved(int from, int to)
{
	if (!atomic_compare_exchange_strong(&table_fd, &from, to))
		return false;
	int pid = (int)getpid(); /* what exec'd images are told: this process, the new number */
	for (unsigned i = 0; i < HOLDERS; i++)
		if (atomic_load(&hdr->holders[i].pid) == pid && atomic_load(&hdr->holders[i].fd) == from)
			atomic_store(&hdr->holders[i].fd, to);
	return true;
}

int cp_sht_insert(uint64_t cookie, int count)
{
	if (slots == NULL || cookie == FREED || cookie == UNNAMED)
		return -1;
	if (cookie == EMPTY)
		cookie = UNNAMED;
	unsigned i = atomic_load(&hdr->hint) & (CP_SHT_SLOTS - 1);
	for (unsigned n = 0; n < CP_SHT_SLOTS; n++, i = (i + 1) & (CP_SHT_SLOTS - 1)) {
		uint64_t k = atomic_load(&slots[i].cookie);
		if (k != EMPTY && k != FREED)
			continue;
		/* claim, then count: a slot is only looked up by holders of its socket, and the caller
		 * is its only one so far (the count of a slot another process won is never written) */
		if (atomic_compare_exchange_strong(&slots[i].cookie, &k, cookie)) {
			atomic_store(&slots[i].count, count);
			unsigned h = atomic_load(&hdr->hint);
			while (h <= i && !atomic_compare_exchange_weak(&hdr->hint, &h, i + 1))
				;
			unsigned top = atomic_load(&hdr->high);
			while (top <= i && !atomic_compare_exchange_weak(&hdr->high, &top, i + 1))
				;
			return (int)i;
		}
	}
	return -1;
}

CP_CHILD int cp_sht_add(int slot, int delta)
{
	if (slots == NULL || slot < 0 || slot >= CP_SHT_SLOTS)
		return 0;
	int now = atomic_fetch_add(&slots[slot].count, delta) + delta;
	if (now <= 0) {
		atomic_store(&slots[slot].cookie, FREED);
		lower_hint((unsigned)slot);
	}
	return now;
}

void cp_sht_name(int slot, uint64_t cookie)
{
	if (slots == NULL || slot < 0 || slot >= CP_SHT_SLOTS || cookie == EMPTY || cookie >= UNNAMED)
		return;
	uint64_t k = UNNAMED; /* named already (by another holder's exec): the same cookie */
	atomic_compare_exchange_strong(&slots[slot].cookie, &k, cookie);
}

bool cp_sht_release_if_held(int slot)
{
	if (slots == NULL || slot < 0 || slot >= CP_SHT_SLOTS)
		return false;
	int c = atomic_load(&slots[slot].count);
	while (c > 1 && !atomic_compare_exchange_weak(&slots[slot].count, &c, c - 1))
		;
	return c > 1;
}

int cp_sht_find(uint64_t cookie)
{
	if (slots == NULL || cookie == EMPTY || cookie >= UNNAMED)
		return -1;
	unsigned high = atomic_load(&hdr->high);
	for (unsigned i = 0; i < high && i < CP_SHT_SLOTS; i++)
		if (atomic_load(&slots[i].cookie) == cookie)
			return (int)i;
	return -1;
}

/* ---- naming the table across exec (no stdio: this runs between fork and exec) ---- */

static size_t put_u64(char *buf, size_t size, size_t at, uint64_t v)
{
	char tmp[24];
	size_t n = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	if (at + n + 1 >= size)
		return at;
	while (n > 0)
		buf[at++] = tmp[--n];
	buf[at] = '\0';
	return at;
}

static size_t put_char(char *buf, size_t size, size_t at, char c)
{
	if (at + 2 >= size)
		return at;
	buf[at++] = c;
	buf[at] = '\0';
	return at;
}

static size_t put_holder(char *buf, size_t size, size_t at, int pid, int fd)
{
	if (pid <= 0 || fd < 0)
		return at;
	at = put_char(buf, size, at, '+');
	at = put_u64(buf, size, at, (uint64_t)pid);
	at = put_char(buf, size, at, '/');
	return put_u64(buf, size, at, (uint64_t)fd);
}

size_t cp_sht_describe(char *buf, size_t size, bool self_alive)
{
	if (slots == NULL || size == 0)
		return 0;
	size_t at = put_u64(buf, size, 0, table_ino);
	at = put_char(buf, size, at, ':');
	at = put_u64(buf, size, at, table_dev);
	if (self_alive)
		at = put_holder(buf, size, at, (int)getpid(), table_fd);
	/* a parent that forked us holds it under the same number */
	at = put_holder(buf, size, at, (int)getppid(), table_fd);
	for (unsigned i = 0; i < HOLDERS; i++)
		at = put_holder(buf, size, at, atomic_load(&hdr->holders[i].pid),
				atomic_load(&hdr->holders[i].fd));
	return at;
}

int cp_sht_attach(const char *desc)
{
	if (slots != NULL)
		return 0;
	char *end;
	uint64_t ino = strtoull(desc, &end, 10), dev;
	if (*end != ':')
		return -1;
	dev = strtoull(end + 1, &end, 10);
	while (*end == '+') {
		long pid = strtol(end + 1, &end, 10);
		if (*end != '/')
			return -1;
		long fd = strtol(end + 1, &end, 10);
		char path[64] = "/proc/";
		size_t at = put_u64(path, sizeof path, strlen(path), (uint64_t)pid);
		at = put_char(path, sizeof path, at, '/');
		at = put_char(path, sizeof path, at, 'f');
		at = put_char(path, sizeof path, at, 'd');
		at = put_char(path, sizeof path, at, '/');
		put_u64(path, sizeof path, at, (uint64_t)fd);
		int f = open(path, O_RDWR | O_CLOEXEC);
		if (f < 0)
			continue;
		struct stat st;
		/* the same file: a pid reused since, or a number reused, names something else */
		if (fstat(f, &st) == 0 && (uint64_t)st.st_ino == ino && (uint64_t)st.st_dev == dev &&
		    (size_t)st.st_size >= MAP_SIZE && map_fd(f) == 0) {
			if (hdr->magic != MAGIC || hdr->slots != CP_SHT_SLOTS) {
				munmap(hdr, MAP_SIZE);
				hdr = NULL;
				slots = NULL;
				cp_ownfd_close(table_fd);
				table_fd = -1;
				return -1;
			}
			register_holder();
			return 0;
		}
		cp_real_close(f);
	}
	return -1;
}
