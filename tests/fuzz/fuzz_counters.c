/* libFuzzer harness for the counters-file reader of stat and top: whatever bytes a counters file
 * holds (a hostile process of the same user, a file half-written, another version), the reader
 * refuses it or everything built from it (text, JSON, Prometheus, sums, percentiles) is printed
 * without a crash, a hang or a leak. The first byte picks the shape: odd, the bytes are the whole
 * file; even, they overwrite a valid file from its counters on, so the fuzzer spends its time on
 * hostile counters, names and sizes rather than on finding the magic. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/ctrfile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct cp_ctr_file valid, file;
	static struct cp_stat_entry es[2];
	static char bytes[sizeof(struct cp_ctr_file) + 64];
	if (size == 0)
		return 0;
	size_t len;
	if (data[0] & 1) {
		len = size - 1 < sizeof bytes ? size - 1 : sizeof bytes;
		memcpy(bytes, data + 1, len);
	} else {
		memset(&valid, 0, sizeof valid);
		valid.magic = CP_CTR_MAGIC;
		valid.version = CP_CTR_VERSION;
		valid.header_size = (uint32_t)offsetof(struct cp_ctr_file, closes);
		valid.file_size = sizeof valid;
		valid.n_rules = CP_CTR_RULES;
		valid.n_hist = CP_CTR_HIST;
		valid.accessible = 1;
		memcpy(bytes, &valid, sizeof valid);
		size_t from = offsetof(struct cp_ctr_file, policy_seq);
		size_t n = size - 1 < sizeof valid - from ? size - 1 : sizeof valid - from;
		memcpy(bytes + from, data + 1, n);
		len = sizeof valid;
	}
	char why[256];
	if (cp_ctrfile_parse(bytes, len, &file, why, sizeof why) < 0)
		return 0;
	memset(es, 0, sizeof es);
	es[0].f = file;
	es[0].n_pids = 1;
	es[1].f = file;
	es[1].n_pids = 1;
	cp_ctrfile_add(&es[1].f, &file); /* a --sum of two */
	(void)cp_ctrfile_drain_pct(&file, 0.5);
	(void)cp_ctrfile_drain_pct(&es[1].f, 0.99);
	char *out = NULL;
	size_t outlen = 0;
	FILE *f = open_memstream(&out, &outlen);
	cp_stat_print(f, CP_STAT_TEXT, es, 2, false);
	cp_stat_print(f, CP_STAT_JSON, es, 2, true);
	cp_stat_print(f, CP_STAT_PROMETHEUS, es, 2, false);
	fclose(f);
	free(out);
	return 0;
}
