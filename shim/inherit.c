/* closepolicy — sockets across exec and posix_spawn (see inherit.h). */
#include "shim/inherit.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "shim/config.h"
#include "shim/drainer.h"
#include "shim/fdtable.h"
#include "shim/real.h"
#include "shim/refs.h"
#include "shim/shtable.h"
#include "shim/sockinfo.h"
#include "shim/track.h"
#include "shim/errsave.h"

#define VAR "CLOSEPOLICY_INHERITED"
#define VAR_LEN (sizeof VAR - 1)
#define ANNOUNCE_MAX 8192 /* sockets past it are not announced: never released (safe side) */
#define ADOPT_MAX 512
#define SCAN_MAX 1024

/* ---- before exec / spawn ---- */

struct announce {
	struct cp_handover *h;
	char *text; /* cap bytes */
	size_t cap, len;
	unsigned count;
};

static bool append(struct announce *a, const char *s, size_t n)
{
	if (a->len + n + 1 >= a->cap)
		return false;
	memcpy(a->text + a->len, s, n);
	a->len += n;
	a->text[a->len] = '\0';
	return true;
}

static size_t format_u64(char *buf, uint64_t v)
{
	char tmp[24];
	size_t n = 0, i = 0;
	do
		tmp[n++] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	while (n > 0)
		buf[i++] = tmp[--n];
	return i;
}

/* "COOKIE.RK," — or nothing (false) when there is no room left. */
static bool announce_one(struct announce *a, uint64_t cookie, char role, char kind)
{
	char item[32];
	size_t n = format_u64(item, cookie);
	item[n++] = '.';
	item[n++] = role;
	item[n++] = kind;
	item[n++] = ',';
	if (!append(a, item, n))
		return false;
	a->count++;
	return true;
}

/* Pass 1: which sockets have a descriptor that survives exec. */
static void mark_inheritable(int fd, struct cp_sock *s, void *arg)
{
	unsigned e = ((struct announce *)arg)->h->epoch;
	if (s == CP_SOCK_SHIM || s->kind != CP_KIND_TCP_CONN)
		return;
	if (s->ref_epoch != e) {
		s->ref_epoch = e;
		s->ref_mark = 0;
	}
	int flags = cp_real_fcntl(fd, F_GETFD, NULL);
	if (flags >= 0 && !(flags & FD_CLOEXEC))
		s->ref_mark |= CP_REF_KEEP;
}

/* Pass 2: announce each socket once. */
static void announce_socket(int fd, struct cp_sock *s, void *arg)
{
	struct announce *a = arg;
	if (s == CP_SOCK_SHIM || s->kind != CP_KIND_TCP_CONN || s->ref_epoch != a->h->epoch ||
	    (s->ref_mark & CP_REF_DONE))
		return;
	s->ref_mark |= CP_REF_DONE;
	bool keep = s->ref_mark & CP_REF_KEEP;
	char role = s->role == CP_ROLE_SERVER ? 's' : 'c';
	if (a->h->spawn) {
		/* the child gets one more reference, which it takes over (or drops) at start */
		if (!keep || !cp_refs_share(s, fd))
			return;
		s->ref_mark |= CP_REF_COUNTED;
		if (!announce_one(a, cp_refs_cookie(s, fd), role, 'S'))
			s->unknown_holders = true; /* the child can never release it */
		return;
	}
	if (s->unknown_holders)
		return; /* the new image cannot know the other holders either: it never acts */
	if (!keep) {
		/* The kernel closes it at exec: its reference goes now, not when the new image starts,
		 * so a holder that closes as soon as it sees the exec happen (a close-on-exec pipe
		 * reaching EOF) is already the last. Taken back if the exec fails. */
		if (s->shared) {
			cp_sht_add(s->slot, -1);
			s->ref_mark |= CP_REF_RELEASED;
		}
		return;
	}
	if (cp_refs_cookie(s, fd) != 0)
		(void)announce_one(a, s->cookie, role, s->shared ? 'S' : 'U');
}

/* The call failed: a spawn's child does not exist (take back the references counted for it);
 * an exec's image is still this one (take back the references released for it). */
static void undo_handover(int fd, struct cp_sock *s, void *arg)
{
	(void)fd;
	struct cp_handover *h = arg;
	if (s == CP_SOCK_SHIM || s->ref_epoch != h->epoch)
		return;
	if (s->ref_mark & CP_REF_COUNTED) {
		s->ref_mark &= (uint8_t)~CP_REF_COUNTED;
		cp_sht_add(s->slot, -1);
	}
	if (s->ref_mark & CP_REF_RELEASED) {
		s->ref_mark &= (uint8_t)~CP_REF_RELEASED;
		cp_sht_add(s->slot, 1);
	}
}

