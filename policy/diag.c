/* Diagnostics of a policy file: collected, capped, printed as FILE:LINE:COLUMN: message. */
#include "policy/diag_internal.h"

#include <stdarg.h>
#include <string.h>

void cp_diag_reset(struct cp_diag *d, const char *file)
{
	memset(d, 0, sizeof *d);
	snprintf(d->file, sizeof d->file, "%s", file ? file : "<string>");
}

void cp_diag_add(struct cp_diag *d, int line, int column, const char *fmt, ...)
{
	if (d->count >= CP_DIAG_MAX) {
		d->truncated = true;
		return;
	}
	struct cp_diag_entry *e = &d->entries[d->count++];
	va_list ap;
	e->line = line;
	e->column = column;
	va_start(ap, fmt);
	vsnprintf(e->message, sizeof e->message, fmt, ap);
	va_end(ap);
}

void cp_diag_format(const struct cp_diag *d, size_t i, char *buf, size_t size)
{
	const struct cp_diag_entry *e = &d->entries[i];
	if (e->line > 0)
		snprintf(buf, size, "%s:%d:%d: %s", d->file, e->line, e->column, e->message);
	else
		snprintf(buf, size, "%s: %s", d->file, e->message);
}

void cp_diag_print(const struct cp_diag *d, FILE *out)
{
	char line[sizeof d->file + CP_DIAG_MSG + 32];
	for (size_t i = 0; i < d->count; i++) {
		cp_diag_format(d, i, line, sizeof line);
		fprintf(out, "%s\n", line);
	}
	if (d->truncated)
		fprintf(out, "%s: too many errors; only the first %d are shown\n", d->file, CP_DIAG_MAX);
}
