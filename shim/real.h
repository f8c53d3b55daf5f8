/* closepolicy — the real libc functions behind the wrappers.
 * Resolved with dlsym(RTLD_NEXT) on first use (lock-free, idempotent), so they work before the
 * constructor runs and from any thread; a raw syscall stands in where the symbol is missing. */
#ifndef CLOSEPOLICY_REAL_H
#define CLOSEPOLICY_REAL_H

#include <sys/epoll.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/types.h>

int cp_real_close(int fd);
int cp_real_shutdown(int fd, int how);
int cp_real_socket(int domain, int type, int protocol);
int cp_real_accept(int fd, struct sockaddr *addr, socklen_t *len);
int cp_real_accept4(int fd, struct sockaddr *addr, socklen_t *len, int flags);
int cp_real_connect(int fd, const struct sockaddr *addr, socklen_t len);
int cp_real_dup(int fd);
int cp_real_dup2(int oldfd, int newfd);
int cp_real_dup3(int oldfd, int newfd, int flags);
int cp_real_fcntl(int fd, int cmd, void *arg);
int cp_real_fcntl64(int fd, int cmd, void *arg);
int cp_real_close_range(unsigned int first, unsigned int last, int flags);
void cp_real_closefrom(int lowfd);
int cp_real_epoll_ctl(int epfd, int op, int fd, struct epoll_event *ev);
int cp_real_setsockopt(int fd, int level, int name, const void *val, socklen_t len);
pid_t cp_real_fork(void);
int cp_real_execve(const char *path, char *const argv[], char *const envp[]);
int cp_real_execvpe(const char *file, char *const argv[], char *const envp[]);
int cp_real_fexecve(int fd, char *const argv[], char *const envp[]);
int cp_real_execveat(int dirfd, const char *path, char *const argv[], char *const envp[], int flags);
int cp_real_posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
			const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
int cp_real_posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
			 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);

__attribute__((noreturn)) void cp_real__exit(int status);

#endif
