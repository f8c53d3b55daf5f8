/* closepolicy — the layout of a process's counters file, shared by the shim (which writes it)
 * and the command (stat, top and reload read it). One file per process, named by its PID, in
 * the run directory (counters.h says where). The header is written first and `accessible` set
 * last, so a reader never trusts a half-made file; the command checks magic, version and every
 * size before it reads a counter, since the file may be anything by the time it opens it.
 * Counters are 64-bit words updated with relaxed atomic adds. */
#ifndef CLOSEPOLICY_COUNTERS_FILE_H
#define CLOSEPOLICY_COUNTERS_FILE_H

#include <stdint.h>

#define CP_CTR_MAGIC 0x31525443504c4350ULL /* "PCLPCTR1" little-endian */
#define CP_CTR_VERSION 1u

enum { CP_CTR_ACTIONS = 4 }; /* passthrough, graceful, linger, reset (enum cp_action order) */
enum cp_ctr_drain { CP_DRAIN_EOF, CP_DRAIN_IDLE, CP_DRAIN_MAX, CP_DRAIN_RESET, CP_DRAIN_EXIT,
		    CP_DRAIN_ERROR, CP_CTR_DRAINS };
enum cp_ctr_call { CP_CALL_WRITE, CP_CALL_WRITEV, CP_CALL_SEND, CP_CALL_SENDTO, CP_CALL_SENDMSG,
		   CP_CALL_SENDMMSG, CP_CALL_SENDFILE, CP_CALL_SPLICE, CP_CALL_OTHER, CP_CTR_CALLS };
#define CP_CTR_HIST 24      /* drain durations: bucket 0 < 1 ms, bucket i < 2^i ms, the last: more */
#define CP_CTR_RULES 64     /* rules counted by name; later names go to the last slot, "(other)" */
#define CP_CTR_NAME 64
#define CP_CTR_PATH 1024

/* The names the command prints, in enum order. */
#define CP_CTR_DRAIN_NAMES { "eof", "idle", "max", "reset", "exit", "error" }
#define CP_CTR_CALL_NAMES { "write", "writev", "send", "sendto", "sendmsg", "sendmmsg", "sendfile", \
			    "splice", "other" }

struct cp_ctr_rule {
	uint32_t state; /* 0 free, 1 being named, 2 named */
	uint32_t pad;
	char name[CP_CTR_NAME];
	uint64_t closes[CP_CTR_ACTIONS];
	uint64_t risk;
};

struct cp_ctr_file {
	/* ---- header: written once, before `accessible` ---- */
	uint64_t magic;
	uint32_t version;
	uint32_t header_size;   /* offsetof(counters) */
	uint32_t file_size;     /* sizeof(struct cp_ctr_file): the file is at least this long */
	uint32_t n_rules;       /* CP_CTR_RULES */
	uint32_t n_hist;        /* CP_CTR_HIST */
	uint32_t accessible;    /* 1 once everything above is written */
	int32_t pid;
	uint32_t uid;
	uint64_t start_ns;      /* CLOCK_REALTIME when the file was made */
	char program[128];

	/* ---- the policy in force (under policy_seq: odd while it changes) ---- */
	uint32_t policy_seq;
	uint32_t pad0;
	uint64_t generation;    /* 1 = the policy of start-up; +1 per reload taken */
	uint64_t loaded_ns;     /* CLOCK_REALTIME of that load */
	uint64_t rejected;      /* reloads the process refused (the old policy stayed) */
	char policy[CP_CTR_PATH];   /* the file, or "(built-in default)" */
	char last_error[512];   /* why the last reload was refused */

	/* ---- reload requests: the command writes, the process answers ---- */
	uint32_t req_lock;      /* PID of the command holding the request slot, 0 = free */
	uint32_t req_seq;       /* bumped by the command after req_path: futex word */
	uint32_t done_seq;      /* req_seq the process has answered */
	uint32_t done_ok;       /* 1: taken (generation bumped), 0: refused (last_error) */
	char req_path[CP_CTR_PATH]; /* "" = the file in force */

	/* ---- counters ---- */
	uint64_t closes[CP_CTR_ACTIONS]; /* every TCP connection's last close, by the action taken */
	uint64_t closes_norule[CP_CTR_ACTIONS]; /* of those, sockets no rule matched */
	uint64_t dry_run;                /* of those, decisions not carried out (dry run) */
	uint64_t risk, risk_unread;      /* closes the kernel answers with RST; bytes left unread */
	uint64_t drains[CP_CTR_DRAINS];
	uint64_t draining, draining_high, max_draining_hits;
	uint64_t drain_ms[CP_CTR_HIST];
	uint64_t drain_ms_total;         /* the sum of the durations, for averages */
	uint64_t epipe[CP_CTR_CALLS], sigpipe[CP_CTR_CALLS];
	uint64_t econnreset, errors;
	uint64_t log_lines, log_dropped;
	uint32_t rules_used;             /* slots handed out (may pass CP_CTR_RULES: clamp) */
	uint32_t pad1;
	struct cp_ctr_rule rules[CP_CTR_RULES];
};

#endif
