/* Stress: an epoll server (progs/stress_server) under a graceful policy, driven by thousands of
 * connections whose clients end in every way a client can:
 *   well-behaved  send the request, read the whole reply, EOF, close
 *   close early   send the request and close before reading anything
 *   reset         send the request, SO_LINGER {1, 0}, close: RST
 *   half-close    send the request, shutdown(SHUT_WR), read the whole reply, EOF, close
 *   never close   read the whole reply and EOF, then hold the socket until the run ends: the
 *                 server's drain is cut by drain_timeout
 *   vanish        read half the reply, then RST (SO_LINGER {1, 0}, close) mid-transfer
 * Many requests carry bytes the server never reads, so every one of its closes would be answered
 * with RST by a plain close: the reply's tail is only safe because of the graceful close.
 *
 * Asserted: every client that reads to the end (well-behaved, half-close, never close) gets every
 * byte of its reply, in order, then EOF; the server accepted and closed every connection; each
 * graceful close logged has its drain event (no drain left in progress); no `error` event; the
 * server's descriptor count (/proc/PID/fd) returns to its baseline; its peak RSS stays bounded.
 *
 * CP_STRESS_CONNS sets the number of connections (3000 in make check, 30000 in make stress). */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define HEADER 16
#define PERIOD 251
#define IN_FLIGHT 128          /* connections open at once, besides the held ones */
/* growth over the baseline, not the total: sanitizer builds start far higher (TSan's shadow) */
#define PEAK_RSS_GROWTH_LIMIT_KB (32 * 1024)

enum kind { WELL, EARLY, RESET, HALF, HOLD, VANISH, KINDS };
static const char *const kind_name[KINDS] = { "well-behaved", "close early", "reset", "half-close",
					      "never close", "vanish" };

enum step { CONNECTING, SENDING, READING };

struct client {
	int fd;
	enum kind kind;
	enum step step;
	uint64_t size, got;
	size_t req_len, req_sent;
	char req[HEADER + 4096];
};

struct figures {
	long conns, by_kind[KINDS];
	uint64_t expected, received, lost;
	long bad_bytes, early_end, connect_failed;
};

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A small deterministic generator: the same run every time. */
static uint32_t next_rand(uint32_t *s)
{
	*s = *s * 1103515245u + 12345u;
	return *s >> 8;
}

static bool reads_to_the_end(enum kind k)
{
	return k == WELL || k == HALF || k == HOLD;
}

static void reset_and_close(int fd)
{
	struct linger lg = { 1, 0 };
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	close(fd);
}

static void start_client(struct client *c, int ep, int port, long i, uint32_t *seed)
{
	memset(c, 0, offsetof(struct client, req));
	c->kind = (enum kind)(i % KINDS);
	/* vanish needs a reply long enough to be cut in the middle of the transfer */
	c->size = c->kind == VANISH ? 65536 + next_rand(seed) % 196608 : 1 + next_rand(seed) % 262144;
	size_t unread = next_rand(seed) % 3 == 0 ? 0 : 1 + next_rand(seed) % 4096;
	snprintf(c->req, HEADER + 1, "S%-14llu\n", (unsigned long long)c->size);
	memset(c->req + HEADER, 'u', unread);
	c->req_len = HEADER + unread;
	c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->fd < 0)
		fail_msg("socket: %s", strerror(errno));
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((unsigned short)port) };
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof sin) < 0 && errno != EINPROGRESS)
		fail_msg("connect: %s", strerror(errno));
	c->step = CONNECTING;
	struct epoll_event ev = { .events = EPOLLOUT, .data.ptr = c };
	if (epoll_ctl(ep, EPOLL_CTL_ADD, c->fd, &ev) < 0)
		fail_msg("epoll_ctl: %s", strerror(errno));
}

