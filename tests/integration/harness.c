/* closepolicy integration tests — shared helpers (see harness.h). */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/socket.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int left_ms(int64_t deadline)
{
	int64_t l = deadline - now_ms();
	return l < 0 ? 0 : (int)l;
}

static const char *build_dir(void)
{
	static char abs[PATH_MAX];
	if (abs[0] == '\0') {
		const char *b = getenv("BUILD");
		if (b == NULL || *b == '\0')
			b = "build";
		if (realpath(b, abs) == NULL)
			fail_msg("BUILD directory %s: %s", b, strerror(errno));
	}
	return abs;
}

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	if (f == NULL || fputs(text, f) < 0 || fclose(f) != 0)
		fail_msg("cannot write %s", path);
}

void h_spawn(struct h_proc *p, const char *policy_yaml, const char *const *env, const char *prog, ...)
{
	memset(p, 0, sizeof *p);
	strcpy(p->dir, "/tmp/cp-itest-XXXXXX");
	if (mkdtemp(p->dir) == NULL)
		fail_msg("mkdtemp: %s", strerror(errno));
	snprintf(p->log, sizeof p->log, "%s/log", p->dir);
	if (policy_yaml != NULL) {
		snprintf(p->policy, sizeof p->policy, "%s/policy.yaml", p->dir);
		write_file(p->policy, policy_yaml);
	}

	char path[PATH_MAX], preload[2 * PATH_MAX + 2], logenv[160], polenv[160];
	if (snprintf(path, sizeof path, "%s/progs/%s", build_dir(), prog) >= (int)sizeof path)
		fail_msg("path too long");
	const char *prefix = getenv("CP_ITEST_PRELOAD_PREFIX"); /* the sanitizer runtime, SAN=1 */
	if (snprintf(preload, sizeof preload, "LD_PRELOAD=%s%s%s/libclosepolicy.so", prefix ? prefix : "",
		     prefix ? " " : "", build_dir()) >= (int)sizeof preload)
		fail_msg("LD_PRELOAD too long");
	snprintf(logenv, sizeof logenv, "CLOSEPOLICY_LOG=%s", p->log);
	snprintf(polenv, sizeof polenv, "CLOSEPOLICY_FILE=%s", p->policy);

	const char *argv[32] = { path };
	int argc = 1;
	va_list ap;
	va_start(ap, prog);
	for (const char *a; argc < 31 && (a = va_arg(ap, const char *)) != NULL;)
		argv[argc++] = a;
	va_end(ap);

	/* the extra variables first: they win over what follows */
	size_t n = 0;
	while (environ[n])
		n++;
	const char **envp = calloc(n + 40, sizeof *envp);
	size_t k = 0;
	for (size_t i = 0; env != NULL && env[i] != NULL && k < 32; i++)
		envp[k++] = env[i];
	envp[k++] = preload;
	envp[k++] = logenv;
	if (policy_yaml != NULL)
		envp[k++] = polenv;
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 && strncmp(environ[i], "CLOSEPOLICY_", 12) != 0)
			envp[k++] = environ[i];
	envp[k] = NULL;

	int out[2], in[2];
	if (pipe2(out, O_CLOEXEC) < 0 || pipe2(in, O_CLOEXEC) < 0)
		fail_msg("pipe: %s", strerror(errno));
	p->pid = fork();
	if (p->pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (p->pid == 0) {
		/* a failed assertion leaves the test without h_finish: the program must not outlive
		 * it, holding the pipes of whoever runs the suite */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(out[1], 1);
		dup2(in[0], 0);
		closefrom(3); /* the program starts with 0, 1, 2 only, as from a shell */
		execve(path, (char *const *)argv, (char *const *)envp);
		_exit(127);
	}
	free(envp);
	close(out[1]);
	close(in[0]);
	p->out = out[0];
	p->in = in[1];
}

const char *h_build_path(const char *name)
{
	static char path[PATH_MAX];
	if (snprintf(path, sizeof path, "%s/%s", build_dir(), name) >= (int)sizeof path)
		fail_msg("path too long");
	return path;
}

