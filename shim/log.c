/* closepolicy — the log writer (see log.h). */
#include "shim/log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "shim/counters.h"
#include "shim/hot.h"
#include "shim/ownfd.h"
#include "shim/quiet.h"
#include "shim/perproc.h"
#include "shim/real.h"
#include "shim/sigpipe.h"
#include "shim/errsave.h"

static struct {
	enum cp_log_target target;
	enum cp_log_format format;
	enum cp_log_level level;
	atomic_int fd; /* file or syslog socket; -1 = stderr */
	char path[512];
	char program[128];
} cfg = { .target = CP_LOG_STDERR, .level = CP_LEVEL_INFO, .fd = -1 };

/* ---- opening targets ---- */

static int open_file(const char *path)
{
	int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (fd < 0)
		return -1;
	int high = cp_ownfd_move_high(fd);
	if (high < 0) { /* keep the low one rather than lose the log */
		cp_ownfd_mark(fd);
		return fd;
	}
	return high;
}

static int open_syslog(void)
{
	int fd = cp_real_socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	struct sockaddr_un sun = { .sun_family = AF_UNIX, .sun_path = "/dev/log" };
	if (cp_real_connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		cp_real_close(fd);
		return -1;
	}
	int high = cp_ownfd_move_high(fd);
	if (high < 0) {
		cp_ownfd_mark(fd);
		return fd;
	}
	return high;
}

int cp_log_configure(enum cp_log_target target, const char *path, enum cp_log_format format,
		     enum cp_log_level level)
{
	int old = atomic_exchange(&cfg.fd, -1);
	if (old >= 0)
		cp_ownfd_close(old);
	cfg.format = format;
	cfg.level = level;
	cfg.target = CP_LOG_STDERR;
	int fd = -1;
	if (target == CP_LOG_FILE && path != NULL && strlen(path) < sizeof cfg.path) {
		if (path != cfg.path)
			strcpy(cfg.path, path);
		fd = open_file(path);
	} else if (target == CP_LOG_SYSLOG) {
		fd = open_syslog();
	} else if (target == CP_LOG_STDERR) {
		return 0;
	}
	if (fd < 0)
		return -1;
	cfg.target = target;
	atomic_store(&cfg.fd, fd);
	return 0;
}

void cp_log_set_program(const char *program)
{
	size_t n = strlen(program);
	if (n >= sizeof cfg.program)
		n = sizeof cfg.program - 1;
	memcpy(cfg.program, program, n);
	cfg.program[n] = '\0';
}

/* Asked by every close a forked child makes (and by its exit path): with the code a child runs,
 * not in this file's block of code (see Makefile, COLD_OBJ). */
CP_HOT bool cp_log_enabled(enum cp_log_level level)
{
	return level <= cfg.level;
}

int cp_log_fd(void)
{
	return atomic_load(&cfg.fd);
}

bool cp_log_fd_moved(int from, int to)
{
	return atomic_compare_exchange_strong(&cfg.fd, &from, to);
}

/* ---- formatting: bounded appends into the line buffer ---- */

static void put(struct cp_log_line *l, const char *s, size_t n)
{
	/* keep room for the closing "}\n" */
	if (l->full || l->len + n + 2 > sizeof l->buf) {
		l->full = true;
		return;
	}
	memcpy(l->buf + l->len, s, n);
	l->len += n;
}

static void puts_(struct cp_log_line *l, const char *s)
{
	put(l, s, strlen(s));
}

static void put_u64(struct cp_log_line *l, uint64_t v)
{
	char tmp[24];
	size_t i = sizeof tmp;
	do
		tmp[--i] = (char)('0' + v % 10);
	while ((v /= 10) != 0);
	put(l, tmp + i, sizeof tmp - i);
}

static void put_i64(struct cp_log_line *l, int64_t v)
{
	if (v < 0) {
		put(l, "-", 1);
		put_u64(l, (uint64_t)0 - (uint64_t)v);
	} else {
		put_u64(l, (uint64_t)v);
	}
}

