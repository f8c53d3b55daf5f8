/* closepolicy — draining in the calling thread, and what the drainer thread shares with it: the
 * read that throws data away, the FIN, the deadlines (see drainer.h). Used where no background
 * drain can be had (max_draining reached, no thread, no descriptor) and by the exit path. */
#include "shim/drainer.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdatomic.h>
#include <stdint.h>
#include <sys/socket.h>
#include <time.h>

#include "shim/actions.h"
#include "shim/events.h"
#include "shim/hot.h"

CP_CHILD uint64_t cp_now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

CP_CHILD int cp_drain_discard(int fd, uint64_t *bytes, int *err)
{
	for (;;) {
		/* MSG_TRUNC on TCP discards without copying: no buffer needed */
		ssize_t n = recv(fd, NULL, 1 << 30, MSG_DONTWAIT | MSG_TRUNC);
		if (n > 0) {
			*bytes += (uint64_t)n;
			continue;
		}
		if (n == 0)
			return 1;
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		*err = errno;
		return -1;
	}
}

CP_CHILD void cp_drain_prepare(int fd, struct cp_sock *s)
{
	if (atomic_load(&s->linger0)) /* the policy's graceful close wins over the program's RST */
		cp_act_linger(fd, 0, 0);
	if (!atomic_load(&s->shut_wr)) {
		int err = cp_act_shutdown_wr(fd);
		if (err != 0 && err != ENOTCONN)
			cp_event_error(fd, "shutdown(SHUT_WR) failed", err, "went on draining");
	}
}

int cp_drain_ms_left(const struct cp_drain *d, const struct cp_rule *r, uint64_t now, const char **outcome)
{
	uint64_t idle_end = d->last_ns + (uint64_t)r->drain_timeout_ms * 1000000u;
	uint64_t max_end = d->start_ns + (uint64_t)r->drain_max_ms * 1000000u;
	uint64_t end = idle_end < max_end ? idle_end : max_end;
	if (outcome != NULL)
		*outcome = max_end <= idle_end ? "max" : "idle";
	if (end <= now)
		return 0;
	uint64_t ms = (end - now + 999999u) / 1000000u;
	return ms > INT32_MAX ? INT32_MAX : (int)ms;
}

const char *cp_drain_sync(int fd, const struct cp_rule *rule, uint64_t *bytes, int *err)
{
	struct cp_drain d = { .start_ns = cp_now_ns() };
	d.last_ns = d.start_ns;
	for (;;) {
		uint64_t before = *bytes;
		int r = cp_drain_discard(fd, bytes, err);
		if (r > 0)
			return "eof";
		if (r < 0)
			return "reset";
		uint64_t now = cp_now_ns();
		if (*bytes != before)
			d.last_ns = now;
		const char *outcome;
		int left = cp_drain_ms_left(&d, rule, now, &outcome);
		if (left == 0)
			return outcome;
		struct pollfd p = { .fd = fd, .events = POLLIN | POLLRDHUP };
		if (poll(&p, 1, left) < 0 && errno != EINTR) {
			*err = errno;
			return "reset";
		}
	}
}
