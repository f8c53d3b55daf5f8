/* closepolicy — the directory of the counters files, shared by the shim and the command:
 * $CLOSEPOLICY_RUNDIR, else $XDG_RUNTIME_DIR/closepolicy, else /dev/shm/closepolicy-UID.
 * Memory-backed by design (a counters file on a disk-backed /tmp makes page write-back stall the
 * process). The directory must be a real directory (no symlink), owned by the caller's user (or
 * root's, for root) and writable by nobody else; anything else is refused, never "fixed".
 * Async-signal-safe: no malloc, no stdio (the shim may make its file inside a SIGPIPE handler). */
#ifndef CLOSEPOLICY_RUNDIR_H
#define CLOSEPOLICY_RUNDIR_H

#include <stdbool.h>
#include <stddef.h>

/* The directory into buf; create: make it (0700) when missing. "The caller's user" is the
 * effective user now when creating, the one the process was started as when only reading (the
 * aux vector's: no system call for a process that reads the policy cache). 0, or -1 with errno
 * (ENAMETOOLONG, EPERM: owned by someone else or writable by others, ENOTDIR, ...). */
int cp_rundir(char *buf, size_t size, bool create);
/* dir + "/" + decimal n + suffix into buf; false when it does not fit. */
bool cp_rundir_file(char *buf, size_t size, const char *dir, long n, const char *suffix);

#endif
