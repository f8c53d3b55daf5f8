/* closepolicy — the log writer (libclosepolicy(7), LOG).
 * A line is built in a caller's stack buffer with the cp_log_* calls and written with one
 * write(2): no malloc, no stdio, no locks, so the writer is safe in signal handlers and at exit.
 * The same calls produce text ("closepolicy[PID]: event=close fd=5 ...") or JSON lines. */
#ifndef CLOSEPOLICY_LOG_H
#define CLOSEPOLICY_LOG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "policy/policy.h"

#define CP_LOG_LINE_MAX 1536

struct cp_log_line {
	char buf[CP_LOG_LINE_MAX];
	size_t len;
	bool json, full;
	enum cp_log_level level;
	const char *event;
	int tid; /* the thread the line is about (the one that began it, unless cp_log_begin_at) */
	uint64_t ts_us; /* CLOCK_REALTIME in microseconds: when it happened */
};

/* Lines gathered by one thread (the drainer) and written with one write(2): info lines need not
 * cost a system call each. Syslog takes one datagram per line: there each line goes at once. */
struct cp_log_batch {
	char *buf; /* the holder's storage */
	size_t cap, len;
};

/* Where and how to write. target/format/level come from the policy, with the environment's
 * overrides already applied (init.c). Opening a file or the syslog socket may fail: the writer
 * then falls back to stderr and returns -1 (the caller logs an `error` event). */
int cp_log_configure(enum cp_log_target target, const char *path, enum cp_log_format format,
		     enum cp_log_level level);
void cp_log_set_program(const char *program);
bool cp_log_enabled(enum cp_log_level level);
/* The log's own descriptor (-1 for stderr): the shim marks it as its own in the table. */
int cp_log_fd(void);
/* The log's descriptor moved from `from` to `to` (the program took its number with dup2).
 * False when the log does not hold `from`. */
bool cp_log_fd_moved(int from, int to);

/* Build a line. begin() starts it with ts, pid, tid, program and event. */
void cp_log_begin(struct cp_log_line *l, enum cp_log_level level, const char *event);
/* The same for a line about something that happened earlier, in thread tid, at ts_us. */
void cp_log_begin_at(struct cp_log_line *l, enum cp_log_level level, const char *event,
		     uint64_t ts_us, int tid);
/* This thread's id, asked of the kernel once per thread (and again after fork). */
int cp_log_tid(void);
uint64_t cp_log_now_us(void);
void cp_log_str(struct cp_log_line *l, const char *key, const char *value);
void cp_log_int(struct cp_log_line *l, const char *key, int64_t value);
void cp_log_uint(struct cp_log_line *l, const char *key, uint64_t value);
void cp_log_bool(struct cp_log_line *l, const char *key, bool value);
/* "127.0.0.1:8080" or "[::1]:443"; nothing when the address is unknown. */
void cp_log_addr(struct cp_log_line *l, const char *key, const struct cp_addr *addr, uint16_t port);
/* An errno value by name ("EPIPE"), or its number when the name is unknown. */
void cp_log_errno(struct cp_log_line *l, const char *key, int err);
void cp_log_end(struct cp_log_line *l);
/* End the line into b (written when b is full or flushed); b NULL: as cp_log_end. */
void cp_log_end_into(struct cp_log_line *l, struct cp_log_batch *b);
void cp_log_batch_flush(struct cp_log_batch *b);

const char *cp_errno_name(int err);

#endif