/* A copy of envp without any earlier announcement, plus "VAR=" head desc ";" items (when there
 * are items), in one mapping: no malloc between fork and exec. */
static char *const *rewrite_env(struct cp_handover *h, char *const envp[], const char *head,
				const char *desc, const struct announce *a)
{
	size_t n = 0;
	while (envp != NULL && envp[n] != NULL)
		n++;
	size_t hl = strlen(head), dl = strlen(desc);
	size_t strsize = VAR_LEN + 1 + hl + dl + 1 + a->len + 1;
	h->map_size = (n + 2) * sizeof(char *) + strsize;
	h->map = mmap(NULL, h->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (h->map == MAP_FAILED) {
		h->map = NULL;
		return envp;
	}
	char **out = h->map;
	char *str = (char *)h->map + (n + 2) * sizeof(char *), *at = str;
	size_t k = 0;
	for (size_t i = 0; i < n; i++)
		if (strncmp(envp[i], VAR "=", VAR_LEN + 1) != 0)
			out[k++] = envp[i];
	if (a->len > 0) {
		memcpy(at, VAR "=", VAR_LEN + 1);
		at += VAR_LEN + 1;
		memcpy(at, head, hl);
		at += hl;
		memcpy(at, desc, dl);
		at += dl;
		*at++ = ';';
		memcpy(at, a->text, a->len + 1);
		out[k++] = str;
	}
	out[k] = NULL;
	return out;
}

/* The list's text (8 KiB: not on a small thread stack). Not thread-local: the static TLS
 * is cleared at every process start and every thread's creation, a few pages each time, for
 * the few execs that have sockets to give away. One exec or spawn at a time takes it; another
 * thread's at the same moment maps its own (no malloc: this may run in a vfork child). */
static char announce_text[ANNOUNCE_MAX];
static atomic_flag announce_busy;

static char *announce_take(void)
{
	if (!atomic_flag_test_and_set_explicit(&announce_busy, memory_order_acquire))
		return announce_text;
	void *m = mmap(NULL, ANNOUNCE_MAX, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	return m == MAP_FAILED ? NULL : m;
}

static void announce_give_back(char *text)
{
	if (text == announce_text)
		atomic_flag_clear_explicit(&announce_busy, memory_order_release);
	else
		munmap(text, ANNOUNCE_MAX);
}

static bool has_stale(char *const envp[])
{
	for (size_t i = 0; envp != NULL && envp[i] != NULL; i++)
		if (strncmp(envp[i], VAR "=", VAR_LEN + 1) == 0)
			return true;
	return false;
}

char *const *cp_handover_begin(struct cp_handover *h, char *const envp[], bool spawn)
{
	memset(h, 0, sizeof *h);
	if (!spawn) /* nothing of the drainer survives exec: the close lines it still holds, now */
		cp_drain_log_pending();
	cp_init_ensure();
	if (!cp_refs_tracking())
		return envp;
	int saved = errno;
	h->spawn = spawn;
	h->epoch = cp_refs_hold_off();
	h->active = true;
	char none[1];
	struct announce a = { .h = h, .text = announce_take(), .cap = ANNOUNCE_MAX };
	if (a.text == NULL) /* no room at all: nothing announced, as past a full list */
		a.text = none, a.cap = sizeof none;
	a.text[0] = '\0';
	cp_fd_foreach(0, ~0U, mark_inheritable, &a);
	cp_fd_foreach(0, ~0U, announce_socket, &a);
	char *const *out = envp;
	if (a.count > 0) {
		char head[32], desc[256];
		size_t n = 0;
		head[n++] = spawn ? 's' : 'e';
		n += format_u64(head + n, (uint64_t)getpid());
		head[n++] = ';';
		head[n] = '\0';
		/* after pass 2: a spawn may have created the table */
		desc[cp_sht_describe(desc, sizeof desc, spawn)] = '\0';
		if (a.text[a.len - 1] == ',')
			a.text[--a.len] = '\0';
		out = rewrite_env(h, envp, head, desc, &a);
	} else if (has_stale(envp)) {
		out = rewrite_env(h, envp, "", "", &a);
	}
	if (a.text != none)
		announce_give_back(a.text);
	cp_errno_restore(saved);
	return out;
}

void cp_handover_end(struct cp_handover *h, bool ok)
{
	if (!h->active)
		return;
	int saved = errno;
	if (!ok)
		cp_fd_foreach(0, ~0U, undo_handover, h);
	if (h->map != NULL)
		munmap(h->map, h->map_size);
	h->map = NULL;
	h->active = false;
	cp_refs_resume();
	cp_errno_restore(saved);
}

/* ---- at start: adopting what was announced ---- */

struct adopted {
	uint64_t cookie;
	char role, kind;
	struct cp_sock *s;
	int first_fd;
};

static int find_entry(const struct adopted *e, int n, uint64_t cookie)
{
	for (int i = 0; i < n; i++)
		if (e[i].cookie == cookie)
			return i;
	return -1;
}

/* One open descriptor of the new image: is it an announced socket? */
static void consider_fd(int fd, struct adopted *e, int n)
{
	if (cp_fd_get(fd) != NULL) /* the shim's own (log, table), or already followed */
		return;
	uint64_t c = cp_info_cookie(fd);
	int i = c != 0 ? find_entry(e, n, c) : -1;
	if (i < 0 || e[i].kind == 'x')
		return;
	struct cp_sock *s = e[i].s, *old;
	if (s == NULL) {
		s = cp_sock_new();
		if (s == NULL)
			return;
		s->cookie = c;
		e[i].s = s;
		e[i].first_fd = fd;
	} else {
		cp_sock_ref(s);
	}
	(void)cp_fd_put(fd, s, &old); /* no memory for the table: never acted on (refs stay) */
}

/* Every open descriptor: /proc/self/fd, whatever numbers a spawn's file actions chose. */
static void scan_fds(struct adopted *e, int n)
{
	int dir = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir < 0) { /* no /proc: the low numbers, where inetd-style programs put them */
		for (int fd = 0; fd < SCAN_MAX; fd++)
			if (cp_real_fcntl(fd, F_GETFD, NULL) >= 0)
				consider_fd(fd, e, n);
		return;
	}
	char buf[4096];
	long got;
	while ((got = cp_real_syscall(SYS_getdents64, dir, buf, sizeof buf)) > 0) {
		for (long at = 0; at < got;) {
			struct dirent64 *d = (struct dirent64 *)(void *)(buf + at);
			at += d->d_reclen;
			if (d->d_name[0] < '0' || d->d_name[0] > '9')
				continue;
			int fd = atoi(d->d_name);
			if (fd != dir)
				consider_fd(fd, e, n);
		}
	}
	cp_real_close(dir);
}

static int parse_entries(char *p, struct adopted *e)
{
	int n = 0;
	while (*p != '\0' && n < ADOPT_MAX) {
		char *end;
		e[n].cookie = strtoull(p, &end, 10);
		if (*end != '.' || end[1] == '\0' || end[2] == '\0')
			break;
		e[n].role = end[1];
		e[n].kind = end[2];
		e[n].s = NULL;
		e[n].first_fd = -1;
		n++;
		p = end + 3;
		if (*p == ',')
			p++;
	}
	return n;
}

void cp_inherit_adopt(void)
{
	const char *v = secure_getenv(VAR);
	if (v == NULL)
		return;
	char *copy = strdup(v);
	unsetenv(VAR); /* for this image only: its own children get their own announcement */
	if (copy == NULL || !cp_refs_tracking())
		goto out;
	char mode = copy[0];
	char *end;
	long pid = strtol(copy + 1, &end, 10);
	if (*end != ';' || !((mode == 'e' && pid == getpid()) || (mode == 's' && pid == getppid())))
		goto out; /* not meant for this process */
	char *table = end + 1, *items = strchr(table, ';');
	if (items == NULL)
		goto out;
	*items++ = '\0';
	bool have_table = *table != '\0' && cp_sht_attach(table) == 0;
	struct adopted *e = calloc(ADOPT_MAX, sizeof *e);
	if (e == NULL)
		goto out;
	int n = parse_entries(items, e);
	scan_fds(e, n);
	for (int i = 0; i < n; i++) {
		int slot = have_table && e[i].kind != 'U' ? cp_sht_find(e[i].cookie) : -1;
		struct cp_sock *s = e[i].s;
		if (s == NULL) { /* not held here (closed by a file action, or close-on-exec) */
			if (slot >= 0)
				cp_sht_add(slot, -1);
			continue;
		}
		if (e[i].kind == 'S') {
			s->shared = slot >= 0;
			s->slot = slot;
			s->unknown_holders = slot < 0; /* counted somewhere the shim cannot reach */
		}
		s->kind = CP_KIND_TCP;
		cp_track_adopt(e[i].first_fd, s, e[i].role == 's' ? CP_ROLE_SERVER : CP_ROLE_CLIENT);
	}
	free(e);
out:
	free(copy);
}