int h_run(const char *const argv[], const char *const *env, char *out, size_t size, int timeout_ms)
{
	size_t n = 0;
	while (environ[n])
		n++;
	const char **envp = calloc(n + 33, sizeof *envp);
	size_t k = 0;
	for (size_t i = 0; env != NULL && env[i] != NULL && k < 32; i++)
		envp[k++] = env[i];
	for (size_t i = 0; i < n; i++)
		if (strncmp(environ[i], "LD_PRELOAD=", 11) != 0 && strncmp(environ[i], "CLOSEPOLICY_", 12) != 0)
			envp[k++] = environ[i];
	envp[k] = NULL;
	int o[2];
	if (pipe2(o, O_CLOEXEC) < 0)
		fail_msg("pipe: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0)
		fail_msg("fork: %s", strerror(errno));
	if (pid == 0) {
		dup2(o[1], 1);
		execve(argv[0], (char *const *)argv, (char *const *)envp);
		_exit(127);
	}
	free(envp);
	close(o[1]);
	int64_t deadline = now_ms() + timeout_ms;
	size_t len = 0;
	for (;;) {
		struct pollfd pf = { .fd = o[0], .events = POLLIN };
		int pr = poll(&pf, 1, left_ms(deadline));
		if (pr == 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			fail_msg("%s did not finish within %d ms", argv[0], timeout_ms);
		}
		if (pr < 0 && errno == EINTR)
			continue;
		char sink[4096];
		bool room = len + 1 < size;
		ssize_t got = room ? read(o[0], out + len, size - 1 - len) : read(o[0], sink, sizeof sink);
		if (got <= 0)
			break;
		if (room)
			len += (size_t)got;
	}
	out[len] = '\0';
	close(o[0]);
	int st;
	waitpid(pid, &st, 0);
	return st;
}

void h_line(struct h_proc *p, char *line, size_t size, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	for (;;) {
		char *nl = memchr(p->buf, '\n', p->len);
		if (nl != NULL) {
			size_t n = (size_t)(nl - p->buf);
			if (n >= size)
				n = size - 1;
			memcpy(line, p->buf, n);
			line[n] = '\0';
			p->len -= (size_t)(nl - p->buf) + 1;
			memmove(p->buf, nl + 1, p->len);
			return;
		}
		struct pollfd pf = { .fd = p->out, .events = POLLIN };
		int r = poll(&pf, 1, left_ms(deadline));
		if (r == 0)
			fail_msg("no line from the program within %d ms (have \"%.*s\")", timeout_ms,
				 (int)p->len, p->buf);
		if (r < 0 && errno == EINTR)
			continue;
		ssize_t got = read(p->out, p->buf + p->len, sizeof p->buf - p->len - 1);
		if (got <= 0)
			fail_msg("the program's stdout ended (have \"%.*s\"); log:\n%s", (int)p->len,
				 p->buf, h_log(p));
		p->len += (size_t)got;
	}
}

long h_expect(struct h_proc *p, const char *prefix, int timeout_ms)
{
	char line[512];
	size_t n = strlen(prefix);
	for (;;) {
		h_line(p, line, sizeof line, timeout_ms);
		if (strncmp(line, prefix, n) == 0)
			return atol(line + n);
		if (strncmp(line, "FAIL", 4) == 0)
			print_message("program: %s\n", line);
	}
}

void h_say(struct h_proc *p, const char *line)
{
	size_t n = strlen(line);
	if (write(p->in, line, n) != (ssize_t)n || write(p->in, "\n", 1) != 1)
		fail_msg("cannot write to the program: %s", strerror(errno));
}

int h_wait(struct h_proc *p, int timeout_ms)
{
	if (p->exited)
		return p->status;
	int64_t deadline = now_ms() + timeout_ms;
	/* The program's exit closes the write end of its stdout: wait for that EOF, keeping the
	 * output for h_line, then reap. */
	for (;;) {
		struct pollfd pf = { .fd = p->out, .events = POLLIN };
		int pr = poll(&pf, 1, left_ms(deadline));
		if (pr == 0) {
			kill(p->pid, SIGKILL);
			waitpid(p->pid, &p->status, 0);
			p->exited = true;
			fail_msg("the program did not exit within %d ms; log:\n%s", timeout_ms, h_log(p));
		}
		if (pr < 0 && errno == EINTR)
			continue;
		if (p->len >= sizeof p->buf - 1) /* nobody reads it: keep the newest */
			p->len = 0;
		ssize_t got = read(p->out, p->buf + p->len, sizeof p->buf - p->len - 1);
		if (got > 0) {
			p->len += (size_t)got;
			continue;
		}
		waitpid(p->pid, &p->status, 0);
		p->exited = true;
		return p->status;
	}
}

void h_finish(struct h_proc *p)
{
	if (p->pid > 0 && !p->exited) {
		kill(p->pid, SIGKILL);
		waitpid(p->pid, &p->status, 0);
		p->exited = true;
	}
	if (p->out > 0)
		close(p->out);
	if (p->in > 0)
		close(p->in);
	p->out = p->in = -1;
	if (getenv("CP_ITEST_KEEP") == NULL && p->dir[0] != '\0') {
		unlink(p->log);
		if (p->policy[0])
			unlink(p->policy);
		rmdir(p->dir);
	}
}

char *h_log(const struct h_proc *p)
{
	FILE *f = fopen(p->log, "r");
	if (f == NULL)
		return strdup("");
	size_t cap = 1 << 16, len = 0;
	char *buf = malloc(cap);
	size_t got;
	while ((got = fread(buf + len, 1, cap - len - 1, f)) > 0) {
		len += got;
		if (cap - len < 4096)
			buf = realloc(buf, cap *= 2);
	}
	fclose(f);
	buf[len] = '\0';
	return buf;
}

/* The first line at or after *pos holding every needle; NULL when none. */
static char *find_line(char *log, char **pos, const char *const *needles, size_t nn)
{
	for (char *line = *pos; line && *line;) {
		char *end = strchr(line, '\n');
		if (end)
			*end = '\0';
		bool all = true;
		for (size_t i = 0; i < nn && all; i++)
			all = strstr(line, needles[i]) != NULL;
		if (end)
			*end = '\n';
		char *next = end ? end + 1 : NULL;
		if (all) {
			*pos = next;
			return line;
		}
		line = next;
	}
	(void)log;
	return NULL;
}

static size_t collect(va_list ap, const char **needles, size_t max)
{
	size_t n = 0;
	for (const char *s; n < max && (s = va_arg(ap, const char *)) != NULL;)
		needles[n++] = s;
	return n;
}

int h_log_count(const struct h_proc *p, ...)
{
	const char *needles[16];
	va_list ap;
	va_start(ap, p);
	size_t nn = collect(ap, needles, 16);
	va_end(ap);
	char *log = h_log(p), *pos = log;
	int count = 0;
	while (find_line(log, &pos, needles, nn) != NULL)
		count++;
	free(log);
	return count;
}

/* Waiting for a file to change: an inotify descriptor watching path for mask... */
static int watch(const char *path, uint32_t mask)
{
	int in = inotify_init1(IN_CLOEXEC | IN_NONBLOCK);
	if (in < 0 || inotify_add_watch(in, path, mask) < 0)
		fail_msg("inotify %s: %s", path, strerror(errno));
	return in;
}

/* ...and the wait for its next event (or the deadline), the events read and dropped. */
static void await_change(int in, int64_t deadline)
{
	struct pollfd pf = { .fd = in, .events = POLLIN };
	if (poll(&pf, 1, left_ms(deadline)) > 0) {
		char evbuf[4096];
		while (read(in, evbuf, sizeof evbuf) > 0)
			;
	}
}

char *h_log_wait(const struct h_proc *p, int timeout_ms, ...)
{
	const char *needles[16];
	va_list ap;
	va_start(ap, timeout_ms);
	size_t nn = collect(ap, needles, 16);
	va_end(ap);
	int64_t deadline = now_ms() + timeout_ms;
	int in = watch(p->dir, IN_MODIFY | IN_CREATE);
	char *found = NULL;
	for (;;) {
		char *log = h_log(p), *pos = log;
		char *line = find_line(log, &pos, needles, nn);
		if (line != NULL) {
			size_t n = strcspn(line, "\n");
			found = strndup(line, n);
		}
		free(log);
		if (found != NULL || left_ms(deadline) == 0)
			break;
		await_change(in, deadline);
	}
	close(in);
	return found;
}

int h_log_wait_lines(const struct h_proc *p, int n, int timeout_ms, ...)
{
	const char *needles[16];
	va_list ap;
	va_start(ap, timeout_ms);
	size_t nn = collect(ap, needles, 16);
	va_end(ap);
	int64_t deadline = now_ms() + timeout_ms;
	int in = watch(p->dir, IN_MODIFY | IN_CREATE);
	int count;
	for (;;) {
		char *log = h_log(p), *pos = log;
		count = 0;
		while (find_line(log, &pos, needles, nn) != NULL)
			count++;
		free(log);
		if (count >= n || left_ms(deadline) == 0)
			break;
		await_change(in, deadline);
	}
	close(in);
	return count;
}

long h_field(const char *line, const char *key)
{
	char pat[64];
	snprintf(pat, sizeof pat, " %s=", key);
	const char *at = strstr(line, pat);
	return at ? atol(at + strlen(pat)) : -1;
}

int h_listen(int *port)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof sin;
	if (fd < 0 || bind(fd, (struct sockaddr *)&sin, sizeof sin) < 0 || listen(fd, 1024) < 0 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) < 0)
		fail_msg("listen: %s", strerror(errno));
	*port = ntohs(sin.sin_port);
	return fd;
}

