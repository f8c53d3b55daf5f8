/* closepolicy — the shim's own descriptors (log file, syslog socket, drainer epoll and eventfd,
 * drain copies). They live far above the program's numbers, so "lowest free number" habits
 * (daemons closing 0-2 and reopening /dev/null) still hold; they are close-on-exec; and they are
 * marked in the descriptor table, so the program's close() of one gets EBADF as without the shim
 * and close_range()/closefrom() step around them. */
#ifndef CLOSEPOLICY_OWNFD_H
#define CLOSEPOLICY_OWNFD_H

/* The lowest number the shim uses: min(4096, 3/4 of the soft RLIMIT_NOFILE). */
int cp_ownfd_base(void);
/* Move fd to a high close-on-exec number the shim owns (fd is closed). -1 and errno on failure
 * (fd is left open then). */
int cp_ownfd_move_high(int fd);
/* A high copy of fd (fd stays open), owned by the shim. */
int cp_ownfd_dup_high(int fd);
/* Mark/unmark an existing descriptor as the shim's. */
void cp_ownfd_mark(int fd);
/* Unmark and really close one of the shim's descriptors. */
void cp_ownfd_close(int fd);

#endif