/* Zero-padded to width digits. */
static void put_u64w(struct cp_log_line *l, uint64_t v, int width)
{
	char tmp[24];
	int i = (int)sizeof tmp;
	do {
		tmp[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (--width > 0 || v != 0);
	put(l, tmp + i, sizeof tmp - (size_t)i);
}

static void put_hex2(struct cp_log_line *l, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char t[2] = { hex[c >> 4], hex[c & 15] };
	put(l, t, 2);
}

static bool text_needs_quotes(const char *s)
{
	if (*s == '\0')
		return true;
	for (; *s; s++)
		if (*s == ' ' || *s == '"' || *s == '=' || *s == '\\' || (unsigned char)*s < 0x20)
			return true;
	return false;
}

/* JSON string body, or a quoted text value: escapes ", \ and control characters. */
static void put_escaped(struct cp_log_line *l, const char *s)
{
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;
		if (c == '"' || c == '\\') {
			char t[2] = { '\\', (char)c };
			put(l, t, 2);
		} else if (c == '\n') {
			put(l, "\\n", 2);
		} else if (c == '\t') {
			put(l, "\\t", 2);
		} else if (c < 0x20 || c == 0x7f) {
			put(l, "\\u00", 4);
			put_hex2(l, c);
		} else {
			put(l, (const char *)&c, 1);
		}
	}
}

static void key(struct cp_log_line *l, const char *k)
{
	if (l->json) {
		put(l, ",\"", 2);
		puts_(l, k);
		put(l, "\":", 2);
	} else {
		put(l, " ", 1);
		puts_(l, k);
		put(l, "=", 1);
	}
}

static void put_ts(struct cp_log_line *l)
{
	put_u64(l, l->ts_us / 1000000u);
	put(l, ".", 1);
	put_u64w(l, l->ts_us % 1000000u, 6);
}

uint64_t cp_log_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* A thread's id costs a system call: asked once per thread. fork gives the child's thread a new
 * id, so the cache is tied to the process (its pid, on the page a child starts with zeroed). */
static __thread __attribute__((tls_model("initial-exec"))) int tid_pid, tid_cached;

int cp_log_tid(void)
{
	/* cached per thread, for this process: a fork's child asks again (its per-process page
	 * starts zeroed, so nothing is written at the fork) */
	int pid = cp_perproc_pid();
	if (tid_pid != pid) {
		tid_cached = (int)cp_real_syscall(SYS_gettid);
		tid_pid = pid;
	}
	return tid_cached;
}

void cp_log_begin_at(struct cp_log_line *l, enum cp_log_level level, const char *event,
		     uint64_t ts_us, int tid)
{
	l->len = 0;
	l->full = false;
	l->level = level;
	l->event = event;
	l->json = cfg.format == CP_FORMAT_JSON;
	l->ts_us = ts_us;
	l->tid = tid;
	if (l->json) {
		puts_(l, "{\"ts\":");
		put_ts(l);
		puts_(l, ",\"pid\":");
		put_u64(l, (uint64_t)cp_perproc_pid()); /* a child's own, asked at its first line */
		puts_(l, ",\"tid\":");
		put_u64(l, (uint64_t)tid);
		cp_log_str(l, "program", cfg.program);
		cp_log_str(l, "event", event);
	} else {
		puts_(l, "closepolicy[");
		put_u64(l, (uint64_t)cp_perproc_pid());
		puts_(l, "]: event=");
		puts_(l, event);
	}
}

void cp_log_begin(struct cp_log_line *l, enum cp_log_level level, const char *event)
{
	cp_log_begin_at(l, level, event, cp_log_now_us(), cp_log_tid());
}

void cp_log_str(struct cp_log_line *l, const char *k, const char *value)
{
	if (value == NULL)
		return;
	key(l, k);
	if (l->json || text_needs_quotes(value)) {
		put(l, "\"", 1);
		put_escaped(l, value);
		put(l, "\"", 1);
	} else {
		puts_(l, value);
	}
}

void cp_log_int(struct cp_log_line *l, const char *k, int64_t value)
{
	key(l, k);
	put_i64(l, value);
}

void cp_log_uint(struct cp_log_line *l, const char *k, uint64_t value)
{
	key(l, k);
	put_u64(l, value);
}

void cp_log_bool(struct cp_log_line *l, const char *k, bool value)
{
	key(l, k);
	puts_(l, value ? "true" : "false");
}

void cp_log_addr(struct cp_log_line *l, const char *k, const struct cp_addr *a, uint16_t port)
{
	char buf[64];
	size_t n = 0;
	if (a->family == 4) {
		for (int i = 0; i < 4; i++) {
			unsigned v = a->bytes[i];
			if (i)
				buf[n++] = '.';
			if (v >= 100)
				buf[n++] = (char)('0' + v / 100);
			if (v >= 10)
				buf[n++] = (char)('0' + v / 10 % 10);
			buf[n++] = (char)('0' + v % 10);
		}
	} else if (a->family == 6) {
		/* RFC 5952: lower case, no leading zeros, the longest run (>= 2) of zero groups as "::" */
		static const char hex[] = "0123456789abcdef";
		unsigned g[8];
		int best = -1, bestlen = 1;
		for (int i = 0; i < 8; i++)
			g[i] = (unsigned)a->bytes[2 * i] << 8 | a->bytes[2 * i + 1];
		for (int i = 0; i < 8;) {
			int j = i;
			while (j < 8 && g[j] == 0)
				j++;
			if (j - i > bestlen) {
				best = i;
				bestlen = j - i;
			}
			i = j > i ? j : i + 1;
		}
		buf[n++] = '[';
		for (int i = 0; i < 8; i++) {
			if (i == best) {
				buf[n++] = ':';
				buf[n++] = ':';
				i += bestlen - 1;
				continue;
			}
			if (i > 0 && i != best + bestlen)
				buf[n++] = ':';
			bool lead = true;
			for (int sh = 12; sh >= 0; sh -= 4) {
				unsigned d = g[i] >> sh & 15;
				if (d == 0 && lead && sh > 0)
					continue;
				lead = false;
				buf[n++] = hex[d];
			}
		}
		buf[n++] = ']';
	} else {
		return;
	}
	buf[n++] = ':';
	char tmp[8];
	int i = (int)sizeof tmp;
	unsigned p = port;
	do
		tmp[--i] = (char)('0' + p % 10);
	while ((p /= 10) != 0);
	memcpy(buf + n, tmp + i, sizeof tmp - (size_t)i);
	n += sizeof tmp - (size_t)i;
	buf[n] = '\0';
	cp_log_str(l, k, buf);
}

const char *cp_errno_name(int err)
{
	switch (err) {
	case EPIPE: return "EPIPE";
	case ECONNRESET: return "ECONNRESET";
	case EBADF: return "EBADF";
	case EMFILE: return "EMFILE";
	case ENFILE: return "ENFILE";
	case ENOMEM: return "ENOMEM";
	case ENOTCONN: return "ENOTCONN";
	case ENOTSOCK: return "ENOTSOCK";
	case ETIMEDOUT: return "ETIMEDOUT";
	case EINVAL: return "EINVAL";
	case EINTR: return "EINTR";
	case EAGAIN: return "EAGAIN";
	case EACCES: return "EACCES";
	case ENOENT: return "ENOENT";
	case ELOOP: return "ELOOP";
	case EPERM: return "EPERM";
	case ENOPROTOOPT: return "ENOPROTOOPT";
	case EHOSTUNREACH: return "EHOSTUNREACH";
	case ECONNREFUSED: return "ECONNREFUSED";
	case ECONNABORTED: return "ECONNABORTED";
	case ENOSPC: return "ENOSPC";
	case EISDIR: return "EISDIR";
	case ENOTDIR: return "ENOTDIR";
	default: return NULL;
	}
}

void cp_log_errno(struct cp_log_line *l, const char *k, int err)
{
	const char *name = cp_errno_name(err);
	if (name != NULL)
		cp_log_str(l, k, name);
	else
		cp_log_int(l, k, err);
}

/* ---- writing ---- */

static void write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		/* not write(): the shim's wrapper must never see the log's own writes, and a broken
		 * pipe on stderr must not give the program a SIGPIPE of the shim's making */
		ssize_t w = cp_sigpipe_quiet_write(fd, buf, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return;
		buf += w;
		n -= (size_t)w;
	}
}