int h_connect(int port, int rcvbuf)
{
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		fail_msg("socket: %s", strerror(errno));
	if (rcvbuf > 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK),
				   .sin_port = htons((unsigned short)port) };
	if (connect(fd, (struct sockaddr *)&sin, sizeof sin) < 0)
		fail_msg("connect to %d: %s", port, strerror(errno));
	return fd;
}

void h_send_all(int fd, const void *buf, size_t n)
{
	const char *p = buf;
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			fail_msg("send: %s", strerror(errno));
		p += w;
		n -= (size_t)w;
	}
}

int h_step_server(struct h_proc *p, const char *policy_yaml)
{
	h_spawn(p, policy_yaml, NULL, "step_server", NULL);
	char first[64];
	int port = 0, lfd = -1;
	h_line(p, first, sizeof first, 5000);
	assert_int_equal(sscanf(first, "port %d lfd %d", &port, &lfd), 2);
	return port;
}

void h_expect_all_then_eof(int peer, uint64_t bytes)
{
	struct h_read r = h_read_to_end(peer, 10000);
	assert_int_equal(r.err, 0);
	assert_int_equal(r.bytes, bytes);
	close(peer);
}

struct h_read h_read_to_end(int fd, int timeout_ms)
{
	return h_read_upto(fd, UINT64_MAX, timeout_ms);
}

