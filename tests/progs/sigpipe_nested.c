/* SIGPIPE's disposition changed by handlers while the main flow changes it, for the integration
 * test (run under the shim, and bare as the checker's own check):
 *   sigpipe_nested ROUNDS CALLS [threaded]
 * Two interval timers (SIGALRM, real time; SIGPROF, CPU time) fire every 50 us; both handlers call
 * sigaction(SIGPIPE) (SIGPROF's may interrupt SIGALRM's), while the main flow calls it CALLS times
 * a round. Every call installs an action of its own: its number in the mask (signals 34-63, which
 * the kernel keeps and nothing here raises) and, by that number, a handler, SIG_IGN or SIG_DFL.
 * Checked for each round, after stopping the timers:
 *  - the calls are as if made one after another: each call's old action is the previous call's,
 *    the round's first old the last round's end, and what the program reads back is the one call
 *    no other call saw as old;
 *  - the kernel does what that last action says: a forked child writes to a pipe whose reader is
 *    gone and is killed by SIGPIPE (SIG_DFL), gets EPIPE (SIG_IGN), or runs the handler once;
 * "threaded": an idle thread exists first (the shim's changes then take a lock, signals blocked).
 * Prints "rounds R agree A chained C nested N deep D kinds dfl X ign Y handler Z", then "done":
 * agree and chained count the rounds that passed; nested the handlers' calls made while the main
 * flow was inside its own, deep those made inside another handler's. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define ID_SHIFT 34 /* the mask's bits 34-63 hold a call's number (bit n is signal n + 1) */
#define MAX_CALLS (1 << 20)

struct call {
	uint32_t id, old;
};

static struct call calls[MAX_CALLS];
static atomic_uint ncalls;       /* calls recorded this round */
static atomic_uint next_id = 1;  /* 0: the state before the first call (SIG_DFL, empty mask) */
static volatile sig_atomic_t in_main_call, in_handler, pipe_handled;
static atomic_uint nested, deep;

static void on_pipe(int sig)
{
	(void)sig;
	pipe_handled++;
}

static uint32_t id_of(const struct sigaction *a)
{
	uint64_t w;
	memcpy(&w, &a->sa_mask, sizeof w);
	return (uint32_t)(w >> ID_SHIFT);
}

/* 0: handler, 1: SIG_IGN, 2: SIG_DFL */
static int kind_of(uint32_t id)
{
	return (int)(id % 3);
}

static void one_call(void)
{
	uint32_t id = atomic_fetch_add(&next_id, 1);
	struct sigaction a, old;
	memset(&a, 0, sizeof a);
	a.sa_handler = kind_of(id) == 0 ? on_pipe : kind_of(id) == 1 ? SIG_IGN : SIG_DFL;
	a.sa_flags = SA_RESTART;
	uint64_t w = (uint64_t)id << ID_SHIFT;
	memcpy(&a.sa_mask, &w, sizeof w);
	if (sigaction(SIGPIPE, &a, &old) < 0)
		abort();
	unsigned i = atomic_fetch_add(&ncalls, 1);
	if (i < MAX_CALLS)
		calls[i] = (struct call){ id, id_of(&old) };
}

static void on_timer(int sig)
{
	(void)sig;
	int saved = errno;
	if (in_main_call)
		atomic_fetch_add(&nested, 1);
	if (in_handler)
		atomic_fetch_add(&deep, 1);
	in_handler++;
	one_call();
	in_handler--;
	errno = saved;
}

static void timers(long usec)
{
	struct itimerval t = { { 0, usec }, { 0, usec } };
	setitimer(ITIMER_REAL, &t, NULL);
	setitimer(ITIMER_PROF, &t, NULL);
}