/* The client's part after its request went out. Returns true when it is finished. */
static bool after_request(struct client *c, int ep)
{
	switch (c->kind) {
	case EARLY:
		close(c->fd);
		return true;
	case RESET:
		reset_and_close(c->fd);
		return true;
	case HALF:
		if (shutdown(c->fd, SHUT_WR) < 0)
			fail_msg("shutdown: %s", strerror(errno));
		break;
	default:
		break;
	}
	c->step = READING;
	struct epoll_event ev = { .events = EPOLLIN, .data.ptr = c };
	if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0)
		fail_msg("epoll_ctl: %s", strerror(errno));
	return false;
}

/* Read what is there, checking the pattern. Returns true when the client is finished; a held
 * socket goes to *held. */
static bool on_readable(struct client *c, int ep, struct figures *f, int *held, long *n_held)
{
	static char buf[1 << 16];
	for (;;) {
		size_t want = sizeof buf;
		if (c->kind == VANISH && c->size / 2 - c->got < want)
			want = (size_t)(c->size / 2 - c->got);
		ssize_t n = read(c->fd, buf, want);
		if (n > 0) {
			for (ssize_t k = 0; k < n; k++)
				if ((unsigned char)buf[k] != (c->got + (uint64_t)k) % PERIOD)
					f->bad_bytes++;
			c->got += (uint64_t)n;
			if (c->kind == VANISH && c->got >= c->size / 2) {
				reset_and_close(c->fd);
				return true;
			}
			continue;
		}
		if (n < 0 && errno == EAGAIN)
			return false;
		if (n < 0 && errno == EINTR)
			continue;
		/* EOF or an error: the end of this reply */
		if (reads_to_the_end(c->kind)) {
			f->received += c->got;
			if (c->got < c->size)
				f->lost += c->size - c->got;
			if (n < 0 || c->got != c->size)
				f->early_end++;
		} else if (c->kind == VANISH) {
			f->early_end++; /* the server closed before half its reply: cannot be */
		}
		if (c->kind == HOLD) {
			epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
			held[(*n_held)++] = c->fd;
		} else {
			close(c->fd);
		}
		return true;
	}
}

static bool on_event(struct client *c, int ep, struct figures *f, int *held, long *n_held)
{
	if (c->step == CONNECTING) {
		int err = 0;
		socklen_t len = sizeof err;
		getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len);
		if (err != 0) {
			f->connect_failed++;
			close(c->fd);
			return true;
		}
		c->step = SENDING;
	}
	if (c->step == SENDING) {
		while (c->req_sent < c->req_len) {
			ssize_t n = send(c->fd, c->req + c->req_sent, c->req_len - c->req_sent, MSG_NOSIGNAL);
			if (n < 0 && errno == EAGAIN)
				return false;
			if (n < 0)
				fail_msg("send: %s", strerror(errno));
			c->req_sent += (size_t)n;
		}
		return after_request(c, ep);
	}
	return on_readable(c, ep, f, held, n_held);
}

/* Run `total` clients against port, IN_FLIGHT at a time; held sockets are returned in *held. */
static void run_clients(int port, long total, struct figures *f, int *held, long *n_held, int timeout_ms)
{
	static struct client slots[IN_FLIGHT];
	struct client *free_slots[IN_FLIGHT];
	int n_free = IN_FLIGHT;
	for (int i = 0; i < IN_FLIGHT; i++)
		free_slots[i] = &slots[i];
	int ep = epoll_create1(EPOLL_CLOEXEC);
	uint32_t seed = 7;
	long started = 0, done = 0;
	int64_t deadline = now_ms() + timeout_ms;
	while (done < total) {
		while (n_free > 0 && started < total) {
			struct client *c = free_slots[--n_free];
			start_client(c, ep, port, started, &seed);
			f->by_kind[c->kind]++;
			if (reads_to_the_end(c->kind))
				f->expected += c->size;
			started++;
		}
		if (now_ms() > deadline)
			fail_msg("clients not done within %d ms: %ld of %ld", timeout_ms, done, total);
		struct epoll_event evs[IN_FLIGHT];
		int n = epoll_wait(ep, evs, IN_FLIGHT, 1000);
		for (int i = 0; i < n; i++) {
			struct client *c = evs[i].data.ptr;
			if (on_event(c, ep, f, held, n_held)) {
				free_slots[n_free++] = c;
				done++;
			}
		}
	}
	f->conns = total;
	close(ep);
}

