/* closepolicy — the events of libclosepolicy(7), each built from what the shim knows and written
 * through the log writer. Each function checks the level itself and preserves errno. */
#ifndef CLOSEPOLICY_EVENTS_H
#define CLOSEPOLICY_EVENTS_H

#include <stdint.h>

#include "policy/policy.h"
#include "shim/log.h"
#include "shim/sock.h"
#include "shim/sockinfo.h"

void cp_event_policy_loaded(const struct cp_policy *p, bool dry_run, bool cached);
void cp_event_policy_error(const char *file, const char *message);

/* The state of a socket at its close, gathered once and shared by close and risk events. */
struct cp_close_facts {
	int fd;
	const struct cp_sock *sock;
	enum cp_action action; /* taken, or that would be taken in dry run */
	bool dry_run;
	int unread, unsent;
	uint64_t age_ms;
	struct cp_tcp_summary tcp;
	const char *message; /* NULL or why the action differs from the rule's */
};
void cp_event_close(const struct cp_close_facts *c);
/* The close line of a socket handed to the drainer, written by it into b (log.h). */
void cp_event_close_note(const struct cp_sock *s, int fd, const struct cp_close_note *n,
			 struct cp_log_batch *b);
/* A close that leaves the socket to its other holders (debug level): fd, rule, message. */
void cp_event_close_held(const struct cp_close_facts *c);
/* A table entry found stale: fd is no longer the socket registered (debug level). */
void cp_event_stale(int fd, const struct cp_sock *s, const char *message);
void cp_event_risk(const struct cp_close_facts *c, const char *message);

/* outcome: "eof", "idle", "max", "reset", "exit" */
void cp_event_drain(const struct cp_sock *s, int fd, uint64_t bytes, const char *outcome, uint64_t ms,
		    int err);
/* The same into a batch of lines (NULL: written at once). */
void cp_event_drain_into(struct cp_log_batch *b, const struct cp_sock *s, int fd, uint64_t bytes,
			 const char *outcome, uint64_t ms, int err);
void cp_event_options(int fd, const struct cp_sock *s, const struct cp_sockopts *o, int err);
/* A write-type call, for the epipe, econnreset and sigpipe events. */
struct cp_write_facts {
	int fd;                       /* -1: unknown (a SIGPIPE from outside the wrapped calls) */
	const char *call;             /* "send", "write", ...; NULL: unknown */
	uint64_t bytes;               /* attempted */
	const struct cp_sock *sock;   /* a socket the shim follows, or NULL */
	struct cp_socket_facts addr;  /* else, for a socket: its addresses (family 0: unknown) */
};
/* err EPIPE: an `epipe` event; ECONNRESET: `econnreset`. message may be NULL. */
void cp_event_epipe(const struct cp_write_facts *w, int err, const char *message);
/* disposition: "default", "ignore", "handler"; sender_pid 0 = none or this process. */
void cp_event_sigpipe(const struct cp_write_facts *w, const char *disposition, const char *message,
		      int sender_pid);

/* The shim could not do something; `instead` says what it did. */
void cp_event_error(int fd, const char *what, int err, const char *instead);

#endif
