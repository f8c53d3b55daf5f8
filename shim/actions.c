/* closepolicy — changing sockets (see actions.h). */
#include "shim/actions.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include "shim/real.h"

static int setopt(int fd, int level, int name, int value, int *first_err)
{
	if (cp_real_setsockopt(fd, level, name, &value, sizeof value) == 0)
		return 0;
	if (*first_err == 0)
		*first_err = errno;
	return -1;
}

int cp_act_apply_options(int fd, const struct cp_rule *rule)
{
	int err = 0;
	const struct cp_keepalive *ka = &rule->keepalive;
	if (ka->set) {
		setopt(fd, SOL_SOCKET, SO_KEEPALIVE, 1, &err);
		/* 0 = keep the kernel's default for that one */
		if (ka->idle_s)
			setopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, (int)ka->idle_s, &err);
		if (ka->interval_s)
			setopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, (int)ka->interval_s, &err);
		if (ka->count)
			setopt(fd, IPPROTO_TCP, TCP_KEEPCNT, (int)ka->count, &err);
	}
	if (rule->user_timeout_set)
		setopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, (int)rule->user_timeout_ms, &err);
	return err;
}

int cp_act_linger(int fd, int on, int secs)
{
	struct linger lg = { .l_onoff = on, .l_linger = secs };
	return cp_real_setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg) == 0 ? 0 : errno;
}

int cp_act_shutdown_wr(int fd)
{
	return cp_real_shutdown(fd, SHUT_WR) == 0 ? 0 : errno;
}