/* The log file cannot be written: log to stderr from now on, say so once, and write the lines
 * that failed there too. fd >= 0: the file's descriptor, given up by the one thread that wins. */
static atomic_int fell_back;

static void fall_back(int fd, int err, const char *what, const char *buf, size_t len)
{
	if (fd >= 0 && atomic_compare_exchange_strong(&cfg.fd, &fd, -1))
		cp_ownfd_close(fd);
	if (atomic_exchange(&fell_back, 1) == 0) {
		struct cp_log_line e;
		cp_log_begin(&e, CP_LEVEL_WARN, "error");
		cp_log_errno(&e, "errno", err);
		cp_log_str(&e, "message", what);
		cp_log_str(&e, "file", cfg.path);
		cp_log_str(&e, "instead", "logging to stderr");
		cp_log_end(&e); /* to stderr now: cfg.fd is -1 */
	}
	write_all(2, buf, len);
}

/* Whole lines (one, or a batch) to the file or stderr. */
static void write_lines(const char *buf, size_t len)
{
	int fd = atomic_load(&cfg.fd);
	if (cfg.target == CP_LOG_FILE && fd >= 0) {
		ssize_t w;
		do
			w = cp_sigpipe_quiet_write(fd, buf, len);
		while (w < 0 && errno == EINTR);
		if (w < 0 && errno == EBADF) { /* closed behind the shim's back (a raw close_range) */
			/* (or by another thread falling back: then stay on stderr) */
			if (!atomic_load(&fell_back) &&
			    cp_log_configure(CP_LOG_FILE, cfg.path, cfg.format, cfg.level) == 0)
				write_all(atomic_load(&cfg.fd), buf, len);
			else
				fall_back(-1, errno, "cannot reopen the log file", buf, len);
		} else if (w < 0) { /* a full disk, an I/O error: the program must not notice */
			fall_back(fd, errno, "cannot write the log file", buf, len);
		} else if ((size_t)w < len) {
			write_all(fd, buf + w, len - (size_t)w);
		}
	} else {
		write_all(2, buf, len);
	}
}

