/* YAML -> struct cp_policy. Every problem of a file is reported with its position;
 * a file with any problem yields no policy at all. */
#include "policy/loader.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>



static void load_log(struct loader *L, const yaml_node_t *root)
{
	static const char *const formats[] = {"text", "json"};
	static const char *const levels[] = {"warn", "info", "debug"};
	struct cp_policy *p = L->policy;
	yaml_node_t *log = ld_section(L, root, "log", &cp_keys_log), *n;
	if (!log)
		return;
	if ((n = ld_lookup(L, log, "target"))) {
		const char *v = ld_scalar(L, n, "target", "stderr, syslog or an absolute file path");
		if (v && strcmp(v, "stderr") == 0)
			p->log.target = CP_LOG_STDERR;
		else if (v && strcmp(v, "syslog") == 0)
			p->log.target = CP_LOG_SYSLOG;
		else if (v && v[0] == '/' && strlen(v) < 4096) {
			p->log.target = CP_LOG_FILE;
			p->log.path = ld_dup_string(L, v);
		} else if (v)
			ld_fail(L, n, "target: unknown log target \"%s\": expected stderr, syslog or an "
				   "absolute file path", v);
	}
	int i;
	if ((n = ld_lookup(L, log, "format")) && (i = ld_word(L, n, "format", formats, 2)) >= 0)
		p->log.format = (enum cp_log_format)i;
	if ((n = ld_lookup(L, log, "level")) && (i = ld_word(L, n, "level", levels, 3)) >= 0)
		p->log.level = (enum cp_log_level)i;
	if ((n = ld_lookup(L, log, "rate")))
		ld_number(L, n, "rate", 0, 1000000, &p->log.rate);
}

static void load_top(struct loader *L, const yaml_node_t *root)
{
	static const char *const sigpipes[] = {"log", "ignore"};
	struct cp_policy *p = L->policy;
	yaml_node_t *n;
	int i;

	ld_check_keys(L, root, "the policy", &cp_keys_top);
	if (!(n = ld_lookup(L, root, "version")))
		ld_fail(L, root, "missing required key version (add \"version: 1\")");
	else {
		const char *v = ld_scalar(L, n, "version", "1");
		if (v && strcmp(v, "1") != 0)
			ld_fail(L, n, "version: unsupported version \"%s\": this closepolicy reads version 1", v);
	}
	if ((n = ld_lookup(L, root, "dry_run")))
		ld_boolean(L, n, "dry_run", &p->dry_run);
	if ((n = ld_lookup(L, root, "sigpipe")) && (i = ld_word(L, n, "sigpipe", sigpipes, 2)) >= 0)
		p->sigpipe = (enum cp_sigpipe)i;
	if ((n = ld_lookup(L, root, "exit_wait")))
		ld_duration(L, n, "exit_wait", &p->exit_wait_ms);
	if ((n = ld_lookup(L, root, "max_draining")))
		ld_number(L, n, "max_draining", 0, 1000000, &p->max_draining);
	load_log(L, root);
	ld_rules(L, root);
}

static void report_syntax_error(struct loader *L, const yaml_parser_t *parser)
{
	const yaml_mark_t *m = &parser->problem_mark;
	const char *problem = parser->problem ? parser->problem : "malformed YAML";
	if (parser->context)
		cp_diag_add(L->diag, (int)m->line + 1, (int)m->column + 1, "YAML syntax error: %s %s",
			    problem, parser->context);
	else
		cp_diag_add(L->diag, (int)m->line + 1, (int)m->column + 1, "YAML syntax error: %s",
			    problem);
}

/* Checks run key by key, not line by line; a reader wants the file's order. */
static void sort_by_position(struct cp_diag *d)
{
	for (size_t i = 1; i < d->count; i++) {
		struct cp_diag_entry e = d->entries[i];
		size_t j = i;
		while (j > 0 && (d->entries[j - 1].line > e.line ||
				 (d->entries[j - 1].line == e.line && d->entries[j - 1].column > e.column))) {
			d->entries[j] = d->entries[j - 1];
			j--;
		}
		d->entries[j] = e;
	}
}

