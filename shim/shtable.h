/* closepolicy — the cross-process reference table: for each socket held by more than one process
 * of a process tree, how many of those processes hold it (at least one descriptor each).
 *
 * A fixed array of (SO_COOKIE, count) slots, taken lowest free first (sockets counted together
 * sit together), in a MAP_SHARED memfd mapping:
 * created by the first fork/spawn that has a connected socket to count (programs that never
 * fork pay nothing), inherited by fork, and found again after exec through /proc/PID/fd/N of a
 * process that still holds it (named in the exec'd image's environment; the inode is checked).
 * No shim descriptor crosses exec. Every operation is a few atomics on the mapping: lock-free,
 * no allocation, safe in atfork handlers, signal handlers and at exit.
 *
 * Why process counts and not descriptor counts: dup'd descriptors in one process already share
 * one struct cp_sock with its own count (sock.h); only the process's last close touches this
 * table, so dup/close of copies never write to shared memory. */
#ifndef CLOSEPOLICY_SHTABLE_H
#define CLOSEPOLICY_SHTABLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CP_SHT_SLOTS 65536 /* 1 MiB of slots; tmpfs pages are only allocated when touched */

/* The table exists in this process (created, inherited by fork, or attached after exec). */
bool cp_sht_present(void);
/* Create the table if absent. 0, or -1 (errno) when no memfd/mapping can be made. */
int cp_sht_ensure(void);
/* A slot for cookie with count, or -1 when the table is absent or full. The caller is the
 * socket's only counted holder, so the cookie is not in the table yet. Cookie 0: not asked yet
 * (a fork's child finds the slot by its number); cp_sht_name gives it before an exec'd image
 * must find it. */
int cp_sht_insert(uint64_t cookie, int count);
/* Name a slot taken without its cookie (a no-op when it has one already). */
void cp_sht_name(int slot, uint64_t cookie);
/* Add delta to a slot; returns the new count. A slot that reaches 0 is freed (its socket is
 * held by nobody: its cookie, unique per boot, never comes back). */
int cp_sht_add(int slot, int delta);
/* The program took the table's number with dup2: the table's descriptor is now `to`. False
 * when `from` is not the table's. */
bool cp_sht_fd_moved(int from, int to);
/* Take one from a slot only if another holder remains after (true); false leaves it as it was
 * (the caller may be its last holder, and releases it the ordinary way). */
bool cp_sht_release_if_held(int slot);
/* The slot holding cookie, or -1. */
int cp_sht_find(uint64_t cookie);

/* Where an exec'd image finds the table: "INO:DEV:PID/FD+PID/FD..." (candidate holders).
 * self_alive: this process stays alive across the hand-over (posix_spawn), so it is named
 * first. Returns the length written, 0 when there is no table. */
size_t cp_sht_describe(char *buf, size_t size, bool self_alive);
/* Attach to a table described that way. 0, or -1 when no candidate holds it any more. */
int cp_sht_attach(const char *desc);

#endif