/* False when log.rate holds the line back (counted as dropped). */
static bool finish_line(struct cp_log_line *l)
{
	if (!cp_quiet_admit(l->event)) /* log.rate; counted as dropped */
		return false;
	cp_ctr_log_line(true);
	if (!l->json) {
		cp_log_str(l, "program", cfg.program);
		cp_log_uint(l, "tid", (uint64_t)l->tid);
		key(l, "ts");
		put_ts(l);
	}
	if (l->full) { /* the two reserved bytes are always there */
		const char *mark = l->json ? "" : " ...";
		size_t m = strlen(mark);
		if (l->len + m + 2 <= sizeof l->buf) {
			memcpy(l->buf + l->len, mark, m);
			l->len += m;
		}
	}
	if (l->json)
		l->buf[l->len++] = '}';
	l->buf[l->len++] = '\n';
	return true;
}

void cp_log_end(struct cp_log_line *l)
{
	int saved = errno;
	if (!finish_line(l)) {
		cp_errno_restore(saved);
		return;
	}
	int fd = atomic_load(&cfg.fd);
	if (cfg.target == CP_LOG_SYSLOG && fd >= 0) {
		/* "<PRI>closepolicy[PID]: ...": facility daemon; the text line already carries the tag */
		/* facility daemon (3) * 8 + severity warning 4 / info 6 / debug 7 */
		int pri = 24 + (l->level == CP_LEVEL_WARN ? 4 : l->level == CP_LEVEL_INFO ? 6 : 7);
		char msg[CP_LOG_LINE_MAX + 8] = { '<', (char)('0' + pri / 10), (char)('0' + pri % 10), '>' };
		memcpy(msg + 4, l->buf, l->len - 1);
		(void)cp_real_syscall(SYS_sendto, fd, msg, l->len - 1 + 4, MSG_NOSIGNAL | MSG_DONTWAIT, NULL, 0);
	} else {
		write_lines(l->buf, l->len);
	}
	cp_errno_restore(saved);
}

void cp_log_batch_flush(struct cp_log_batch *b)
{
	if (b->len == 0)
		return;
	int saved = errno;
	write_lines(b->buf, b->len);
	b->len = 0;
	cp_errno_restore(saved);
}

void cp_log_end_into(struct cp_log_line *l, struct cp_log_batch *b)
{
	if (b == NULL || cfg.target == CP_LOG_SYSLOG)
		return cp_log_end(l);
	if (!finish_line(l))
		return;
	if (b->len + l->len > b->cap)
		cp_log_batch_flush(b);
	if (l->len > b->cap)
		return write_lines(l->buf, l->len);
	memcpy(b->buf + b->len, l->buf, l->len);
	b->len += l->len;
}
