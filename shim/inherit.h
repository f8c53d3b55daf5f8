/* closepolicy — sockets across exec and posix_spawn.
 *
 * Before an exec (or a posix_spawn, which runs no atfork handler), with forks and closes held
 * off (refs.h), the shim announces to the new image, in its environment, every connected socket
 * it will inherit (no FD_CLOEXEC):
 *
 *   CLOSEPOLICY_INHERITED=<e|s><PID>;<table>;<COOKIE>.<ROLE><KIND>,...
 *
 * e: exec, the new image has pid PID; s: spawn, its parent has pid PID (a stale variable passed
 * on by a program without the shim is ignored). <table> names the shared table (shtable.h).
 * ROLE is s (server) or c (client); KIND is S (counted in the table: the new image takes over
 * this process's reference, or for a spawn the one added for it), U (held by this process
 * alone: the new image will be its only holder). A close-on-exec socket is not announced: the
 * exec wrapper drops its reference before the exec (and takes it back if the exec fails), so the
 * other holders know at once that this process no longer holds it. (An `x` item, from an older
 * shim, still tells the new image to drop the reference for it.)
 *
 * The new image's shim adopts them at start: it finds each by SO_COOKIE among its descriptors
 * (whatever numbers a spawn's file actions gave them), matches them against its own policy and
 * program name, and drops the references of those it does not hold. No descriptor of the shim
 * crosses the exec. A new image without the shim never drops its references, so the other
 * holders never act on those sockets: the safe side. */
#ifndef CLOSEPOLICY_INHERIT_H
#define CLOSEPOLICY_INHERIT_H

#include <stdbool.h>
#include <stddef.h>

struct cp_handover {
	bool active; /* the gate is held off until cp_handover_end */
	bool spawn;
	unsigned epoch;
	void *map; /* the rewritten environment */
	size_t map_size;
};

/* Before execve/execvpe/fexecve/execveat (spawn false) or posix_spawn[p] (spawn true): returns
 * the environment to pass (envp itself, or a rewritten copy with the announcement). */
char *const *cp_handover_begin(struct cp_handover *h, char *const envp[], bool spawn);
/* The call returned: an exec that failed, or a spawn (ok: the child exists). */
void cp_handover_end(struct cp_handover *h, bool ok);

/* At start-up, after the policy is loaded: adopt what the previous image announced. */
void cp_inherit_adopt(void);

#endif
