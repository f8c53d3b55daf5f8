/* closepolicy — read-only questions to a socket: is it TCP, who is it, how is it doing.
 * Nothing here changes a socket (that is actions.c). */
#ifndef CLOSEPOLICY_SOCKINFO_H
#define CLOSEPOLICY_SOCKINFO_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "policy/policy.h"

/* AF_INET/AF_INET6 + SOCK_STREAM + IPPROTO_TCP (asked of the kernel: 2 getsockopt calls). */
bool cp_info_is_tcp(int fd);
/* SO_COOKIE: the socket's identity, stable for its life; 0 when it cannot be read. */
uint64_t cp_info_cookie(int fd);
/* Is fd connected to addr:port? True as well when it has no peer to ask (ENOTCONN: reset or
 * never connected). */
bool cp_info_peer_is(int fd, const struct cp_addr *addr, uint16_t port);
/* Fill local and peer of f (role untouched); unknown parts stay family 0. */
void cp_info_facts(int fd, struct cp_socket_facts *f);
/* Only the parts of f still unknown (accept and connect give the peer, a listener its address). */
void cp_info_facts_missing(int fd, struct cp_socket_facts *f);
void cp_info_addr(const struct sockaddr *sa, socklen_t len, struct cp_addr *addr, uint16_t *port);
/* Bytes received and not read (FIONREAD), bytes not yet acknowledged (SIOCOUTQ); -1 = unknown. */
int cp_info_unread(int fd);
int cp_info_unsent(int fd);

/* The TCP_INFO summary logged with every close. */
struct cp_tcp_summary {
	bool valid;
	uint8_t state;
	uint64_t bytes_acked, bytes_received;
	uint32_t rtt_us, total_retrans;
	int unsent; /* what SIOCOUTQ says (queued, not acknowledged), from the same call; -1 unknown */
};
#define CP_TCP_CLOSE 7      /* the kernel's TCP_CLOSE: reset, or never connected */
#define CP_TCP_CLOSE_WAIT 8 /* the peer sent its FIN */
void cp_info_summary(int fd, struct cp_tcp_summary *sum);
const char *cp_info_state_name(uint8_t state);

/* keepalive / user timeout as the kernel has them now. */
struct cp_sockopts {
	int keepalive, idle_s, interval_s, count;
	unsigned user_timeout_ms;
	bool valid;
};
void cp_info_options(int fd, struct cp_sockopts *o);

#endif
