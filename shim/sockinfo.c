/* closepolicy — read-only socket questions (see sockinfo.h).
 * <linux/tcp.h>, not <netinet/tcp.h>: glibc's struct tcp_info lacks tcpi_bytes_acked and
 * tcpi_bytes_received. The two headers conflict, so this file uses only the kernel's. */
#include "shim/sockinfo.h"
#include "shim/hot.h"

#include <errno.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/ioctl.h>

#ifndef SO_COOKIE
#define SO_COOKIE 57
#endif

bool cp_info_is_tcp(int fd)
{
	int v;
	socklen_t len = sizeof v;
	if (getsockopt(fd, SOL_SOCKET, SO_DOMAIN, &v, &len) < 0 || (v != AF_INET && v != AF_INET6))
		return false;
	len = sizeof v;
	return getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &v, &len) == 0 && v == IPPROTO_TCP;
}

uint64_t cp_info_cookie(int fd)
{
	uint64_t c = 0;
	socklen_t len = sizeof c;
	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, &c, &len) < 0)
		return 0;
	return c;
}

void cp_info_addr(const struct sockaddr *sa, socklen_t len, struct cp_addr *addr, uint16_t *port)
{
	memset(addr, 0, sizeof *addr);
	*port = 0;
	if (sa->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
		const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
		addr->family = 4;
		memcpy(addr->bytes, &in->sin_addr, 4);
		*port = ntohs(in->sin_port);
	} else if (sa->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
		const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
		addr->family = 6;
		memcpy(addr->bytes, &in6->sin6_addr, 16);
		*port = ntohs(in6->sin6_port);
		cp_addr_unmap(addr);
	}
}

void cp_info_facts(int fd, struct cp_socket_facts *f)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		cp_info_addr((struct sockaddr *)&ss, len, &f->local, &f->local_port);
	len = sizeof ss;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		cp_info_addr((struct sockaddr *)&ss, len, &f->peer, &f->peer_port);
}

void cp_info_facts_missing(int fd, struct cp_socket_facts *f)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (f->local.family == 0 && getsockname(fd, (struct sockaddr *)&ss, &len) == 0)
		cp_info_addr((struct sockaddr *)&ss, len, &f->local, &f->local_port);
	len = sizeof ss;
	if (f->peer.family == 0 && getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
		cp_info_addr((struct sockaddr *)&ss, len, &f->peer, &f->peer_port);
}

CP_CHILD bool cp_info_peer_is(int fd, const struct cp_addr *addr, uint16_t port)
{
	struct sockaddr_storage ss;
	socklen_t len = sizeof ss;
	if (getpeername(fd, (struct sockaddr *)&ss, &len) < 0)
		return errno == ENOTCONN;
	struct cp_addr now;
	uint16_t now_port;
	cp_info_addr((struct sockaddr *)&ss, len, &now, &now_port);
	return now_port == port && now.family == addr->family &&
	       memcmp(now.bytes, addr->bytes, sizeof now.bytes) == 0;
}

CP_CHILD int cp_info_unread(int fd)
{
	int n;
	return ioctl(fd, SIOCINQ, &n) == 0 ? n : -1;
}

int cp_info_unsent(int fd)
{
	int n;
	return ioctl(fd, SIOCOUTQ, &n) == 0 ? n : -1;
}

void cp_info_summary(int fd, struct cp_tcp_summary *sum)
{
	struct tcp_info ti;
	socklen_t len = sizeof ti;
	memset(sum, 0, sizeof *sum);
	sum->unsent = -1;
	memset(&ti, 0, sizeof ti);
	if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0)
		return;
	sum->valid = true;
	sum->state = ti.tcpi_state;
	sum->rtt_us = ti.tcpi_rtt;
	sum->total_retrans = ti.tcpi_total_retrans;
	/* fields past what an old kernel fills stay zero */
	if (len >= offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received) {
		sum->bytes_acked = ti.tcpi_bytes_acked;
		sum->bytes_received = ti.tcpi_bytes_received;
	}
	/* SIOCOUTQ is write_seq - snd_una: not sent yet, plus sent (retransmissions aside) and not
	 * acknowledged — one ioctl saved per close (Linux 4.19 and later fill these) */
	if (len >= offsetof(struct tcp_info, tcpi_bytes_retrans) + sizeof ti.tcpi_bytes_retrans) {
		uint64_t in_flight = ti.tcpi_bytes_sent - ti.tcpi_bytes_retrans - ti.tcpi_bytes_acked;
		uint64_t unsent = (uint64_t)ti.tcpi_notsent_bytes + (in_flight > INT32_MAX ? 0 : in_flight);
		sum->unsent = unsent > INT32_MAX ? INT32_MAX : (int)unsent;
	}
}

const char *cp_info_state_name(uint8_t state)
{
	/* the kernel's TCP states (include/net/tcp_states.h; not exported to user space) */
	static const char *const names[] = {
		"UNKNOWN",   "ESTABLISHED", "SYN_SENT", "SYN_RECV",   "FIN_WAIT1", "FIN_WAIT2",
		"TIME_WAIT", "CLOSE",       "CLOSE_WAIT", "LAST_ACK", "LISTEN",    "CLOSING",
	};
	return state < sizeof names / sizeof names[0] ? names[state] : "UNKNOWN";
}

void cp_info_options(int fd, struct cp_sockopts *o)
{
	socklen_t len = sizeof(int);
	memset(o, 0, sizeof *o);
	o->valid = getsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &o->keepalive, &len) == 0;
	len = sizeof(int);
	getsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &o->idle_s, &len);
	len = sizeof(int);
	getsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &o->interval_s, &len);
	len = sizeof(int);
	getsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &o->count, &len);
	len = sizeof o->user_timeout_ms;
	getsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &o->user_timeout_ms, &len);
}
