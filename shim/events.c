/* closepolicy — building the events (see events.h). */
#include "shim/events.h"

#include <errno.h>

#include "shim/counters.h"
#include "shim/hot.h"
#include "shim/log.h"
#include "shim/quiet.h"

static void sock_fields(struct cp_log_line *l, const struct cp_sock *s)
{
	if (s->rule != NULL)
		cp_log_str(l, "rule", s->rule->name);
	if (s->role != CP_ROLE_ANY)
		cp_log_str(l, "role", cp_role_name((enum cp_role)s->role));
	cp_log_addr(l, "local", &s->facts.local, s->facts.local_port);
	cp_log_addr(l, "peer", &s->facts.peer, s->facts.peer_port);
}

void cp_event_policy_loaded(const struct cp_policy *p, bool dry_run, bool cached)
{
	enum cp_log_level level = cp_quiet_load_level();
	if (!cp_log_enabled(level))
		return;
	struct cp_log_line l;
	cp_log_begin(&l, level, "policy");
	cp_log_str(&l, "outcome", "loaded");
	cp_log_str(&l, "file", p->source);
	cp_log_uint(&l, "rules", p->n_rules);
	cp_log_bool(&l, "dry_run", dry_run);
	cp_log_bool(&l, "cached", cached);
	cp_log_end(&l);
}

void cp_event_policy_error(const char *file, const char *message)
{
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_WARN, "policy");
	cp_log_str(&l, "outcome", "rejected");
	cp_log_str(&l, "file", file);
	cp_log_str(&l, "message", message);
	cp_log_end(&l);
}

static void close_fields(struct cp_log_line *l, const struct cp_close_facts *c)
{
	cp_log_int(l, "fd", c->fd);
	sock_fields(l, c->sock);
	cp_log_str(l, "action", cp_action_name(c->action));
	if (c->dry_run)
		cp_log_bool(l, "dry_run", true);
	if (c->unread >= 0)
		cp_log_int(l, "unread", c->unread);
	if (c->unsent >= 0)
		cp_log_int(l, "unsent", c->unsent);
}

static void close_tail(struct cp_log_line *l, const struct cp_close_facts *c)
{
	if (c->tcp.valid) {
		cp_log_str(l, "state", cp_info_state_name(c->tcp.state));
		cp_log_uint(l, "bytes_out", c->tcp.bytes_acked);
		cp_log_uint(l, "bytes_in", c->tcp.bytes_received);
		cp_log_uint(l, "rtt_ms", c->tcp.rtt_us / 1000);
		cp_log_uint(l, "retrans", c->tcp.total_retrans);
	}
	if (c->sock->born_ns != 0)
		cp_log_uint(l, "age_ms", c->age_ms);
	cp_log_str(l, "message", c->message);
}

void cp_event_close(const struct cp_close_facts *c)
{
	if (!cp_log_enabled(CP_LEVEL_INFO))
		return;
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_INFO, "close");
	close_fields(&l, c);
	close_tail(&l, c);
	cp_log_end(&l);
}

void cp_event_close_note(const struct cp_sock *s, int fd, const struct cp_close_note *n,
			 struct cp_log_batch *b)
{
	if (!cp_log_enabled(CP_LEVEL_INFO))
		return;
	struct cp_close_facts c = { .fd = fd, .sock = s, .action = (enum cp_action)n->action,
				    .unread = n->unread, .unsent = n->unsent, .age_ms = n->age_ms,
				    .tcp = n->tcp };
	struct cp_log_line l;
	cp_log_begin_at(&l, CP_LEVEL_INFO, "close", n->ts_us, n->tid);
	close_fields(&l, &c);
	close_tail(&l, &c);
	cp_log_end_into(&l, b);
}

void cp_event_close_held(const struct cp_close_facts *c)
{
	if (!cp_log_enabled(CP_LEVEL_DEBUG))
		return;
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_DEBUG, "close");
	cp_log_int(&l, "fd", c->fd);
	sock_fields(&l, c->sock);
	cp_log_str(&l, "action", cp_action_name(c->action));
	cp_log_str(&l, "message", c->message);
	cp_log_end(&l);
}

void cp_event_stale(int fd, const struct cp_sock *s, const char *message)
{
	if (!cp_log_enabled(CP_LEVEL_DEBUG))
		return;
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_DEBUG, "stale");
	cp_log_int(&l, "fd", fd);
	sock_fields(&l, s);
	cp_log_str(&l, "message", message);
	cp_log_end(&l);
}

