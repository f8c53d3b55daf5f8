/* closepolicy integration tests — shared helpers.
 * The test process itself is never preloaded: it plays the peer and asserts what the peer saw
 * on the wire, while the program under test runs with LD_PRELOAD=$BUILD/libclosepolicy.so.
 * Every wait is on a condition (a line from the program, a log line, a socket event) with a
 * deadline; nothing sleeps to synchronise. */
#ifndef CLOSEPOLICY_HARNESS_H
#define CLOSEPOLICY_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include <cmocka.h>

#define H_MB4 (4L << 20)

/* A program under the shim, with its own temporary directory for the policy and the log. */
struct h_proc {
	pid_t pid;
	int out;       /* the program's stdout */
	int in;        /* the program's stdin */
	char dir[64];  /* temporary directory */
	char log[128]; /* CLOSEPOLICY_LOG */
	char policy[128];
	char buf[8192]; /* stdout read but not yet returned as lines */
	size_t len;
	bool exited;
	int status;
};

/* Start $BUILD/progs/PROG with args (NULL-terminated). policy_yaml NULL = no CLOSEPOLICY_FILE
 * (the built-in default policy). env: extra "NAME=VALUE" strings, NULL-terminated, or NULL. */
void h_spawn(struct h_proc *p, const char *policy_yaml, const char *const *env, const char *prog, ...);
/* step_server under policy_yaml: its port, from its first line ("port N lfd M"; the tests that
 * need its listener's number read the line themselves). */
int h_step_server(struct h_proc *p, const char *policy_yaml);
/* The next line of the program's stdout (without newline); fails the test after timeout_ms. */
void h_line(struct h_proc *p, char *line, size_t size, int timeout_ms);
/* Read lines until one starts with `prefix`; return the number after it. */
long h_expect(struct h_proc *p, const char *prefix, int timeout_ms);
/* Test programs that report as they go (sigpipe_prog): the next line starting with prefix, into
 * line (a line starting with FAIL fails the test); a line equal to want; "done", then exit 0. */
void h_expect_line(struct h_proc *p, const char *prefix, char *line, size_t size);
void h_expect_exact(struct h_proc *p, const char *want);
void h_expect_done_exit_0(struct h_proc *p);
/* A bash script run to its end, with $CP (the closepolicy command), $PROG (progs/sigpipe_prog)
 * and $LOG (p->log, in a fresh p->dir) set; it must exit 0. Its output goes to out. */
void h_shell(struct h_proc *p, const char *script, char *out, size_t size);
/* Send "exit", wait for exit status 0 (the log shown otherwise), then h_finish. */
void h_exit_ok(struct h_proc *p);
/* Step-driven programs (step_server): send a formatted command; the next line must be exactly
 * the formatted answer. */
__attribute__((format(printf, 2, 3))) void h_sayf(struct h_proc *p, const char *fmt, ...);
__attribute__((format(printf, 2, 3))) void h_answer(struct h_proc *p, const char *fmt, ...);
/* Send a line to the program's stdin. */
void h_say(struct h_proc *p, const char *line);
/* Wait for exit (kill after timeout_ms, which fails the test); return the wait status. */
int h_wait(struct h_proc *p, int timeout_ms);
/* Kill if still running, reap, remove the temporary files. */
void h_finish(struct h_proc *p);

/* $BUILD/name as an absolute path (static storage: the next call overwrites it). */
const char *h_build_path(const char *name);
/* Run argv (argv[0] a path) not preloaded (LD_PRELOAD and CLOSEPOLICY_* removed), with the extra
 * "NAME=VALUE" strings of env (NULL-terminated, or NULL); its stdout, up to size - 1 bytes and
 * NUL-terminated, in out. Returns the wait status; fails the test after timeout_ms. */
int h_run(const char *const argv[], const char *const *env, char *out, size_t size, int timeout_ms);

/* The whole log (malloc'd, NUL-terminated; "" when absent). */
char *h_log(const struct h_proc *p);
/* Lines of the log containing every one of the NULL-terminated needles. */
int h_log_count(const struct h_proc *p, ...);
/* Wait until the log has a line containing every needle (inotify; no sleeping). Returns that
 * line (malloc'd) or NULL at the deadline. */
char *h_log_wait(const struct h_proc *p, int timeout_ms, ...);
/* Wait until at least n lines contain every needle (inotify; no sleeping): their count then, or
 * the smaller count at the deadline. */
int h_log_wait_lines(const struct h_proc *p, int n, int timeout_ms, ...);
/* Wait until the existing file `path` contains `needle` (inotify; no sleeping): its whole text
 * (malloc'd), or NULL at the deadline. */
char *h_file_wait(const char *path, const char *needle, int timeout_ms);
/* The value of "key=" in a text log line, as a number (-1 when absent). */
long h_field(const char *line, const char *key);

/* Sockets of the peer (the test process). */
int h_listen(int *port);
/* Connect to 127.0.0.1:port; rcvbuf > 0 sets SO_RCVBUF first (small buffers keep data queued at
 * the sender, so a lost tail is visible). */
int h_connect(int port, int rcvbuf);
void h_send_all(int fd, const void *buf, size_t n);
/* Read until EOF or an error: bytes read, and 0 (EOF) or the errno that ended it. */
struct h_read {
	uint64_t bytes;
	int err;
};
struct h_read h_read_to_end(int fd, int timeout_ms);
/* Read until `limit` bytes arrived (not more), EOF or an error. */
struct h_read h_read_upto(int fd, uint64_t limit, int timeout_ms);
/* Read peer to its end: exactly `bytes`, then EOF (not an error); then close it. */
void h_expect_all_then_eof(int peer, uint64_t bytes);

#endif
