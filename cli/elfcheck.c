/* Why a preload would silently not happen: static or set-user-ID executables, 32-bit ones,
 * musl's loader, Go programs, file capabilities, and #! scripts whose interpreter is one of
 * those. */
#include "cli/cli.h"

#include <elf.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

/* execvp's search, so the warning is about the file that will run. */
static int resolve(const char *command, char *out, size_t size)
{
	if (strchr(command, '/'))
		return snprintf(out, size, "%s", command) < (int)size ? 0 : -1;
	const char *path = getenv("PATH");
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	while (*path) {
		size_t len = strcspn(path, ":");
		if ((size_t)snprintf(out, size, "%.*s/%s", (int)len, len ? path : ".", command) < size &&
		    access(out, X_OK) == 0)
			return 0;
		path += len + (path[len] == ':');
	}
	return -1;
}

static void warn(const char *file, const char *why)
{
	fprintf(stderr, "closepolicy run: warning: %s %s: closepolicy will not be loaded into it\n",
		file, why);
}

/* Go programs make their own system calls (net, os): a preloaded C library wrapper never sees
 * them, even when the binary is dynamically linked (cgo). Found by the section Go writes. */
static bool is_go(int fd, const Elf64_Ehdr *eh)
{
	Elf64_Shdr sh[64], strtab;
	if (eh->e_shnum == 0 || eh->e_shnum > 64 || eh->e_shstrndx >= eh->e_shnum ||
	    pread(fd, sh, eh->e_shnum * sizeof *sh, (off_t)eh->e_shoff) != (ssize_t)(eh->e_shnum * sizeof *sh))
		return false;
	strtab = sh[eh->e_shstrndx];
	char names[4096];
	size_t n = strtab.sh_size < sizeof names - 1 ? strtab.sh_size : sizeof names - 1;
	if (pread(fd, names, n, (off_t)strtab.sh_offset) != (ssize_t)n)
		return false;
	names[n] = '\0';
	for (int i = 0; i < eh->e_shnum; i++)
		if (sh[i].sh_name < n && (strcmp(names + sh[i].sh_name, ".note.go.buildid") == 0 ||
					  strcmp(names + sh[i].sh_name, ".go.buildinfo") == 0))
			return true;
	return false;
}

/* File capabilities put the loader in secure mode, like set-user-ID. */
static bool has_capabilities(const char *file)
{
	return getxattr(file, "security.capability", NULL, 0) > 0;
}

static void check_elf(const char *file, int depth)
{
	_Alignas(Elf64_Ehdr) unsigned char buf[4096];
	struct stat st;
	int fd = open(file, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	ssize_t n = fstat(fd, &st) == 0 ? read(fd, buf, sizeof buf) : -1;
	bool go = n >= (ssize_t)sizeof(Elf64_Ehdr) && memcmp(buf, ELFMAG, SELFMAG) == 0 &&
		  buf[EI_CLASS] == ELFCLASS64 && is_go(fd, (const Elf64_Ehdr *)buf);
	close(fd);
	if (n <= 0)
		return;
	if (go)
		warn(file, "is a Go program (it makes its own system calls, which no preloaded object sees)");
	if (has_capabilities(file))
		warn(file, "has file capabilities (the dynamic loader ignores LD_PRELOAD for it)");
	if (st.st_mode & S_ISUID)
		warn(file, "is set-user-ID (the dynamic loader ignores LD_PRELOAD for it)");
	else if (st.st_mode & S_ISGID)
		warn(file, "is set-group-ID (the dynamic loader ignores LD_PRELOAD for it)");
	if (n > 2 && buf[0] == '#' && buf[1] == '!' && depth == 0) {
		char interp[PATH_MAX];
		buf[n - 1] = '\0';
		const char *start = (char *)buf + 2 + strspn((char *)buf + 2, " \t");
		size_t len = strcspn(start, " \t\n");
		if (len < sizeof interp && start + len < (char *)buf + n) {
			memcpy(interp, start, len);
			interp[len] = '\0';
			check_elf(interp, 1);
		}
		return;
	}
	if ((size_t)n < sizeof(Elf64_Ehdr) || memcmp(buf, ELFMAG, SELFMAG) != 0)
		return;
	if (buf[EI_CLASS] != ELFCLASS64) {
		warn(file, "is a 32-bit program (the object is 64-bit)");
		return;
	}
	const Elf64_Ehdr *eh = (const Elf64_Ehdr *)buf;
	if (eh->e_phoff + (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr) > (uint64_t)n)
		return;
	for (int i = 0; i < eh->e_phnum; i++) {
		Elf64_Phdr ph; /* copied: e_phoff need not be aligned */
		memcpy(&ph, buf + eh->e_phoff + (size_t)i * sizeof ph, sizeof ph);
		if (ph.p_type != PT_INTERP)
			continue;
		if (ph.p_offset + ph.p_filesz <= (uint64_t)n &&
		    memmem(buf + ph.p_offset, ph.p_filesz, "musl", 4))
			warn(file, "uses musl's loader (the object is built for glibc)");
		return;
	}
	warn(file, "is statically linked (no dynamic loader)");
}

void cp_cli_warn_unpreloadable(const char *command)
{
	char path[PATH_MAX];
	if (resolve(command, path, sizeof path) == 0)
		check_elf(path, 0);
}