struct cp_policy *cp_policy_load_string(const char *text, size_t len, const char *name,
					struct cp_diag *diag)
{
	yaml_parser_t parser;
	yaml_document_t doc;
	struct loader L = {.doc = &doc, .diag = diag};

	cp_diag_reset(diag, name);
	if (!yaml_parser_initialize(&parser)) {
		cp_diag_add(diag, 0, 0, "out of memory");
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &doc)) {
		report_syntax_error(&L, &parser);
		yaml_parser_delete(&parser);
		return NULL;
	}
	yaml_node_t *root = yaml_document_get_root_node(&doc);
	if (!root) {
		cp_diag_add(diag, 1, 1, "empty policy: expected a map that starts with \"version: 1\"");
	} else if (root->type != YAML_MAPPING_NODE) {
		ld_fail(&L, root, "the policy must be a map of keys (version, rules, ...), got %s",
		     ld_kind_name(root));
	} else if ((L.policy = calloc(1, sizeof *L.policy))) {
		struct cp_policy *p = L.policy;
		*p = *cp_policy_default();
		p->source = ld_dup_string(&L, diag->file);
		load_top(&L, root);
	} else {
		cp_diag_add(diag, 0, 0, "out of memory");
	}
	yaml_document_delete(&doc);

	/* A second document would be silently ignored by a reader: refuse it. */
	if (diag->count == 0 && root) {
		yaml_document_t next;
		if (!yaml_parser_load(&parser, &next)) {
			report_syntax_error(&L, &parser);
		} else {
			yaml_node_t *extra = yaml_document_get_root_node(&next);
			if (extra)
				ld_fail(&L, extra, "a policy file holds one YAML document; remove this \"---\" and what follows");
			yaml_document_delete(&next);
		}
	}
	yaml_parser_delete(&parser);
	if (diag->count > 0 || diag->truncated) {
		sort_by_position(diag);
		cp_policy_free(L.policy);
		return NULL;
	}
	return L.policy;
}

/* The file from its start, up to one byte past the limit, into *buf (grown as needed from
 * *cap bytes): its length, or -1 (diag set). */
static ssize_t read_all(int fd, char **buf, size_t *cap, struct cp_diag *diag)
{
	size_t len = 0;
	for (;;) {
		if (len == *cap) {
			if (*cap > POLICY_FILE_MAX)
				break;
			size_t more = *cap * 2 > POLICY_FILE_MAX + 1 ? POLICY_FILE_MAX + 1 : *cap * 2;
			char *b = realloc(*buf, more);
			if (b == NULL) {
				cp_diag_add(diag, 0, 0, "out of memory");
				return -1;
			}
			*buf = b;
			*cap = more;
		}
		ssize_t got = pread(fd, *buf + len, *cap - len, (off_t)len);
		if (got == 0)
			break;
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			cp_diag_add(diag, 0, 0, "cannot read policy: read: %s", strerror(errno));
			return -1;
		}
		len += (size_t)got;
	}
	return (ssize_t)len;
}

/* Does the file still hold exactly buf[0..len)? Read again in small pieces: 1 when it does,
 * 0 when not, -1 on a read error (diag set). */
static int still_holds(int fd, const char *buf, size_t len, struct cp_diag *diag)
{
	char piece[4096];
	for (size_t at = 0;;) {
		ssize_t got = pread(fd, piece, sizeof piece, (off_t)at);
		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0) {
			cp_diag_add(diag, 0, 0, "cannot read policy: read: %s", strerror(errno));
			return -1;
		}
		if (got == 0)
			return at == len;
		if (at + (size_t)got > len || memcmp(piece, buf + at, (size_t)got) != 0)
			return 0;
		at += (size_t)got;
	}
}