/* The chain of this round's calls from `start`; its end (the last call) in *end. */
static int chained(uint32_t start, unsigned n, uint32_t *end)
{
	uint32_t lo = UINT32_MAX;
	for (unsigned i = 0; i < n; i++)
		if (calls[i].id < lo)
			lo = calls[i].id;
	/* ids of this round are lo .. lo + n - 1; the old of each is `start` or one of them */
	static uint32_t succ[MAX_CALLS + 1]; /* index: old - lo + 1 (0 for start) -> call index + 1 */
	memset(succ, 0, sizeof succ);
	int ok = 1;
	for (unsigned i = 0; i < n && ok; i++) {
		uint32_t o = calls[i].old;
		size_t slot = o == start ? 0 : (size_t)(o - lo) + 1;
		if (o != start && (o < lo || o - lo >= n))
			ok = 0; /* an old that no call of the round set */
		else if (succ[slot] != 0)
			ok = 0; /* two calls saw the same old */
		else
			succ[slot] = i + 1;
	}
	if (!ok)
		return 0;
	/* walk from start: every call once */
	uint32_t cur = start;
	for (unsigned k = 0; k < n; k++) {
		size_t slot = cur == start ? 0 : (size_t)(cur - lo) + 1;
		if (succ[slot] == 0)
			return 0;
		cur = calls[succ[slot] - 1].id;
	}
	*end = cur;
	return 1;
}

/* What the kernel does with SIGPIPE now, seen by a forked child's write to a broken pipe:
 * 0 handler, 1 ignored, 2 killed by it; -1 something else. */
static int kernel_does(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		int p[2];
		if (pipe(p) < 0)
			_exit(20);
		close(p[0]);
		pipe_handled = 0;
		ssize_t r = write(p[1], "x", 1);
		if (r < 0 && errno == EPIPE)
			_exit(pipe_handled == 1 ? 10 : pipe_handled == 0 ? 11 : 21);
		_exit(22);
	}
	int st;
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return -1;
	if (WIFSIGNALED(st) && WTERMSIG(st) == SIGPIPE)
		return 2;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 10)
		return 0;
	if (WIFEXITED(st) && WEXITSTATUS(st) == 11)
		return 1;
	return -1;
}

static void *idle(void *arg)
{
	pause();
	return arg;
}

int main(int argc, char **argv)
{
	int rounds = argc >= 3 ? atoi(argv[1]) : 0, per_round = argc >= 3 ? atoi(argv[2]) : 0;
	if (rounds < 1 || per_round < 1 || per_round > MAX_CALLS / 2) {
		fprintf(stderr, "usage: sigpipe_nested ROUNDS CALLS [threaded]\n");
		return 2;
	}
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 4 && strcmp(argv[3], "threaded") == 0) {
		pthread_t t;
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old); /* the timers' signals are the main flow's */
		pthread_create(&t, NULL, idle, NULL);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
	}
	struct sigaction t;
	memset(&t, 0, sizeof t);
	t.sa_handler = on_timer;
	t.sa_flags = SA_RESTART;
	sigemptyset(&t.sa_mask);
	sigaction(SIGALRM, &t, NULL);
	sigaction(SIGPROF, &t, NULL);
	sigset_t timer_sigs;
	sigemptyset(&timer_sigs);
	sigaddset(&timer_sigs, SIGALRM);
	sigaddset(&timer_sigs, SIGPROF);

	sigprocmask(SIG_BLOCK, &timer_sigs, NULL);
	uint32_t start = 0;
	int agree = 0, chain_ok = 0, kinds[3] = { 0, 0, 0 };
	for (int r = 0; r < rounds; r++) {
		atomic_store(&ncalls, 0);
		sigprocmask(SIG_UNBLOCK, &timer_sigs, NULL);
		timers(50);
		for (int i = 0; i < per_round; i++) {
			in_main_call = 1;
			one_call();
			in_main_call = 0;
		}
		timers(0);
		/* a timer's signal still pending runs here, before the round is read */
		sigprocmask(SIG_BLOCK, &timer_sigs, NULL);
		unsigned n = atomic_load(&ncalls);
		struct sigaction now;
		sigaction(SIGPIPE, NULL, &now);
		uint32_t end = 0;
		if (n <= MAX_CALLS && chained(start, n, &end) && end == id_of(&now))
			chain_ok++;
		int does = kernel_does(), want = now.sa_handler == on_pipe ? 0 : now.sa_handler == SIG_IGN ? 1 : 2;
		if (does == want && kind_of(id_of(&now)) == want)
			agree++;
		else
			printf("round %d: the program reads back %d (kind %d), the kernel does %d\n", r,
			       (int)id_of(&now), want, does);
		kinds[want]++;
		start = id_of(&now);
	}
	printf("rounds %d agree %d chained %d nested %u deep %u kinds dfl %d ign %d handler %d\n", rounds, agree,
	       chain_ok, atomic_load(&nested), atomic_load(&deep), kinds[2], kinds[1], kinds[0]);
	printf("done\n");
	return 0;
}
