/* closepolicy — the state a forked child must not inherit, on one page the child gets zeroed.
 *
 * fork write-protects every private page; each page either process writes afterwards is a page
 * fault (and a copy while the other still maps it). What a fork itself writes — the gate that
 * holds closes off (refs.c), the allocator's private list and its lock (sock.c), the cached pid
 * (log lines) — lives here instead, on a page marked MADV_WIPEONFORK before the first fork: the
 * kernel leaves the parent's page writable and gives the child a fresh zero page, which is
 * exactly a new process's state (every field starts at zero). The child touches it only when it
 * uses it, and a fork costs no fault for it in either process. */
#ifndef CLOSEPOLICY_PERPROC_H
#define CLOSEPOLICY_PERPROC_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#if defined(__has_include)
#if __has_include(<sys/single_threaded.h>)
#include <sys/single_threaded.h>
#define CP_HAVE_SINGLE_THREADED 1
#endif
#endif

struct cp_sock;
struct cp_ctr_file;

#define CP_PERPROC_SIZE 4096

/* A whole page to itself (aligned, padded), so the mark covers nothing else. */
struct cp_perproc {
	union {
		struct {
			/* refs.c: the gate (refs.h) */
			atomic_uint readers;            /* threads between enter and leave */
			atomic_int held_off;            /* 0 open; 1 held by a fork/exec/spawn; 2 held, with waiters */
			_Atomic(void *) holder;         /* the thread holding the gate (its TLS marker) */
			_Atomic(void *) fork_caller;    /* the thread in the fork wrapper, if any */
			/* sock.c: recycled objects taken for reuse (the stack of released ones is
			 * on the descriptor table's first page: sock.c says why) */
			struct cp_sock *spare;
			pthread_mutex_t spare_lock;     /* all zero: PTHREAD_MUTEX_INITIALIZER */
			/* this process's id, 0 until asked (a child's page starts at 0) */
			atomic_int pid;
			/* sigdisp.c: the lock of the SIGPIPE record's writers, and the thread whose
			 * fork holds it (a fork takes it without a system call; the child finds it
			 * open) */
			atomic_flag sigdisp_lock;
			_Atomic(void *) sigdisp_fork_holder;
			/* counters.c: this process's counters file (a child makes its own) */
			struct cp_ctr_file *ctr_mine;
			int ctr_state, ctr_maker_tid;
			char ctr_path[512];
			/* reload.c: this process's reload thread (not in a child) */
			int reload_started, reload_stop;
			struct cp_ctr_file *reload_file;
			pthread_t reload_thread;
			/* drainnow.c: this process has forked (a child starts without it): its
			 * closed sockets wait for its own calls to be drained (no thread) */
			atomic_int forked;
		};
		char page_[CP_PERPROC_SIZE];
	};
};

extern struct cp_perproc cp_perproc;

/* Before a fork: mark the page (once per process image; the mark is inherited). */
void cp_perproc_arm(void);
/* In the child: when the page could not be marked, clear it by hand. */
void cp_perproc_child(void);
/* getpid(), asked once per process. */
int cp_perproc_pid(void);

/* No other thread exists (glibc's own flag: false once a thread was ever created). */
static inline bool cp_single_threaded(void)
{
#ifdef CP_HAVE_SINGLE_THREADED
	return __libc_single_threaded;
#else
	return false;
#endif
}

#endif