/* ---- what the server's side looks like ---- */

static int count_fds(pid_t pid)
{
	char path[64];
	snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
	DIR *d = opendir(path);
	if (d == NULL)
		return -1;
	int n = 0;
	for (struct dirent *e; (e = readdir(d)) != NULL;)
		if (e->d_name[0] != '.')
			n++;
	closedir(d);
	return n;
}

static long status_kb(pid_t pid, const char *field)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kb = -1;
	size_t n = strlen(field);
	while (f != NULL && fgets(line, sizeof line, f) != NULL)
		if (strncmp(line, field, n) == 0 && line[n] == ':')
			kb = atol(line + n + 1);
	if (f != NULL)
		fclose(f);
	return kb;
}

struct log_tally {
	long graceful_closes, drains, errors, outcome_eof, outcome_idle, outcome_reset, outcome_other;
};

/* One pass over the log (tens of megabytes in make stress). */
static struct log_tally tally_log(const struct h_proc *p)
{
	struct log_tally t = { 0 };
	char *log = h_log(p);
	for (char *line = log, *end; *line; line = end ? end + 1 : line + strlen(line)) {
		end = strchr(line, '\n');
		if (end)
			*end = '\0';
		if (strstr(line, " event=close ") && strstr(line, " action=graceful"))
			t.graceful_closes++;
		else if (strstr(line, " event=error "))
			t.errors++;
		else if (strstr(line, " event=drain ")) {
			t.drains++;
			if (strstr(line, " outcome=eof"))
				t.outcome_eof++;
			else if (strstr(line, " outcome=idle"))
				t.outcome_idle++;
			else if (strstr(line, " outcome=reset"))
				t.outcome_reset++;
			else
				t.outcome_other++;
		}
		if (end == NULL)
			break;
	}
	free(log);
	return t;
}

static void server_stats(struct h_proc *p, long *accepted, long *open)
{
	char line[128];
	h_say(p, "stats");
	do
		h_line(p, line, sizeof line, 10000);
	while (strncmp(line, "stats ", 6) != 0);
	*accepted = h_field(line, "accepted");
	*open = h_field(line, "open");
}

static void pause_ms(int ms)
{
	struct timespec ts = { 0, ms * 1000000L };
	nanosleep(&ts, NULL);
}