struct h_read h_read_upto(int fd, uint64_t limit, int timeout_ms)
{
	static char buf[1 << 16];
	struct h_read r = { 0, 0 };
	int64_t deadline = now_ms() + timeout_ms;
	while (r.bytes < limit) {
		struct pollfd pf = { .fd = fd, .events = POLLIN };
		int pr = poll(&pf, 1, left_ms(deadline));
		if (pr == 0)
			fail_msg("no EOF or error within %d ms (%llu bytes read)", timeout_ms,
				 (unsigned long long)r.bytes);
		if (pr < 0 && errno == EINTR)
			continue;
		size_t want = limit - r.bytes < sizeof buf ? (size_t)(limit - r.bytes) : sizeof buf;
		ssize_t n = read(fd, buf, want);
		if (n > 0) {
			r.bytes += (uint64_t)n;
		} else if (n == 0) {
			return r;
		} else if (errno != EINTR) {
			r.err = errno;
			return r;
		}
	}
	return r;
}

void h_expect_line(struct h_proc *p, const char *prefix, char *line, size_t size)
{
	for (;;) {
		h_line(p, line, size, 10000);
		if (strncmp(line, "FAIL", 4) == 0)
			fail_msg("the program says: %s", line);
		if (strncmp(line, prefix, strlen(prefix)) == 0)
			return;
	}
}

void h_expect_exact(struct h_proc *p, const char *want)
{
	char line[256];
	h_expect_line(p, want, line, sizeof line);
	assert_string_equal(line, want);
}

void h_expect_done_exit_0(struct h_proc *p)
{
	h_expect_exact(p, "done");
	int st = h_wait(p, 10000);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("wanted exit 0, got wait status %#x; log:\n%s", st, h_log(p));
}

void h_shell(struct h_proc *p, const char *script, char *out, size_t size)
{
	memset(p, 0, sizeof *p);
	strcpy(p->dir, "/tmp/cp-itest-XXXXXX");
	assert_non_null(mkdtemp(p->dir));
	snprintf(p->log, sizeof p->log, "%s/log", p->dir);
	char cp[300], log[160], prog[300];
	snprintf(cp, sizeof cp, "CP=%s", h_build_path("closepolicy"));
	snprintf(prog, sizeof prog, "PROG=%s", h_build_path("progs/sigpipe_prog"));
	snprintf(log, sizeof log, "LOG=%s", p->log);
	const char *const env[] = { cp, prog, log, NULL };
	int st = h_run((const char *[]){ "/bin/bash", "-c", script, NULL }, env, out, size, 30000);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
}

void h_exit_ok(struct h_proc *p)
{
	h_say(p, "exit");
	int st = h_wait(p, 10000);
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("wanted exit 0, got wait status %#x; log:\n%s", st, h_log(p));
	h_finish(p);
}

void h_sayf(struct h_proc *p, const char *fmt, ...)
{
	char line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	h_say(p, line);
}

void h_answer(struct h_proc *p, const char *fmt, ...)
{
	char want[256], line[256];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(want, sizeof want, fmt, ap);
	va_end(ap);
	h_line(p, line, sizeof line, 10000);
	assert_string_equal(line, want);
}

char *h_file_wait(const char *path, const char *needle, int timeout_ms)
{
	int64_t deadline = now_ms() + timeout_ms;
	int in = watch(path, IN_MODIFY);
	for (;;) {
		char text[65536];
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(text, 1, sizeof text - 1, f) : 0;
		if (f)
			fclose(f);
		text[n] = '\0';
		if (strstr(text, needle)) {
			close(in);
			return strdup(text);
		}
		if (left_ms(deadline) == 0)
			break;
		await_change(in, deadline);
	}
	close(in);
	return NULL;
}