static bool same_file_state(const struct stat *a, const struct stat *b)
{
	return a->st_size == b->st_size && a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	       a->st_mtim.tv_nsec == b->st_mtim.tv_nsec && a->st_ctim.tv_sec == b->st_ctim.tv_sec &&
	       a->st_ctim.tv_nsec == b->st_ctim.tv_nsec;
}

#define READ_ATTEMPTS 3

/* Read the whole file first, so the file and string loaders are one parser. Non-blocking open:
 * a FIFO must not hang the program that loads its policy. A file rewritten in place while it is
 * read could give the parser half of it, which may well parse (the first rules only): the
 * bytes count only when a second reading finds the same and fstat saw no change meanwhile. */
int cp_policy_read_file(const char *path, struct cp_diag *diag, char **text, size_t *text_len)
{
	struct stat before, after;
	cp_diag_reset(diag, path);
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		cp_diag_add(diag, 0, 0, "cannot open policy: %s", strerror(errno));
		return -1;
	}
	if (fstat(fd, &before) != 0) {
		cp_diag_add(diag, 0, 0, "cannot read policy: fstat: %s", strerror(errno));
		close(fd);
		return -1;
	}
	if (!S_ISREG(before.st_mode)) {
		cp_diag_add(diag, 0, 0, "cannot read policy: %s", S_ISDIR(before.st_mode) ? "it is a directory"
			    : "not a regular file (a FIFO, device or socket cannot hold a policy)");
		close(fd);
		return -1;
	}
	/* the size fstat gave, and a byte to see the end: not the limit's megabyte, which malloc
	 * maps and unmaps in every process that loads a policy */
	size_t cap = before.st_size < 64 ? 64
		     : before.st_size < POLICY_FILE_MAX ? (size_t)before.st_size + 1 : POLICY_FILE_MAX + 1;
	char *buf = malloc(cap);
	if (buf == NULL) {
		cp_diag_add(diag, 0, 0, "out of memory");
		close(fd);
		return -1;
	}
	ssize_t len = -1;
	int stable = 0;
	for (int attempt = 0; attempt < READ_ATTEMPTS && stable == 0; attempt++) {
		if (attempt > 0 && fstat(fd, &before) != 0)
			break;
		len = read_all(fd, &buf, &cap, diag);
		if (len < 0 || len > POLICY_FILE_MAX)
			break;
		stable = still_holds(fd, buf, (size_t)len, diag);
		if (stable == 1 && (fstat(fd, &after) != 0 || !same_file_state(&before, &after)))
			stable = 0;
	}
	close(fd);
	if (diag->count == 0 && len > POLICY_FILE_MAX)
		cp_diag_add(diag, 0, 0, "policy file too large: the limit is %d bytes", POLICY_FILE_MAX);
	else if (diag->count == 0 && stable != 1)
		cp_diag_add(diag, 0, 0, "cannot read policy: the file kept changing while it was read "
			    "(%d attempts); write the new policy to another file and rename() it over "
			    "this one", READ_ATTEMPTS);
	if (diag->count > 0) {
		free(buf);
		return -1;
	}
	*text = buf;
	*text_len = (size_t)len;
	return 0;
}

struct cp_policy *cp_policy_load_file(const char *path, struct cp_diag *diag)
{
	char *text;
	size_t len;
	if (cp_policy_read_file(path, diag, &text, &len) < 0)
		return NULL;
	struct cp_policy *p = cp_policy_load_string(text, len, path, diag);
	free(text);
	return p;
}

static void free_rule(struct cp_rule *r)
{
	free(r->name);
	free(r->match.local_ports);
	free(r->match.peer_ports);
	free(r->match.local);
	free(r->match.peer);
	free(r->match.program);
}

void cp_policy_free(struct cp_policy *p)
{
	if (!p || p == cp_policy_default())
		return;
	for (size_t i = 0; i < p->n_rules; i++)
		free_rule(&p->rules[i]);
	free(p->rules);
	free(p->log.path);
	free(p->source);
	free(p);
}