static void test_misbehaving_clients(void **state)
{
	(void)state;
	const char *env_total = getenv("CP_STRESS_CONNS");
	long total = env_total ? atol(env_total) : 3000;
	int timeout_ms = (int)(20000 + total * 5); /* generous: the machine is shared */

	/* held sockets and the server's drain copies both need descriptors */
	struct rlimit rl;
	getrlimit(RLIMIT_NOFILE, &rl);
	if (rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	if ((long)rl.rlim_cur < total / KINDS + IN_FLIGHT + 64)
		fail_msg("RLIMIT_NOFILE %ld is too low for %ld connections", (long)rl.rlim_cur, total);

	struct h_proc p;
	h_spawn(&p,
		"version: 1\nmax_draining: 8192\nrules:\n  - name: stress\n    match: {role: server}\n"
		"    action: graceful\n    drain_timeout: 1s\n    drain_max: 10s\n",
		NULL, "stress_server", NULL);
	int port = (int)h_expect(&p, "port ", 5000);

	/* Warm-up: one connection whose close hands a socket to the drainer, so the drainer's own
	 * descriptors (epoll set, eventfd) exist before the baseline is taken. */
	int w = h_connect(port, 0);
	char req[HEADER + 100];
	snprintf(req, HEADER + 1, "S%-14d\n", 1000);
	memset(req + HEADER, 'u', 100);
	h_send_all(w, req, sizeof req);
	struct h_read r = h_read_to_end(w, 5000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, 1000);
	close(w);
	char *line = h_log_wait(&p, 5000, "event=drain", NULL);
	assert_non_null(line);
	free(line);
	int base_fds = count_fds(p.pid);
	long base_rss = status_kb(p.pid, "VmRSS");

	struct figures f = { 0 };
	int *held = calloc((size_t)total, sizeof *held);
	long n_held = 0;
	int64_t t0 = now_ms();
	run_clients(port, total, &f, held, &n_held, timeout_ms);
	int64_t t_clients = now_ms() - t0;

	/* The server has accepted and closed everything ... */
	long accepted = 0, open = -1;
	int64_t deadline = now_ms() + 15000;
	for (;;) {
		server_stats(&p, &accepted, &open);
		if ((accepted == total + 1 && open == 0) || now_ms() > deadline)
			break;
		pause_ms(20);
	}
	/* ... and every drain has ended (never-close peers are cut by drain_timeout), giving back
	 * its descriptor. */
	struct log_tally t;
	int fds;
	for (;;) {
		t = tally_log(&p);
		fds = count_fds(p.pid);
		if ((t.drains == t.graceful_closes && fds == base_fds) || now_ms() > deadline)
			break;
		pause_ms(50);
	}
	int64_t t_settled = now_ms() - t0;
	long peak_kb = status_kb(p.pid, "VmHWM");

	for (long i = 0; i < n_held; i++)
		close(held[i]);
	free(held);
	h_say(&p, "exit");
	int st = h_wait(&p, 10000);

	print_message("stress: %ld connections (", f.conns);
	for (int k = 0; k < KINDS; k++)
		print_message("%s%s %ld", k ? ", " : "", kind_name[k], f.by_kind[k]);
	print_message(")\n");
	print_message("stress: clients done in %lld ms, server settled in %lld ms\n", (long long)t_clients,
		      (long long)t_settled);
	print_message("stress: bytes expected %llu, received %llu, lost %llu, corrupt %ld, replies cut short %ld\n",
		      (unsigned long long)f.expected, (unsigned long long)f.received,
		      (unsigned long long)f.lost, f.bad_bytes, f.early_end);
	print_message("stress: server accepted %ld, still open %ld; graceful closes %ld, drains %ld "
		      "(eof %ld, idle %ld, reset %ld, other %ld), errors %ld\n",
		      accepted, open, t.graceful_closes, t.drains, t.outcome_eof, t.outcome_idle,
		      t.outcome_reset, t.outcome_other, t.errors);
	print_message("stress: server descriptors %d, baseline %d (leaked %d); RSS %ld KiB at baseline, "
		      "peak %ld KiB\n",
		      fds, base_fds, fds - base_fds, base_rss, peak_kb);

	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(f.connect_failed, 0);
	assert_int_equal(f.received, f.expected);
	assert_int_equal(f.lost, 0);
	assert_int_equal(f.bad_bytes, 0);
	assert_int_equal(f.early_end, 0);
	assert_int_equal(accepted, total + 1);
	assert_int_equal(open, 0);
	assert_int_equal(t.graceful_closes, total + 1);
	assert_int_equal(t.drains, t.graceful_closes);
	assert_true(t.outcome_idle >= f.by_kind[HOLD]); /* each never-close peer was cut by time */
	assert_int_equal(t.errors, 0);
	assert_int_equal(fds, base_fds);
	assert_true(peak_kb > 0 && base_rss > 0 && peak_kb - base_rss < PEAK_RSS_GROWTH_LIMIT_KB);
	h_finish(&p);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_misbehaving_clients),
	};
	return cmocka_run_group_tests_name("stress", tests, NULL, NULL);
}