void cp_event_risk(const struct cp_close_facts *c, const char *message)
{
	cp_ctr_risk(c);
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_WARN, "risk");
	close_fields(&l, c);
	cp_log_str(&l, "message", message);
	cp_log_end(&l);
}

/* Counted wherever it ends; the code of the line only where it is written (this file is linked
 * with what a forked child does not run: a child that drains at exit below level info runs
 * only the counting, in the block of the code it runs anyway). */
CP_HOT void cp_event_drain(const struct cp_sock *s, int fd, uint64_t bytes, const char *outcome,
			   uint64_t ms, int err)
{
	if (!cp_log_enabled(CP_LEVEL_INFO)) {
		cp_ctr_drain(outcome, ms, err);
		return;
	}
	cp_event_drain_into(NULL, s, fd, bytes, outcome, ms, err);
}

void cp_event_drain_into(struct cp_log_batch *b, const struct cp_sock *s, int fd, uint64_t bytes,
			 const char *outcome, uint64_t ms, int err)
{
	cp_ctr_drain(outcome, ms, err);
	if (!cp_log_enabled(CP_LEVEL_INFO))
		return;
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_INFO, "drain");
	cp_log_int(&l, "fd", fd);
	sock_fields(&l, s);
	cp_log_uint(&l, "bytes", bytes);
	cp_log_str(&l, "outcome", outcome);
	cp_log_uint(&l, "ms", ms);
	if (err != 0)
		cp_log_errno(&l, "errno", err);
	cp_log_end_into(&l, b);
}

void cp_event_options(int fd, const struct cp_sock *s, const struct cp_sockopts *o, int err)
{
	if (!cp_log_enabled(CP_LEVEL_DEBUG))
		return;
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_DEBUG, "options");
	cp_log_int(&l, "fd", fd);
	sock_fields(&l, s);
	cp_log_int(&l, "keepalive", o->keepalive);
	cp_log_int(&l, "keepidle", o->idle_s);
	cp_log_int(&l, "keepintvl", o->interval_s);
	cp_log_int(&l, "keepcnt", o->count);
	cp_log_uint(&l, "user_timeout_ms", o->user_timeout_ms);
	if (err != 0)
		cp_log_errno(&l, "errno", err);
	cp_log_end(&l);
}

void cp_event_error(int fd, const char *what, int err, const char *instead)
{
	cp_ctr_error();
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_WARN, "error");
	if (fd >= 0)
		cp_log_int(&l, "fd", fd);
	if (err != 0)
		cp_log_errno(&l, "errno", err);
	cp_log_str(&l, "message", what);
	cp_log_str(&l, "instead", instead);
	cp_log_end(&l);
}

static void write_fields(struct cp_log_line *l, const struct cp_write_facts *w)
{
	if (w->fd >= 0)
		cp_log_int(l, "fd", w->fd);
	if (w->call == NULL)
		return;
	cp_log_str(l, "call", w->call);
	cp_log_uint(l, "bytes", w->bytes);
	if (w->sock != NULL && w->sock->facts_known) {
		sock_fields(l, w->sock);
		return;
	}
	if (w->sock != NULL && w->sock->rule != NULL)
		cp_log_str(l, "rule", w->sock->rule->name);
	if (w->sock != NULL && w->sock->role != CP_ROLE_ANY)
		cp_log_str(l, "role", cp_role_name((enum cp_role)w->sock->role));
	cp_log_addr(l, "local", &w->addr.local, w->addr.local_port);
	cp_log_addr(l, "peer", &w->addr.peer, w->addr.peer_port);
}

void cp_event_epipe(const struct cp_write_facts *w, int err, const char *message)
{
	cp_ctr_epipe(w->call, err);
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_WARN, err == ECONNRESET ? "econnreset" : "epipe");
	write_fields(&l, w);
	cp_log_errno(&l, "errno", err);
	cp_log_str(&l, "message", message);
	cp_log_end(&l);
}

void cp_event_sigpipe(const struct cp_write_facts *w, const char *disposition, const char *message,
		      int sender_pid)
{
	cp_ctr_sigpipe(w->call);
	struct cp_log_line l;
	cp_log_begin(&l, CP_LEVEL_WARN, "sigpipe");
	cp_log_str(&l, "signal", "SIGPIPE");
	cp_log_str(&l, "disposition", disposition);
	write_fields(&l, w);
	if (sender_pid > 0)
		cp_log_int(&l, "sender_pid", sender_pid);
	cp_log_str(&l, "message", message);
	cp_log_end(&l);
}
