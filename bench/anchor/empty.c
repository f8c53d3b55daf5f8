/* An object that does nothing, preloaded as the shim is: the anchor for what any preloaded object
 * costs a program before it does anything (its loading, and the mappings every fork copies and
 * every exit tears down). Shaped like the shim's: code, relocated data (relro), data and .bss,
 * bound at load. */
int cp_anchor_data = 1;
char cp_anchor_bss[65536]; /* past the data's page: a mapping of its own, as the shim's tables */
static int (*const relocated)(void) = 0;

int cp_anchor(void);
int cp_anchor(void)
{
	return cp_anchor_data + cp_anchor_bss[0] + (relocated != 0);
}
