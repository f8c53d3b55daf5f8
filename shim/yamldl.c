/* closepolicy — libyaml, loaded when a policy is read, not with the object.
 *
 * As a dependency of the object, libyaml was mapped and relocated in every process started
 * under the shim, about 40 microseconds each here, whether or not it read a policy: a shell
 * script's every command paid it. The policy loader (policy/) calls the seven functions below
 * as it would call libyaml's; in the object they are these (hidden, so the program's own use of
 * libyaml is untouched), which open the library on the first parse; it is closed again once the
 * policy is loaded (its mappings would be copied by every fork and counted in every process's
 * memory). */
#include <dlfcn.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <string.h>
#include <yaml.h>

#include "shim/events.h"
#include "shim/yamldl.h"

#define SONAME "libyaml-0.so.2" /* the library's ABI since 0.2 (2018), the same since 0.1 */

static struct {
	int (*parser_initialize)(yaml_parser_t *);
	void (*parser_set_input_string)(yaml_parser_t *, const unsigned char *, size_t);
	int (*parser_load)(yaml_parser_t *, yaml_document_t *);
	void (*parser_delete)(yaml_parser_t *);
	yaml_node_t *(*document_get_node)(yaml_document_t *, int);
	yaml_node_t *(*document_get_root_node)(yaml_document_t *);
	void (*document_delete)(yaml_document_t *);
} y;
static atomic_int state; /* 0 not tried, 1 loaded, -1 not available */
static void *handle;

/* The policy is read by one thread at a time (start-up); the state is atomic all the same. */
static bool load(void)
{
	int st = atomic_load(&state);
	if (st != 0)
		return st > 0;
	void *h = NULL;
#ifdef CP_YAML_LIBDIR
	h = dlopen(CP_YAML_LIBDIR "/" SONAME, RTLD_NOW | RTLD_LOCAL);
#endif
	if (h == NULL)
		h = dlopen(SONAME, RTLD_NOW | RTLD_LOCAL);
	handle = h;
	if (h != NULL) {
		*(void **)&y.parser_initialize = dlsym(h, "yaml_parser_initialize");
		*(void **)&y.parser_set_input_string = dlsym(h, "yaml_parser_set_input_string");
		*(void **)&y.parser_load = dlsym(h, "yaml_parser_load");
		*(void **)&y.parser_delete = dlsym(h, "yaml_parser_delete");
		*(void **)&y.document_get_node = dlsym(h, "yaml_document_get_node");
		*(void **)&y.document_get_root_node = dlsym(h, "yaml_document_get_root_node");
		*(void **)&y.document_delete = dlsym(h, "yaml_document_delete");
	}
	bool ok = h != NULL && y.parser_initialize && y.parser_set_input_string && y.parser_load &&
		  y.parser_delete && y.document_get_node && y.document_get_root_node && y.document_delete;
	if (!ok)
		cp_event_error(-1, "cannot load " SONAME " (dlopen) to read the policy", 0,
			       "the policy is rejected");
	atomic_store(&state, ok ? 1 : -1);
	return ok;
}

void cp_yaml_unload(void)
{
	if (atomic_load(&state) <= 0)
		return;
	memset(&y, 0, sizeof y);
	atomic_store(&state, 0); /* a later parse opens it again */
	dlclose(handle);
	handle = NULL;
}

int yaml_parser_initialize(yaml_parser_t *parser)
{
	if (!load()) {
		memset(parser, 0, sizeof *parser);
		return 0;
	}
	return y.parser_initialize(parser);
}

/* The others are only reached after yaml_parser_initialize succeeded. */
void yaml_parser_set_input_string(yaml_parser_t *parser, const unsigned char *input, size_t size)
{
	y.parser_set_input_string(parser, input, size);
}

int yaml_parser_load(yaml_parser_t *parser, yaml_document_t *document)
{
	return y.parser_load(parser, document);
}

void yaml_parser_delete(yaml_parser_t *parser)
{
	y.parser_delete(parser);
}

yaml_node_t *yaml_document_get_node(yaml_document_t *document, int index)
{
	return y.document_get_node(document, index);
}

yaml_node_t *yaml_document_get_root_node(yaml_document_t *document)
{
	return y.document_get_root_node(document);
}

void yaml_document_delete(yaml_document_t *document)
{
	y.document_delete(document);
}
