# closepolicy — make | make check | make stress | make demo | make bench | make install PREFIX=/usr/local DESTDIR= | make deb
# Variants: make check SAN=1 (AddressSanitizer + UndefinedBehaviorSanitizer, into build-san/)

VERSION   := 0.1.0
PREFIX    ?= /usr/local
DESTDIR   ?=
CC        ?= gcc
PKG_CONFIG ?= pkg-config

ifeq ($(SAN),1)
BUILD     ?= build-san
SANFLAGS  := -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
OPT       ?= -O1
else ifeq ($(SAN),thread)
# ThreadSanitizer: clang; the runtime lives in each instrumented program, and the preloaded
# object uses that program's (so the object is linked without -z defs).
BUILD     ?= build-tsan
CC        := clang
SANFLAGS  := -fsanitize=thread -fno-omit-frame-pointer
OPT       ?= -O1
LIB_DEFS  :=
else
BUILD     ?= build
SANFLAGS  :=
OPT       ?= -O2
endif

LIB_DEFS  ?= -Wl,-z,defs
WARN      := -Wall -Wextra -Wshadow -Wpointer-arith -Wstrict-prototypes -Wmissing-prototypes \
             -Wformat=2 -Wundef -Wvla -Wcast-align -Wwrite-strings
CFLAGS    ?= $(OPT) -g
ALL_CFLAGS := -std=gnu11 $(WARN) $(CFLAGS) $(SANFLAGS) -D_GNU_SOURCE -DCP_VERSION='"$(VERSION)"' -I.

# pkg-config first, plain names as the fallback (libcyaml does the same).
YAML_CFLAGS   := $(shell $(PKG_CONFIG) --cflags yaml-0.1 2>/dev/null)
YAML_LIBS     := $(or $(shell $(PKG_CONFIG) --libs yaml-0.1 2>/dev/null),-lyaml)
CMOCKA_CFLAGS := $(shell $(PKG_CONFIG) --cflags cmocka 2>/dev/null)
CMOCKA_LIBS   := $(or $(shell $(PKG_CONFIG) --libs cmocka 2>/dev/null),-lcmocka)

POLICY_SRC := $(wildcard policy/*.c)
SHIM_SRC   := $(wildcard shim/*.c)
CLI_SRC    := $(wildcard cli/*.c)
UNIT_SRC   := $(wildcard tests/unit/test_*.c)
ITEST_SRC  := $(wildcard tests/integration/itest_*.c)
PROG_SRC   := $(wildcard tests/progs/*.c demo/*.c)
BENCH_SRC  := $(filter-out bench/common.c,$(wildcard bench/*.c))

POLICY_OBJ     := $(POLICY_SRC:%.c=$(BUILD)/obj/%.o)
POLICY_PIC_OBJ := $(POLICY_SRC:%.c=$(BUILD)/pic/%.o)
SHIM_OBJ       := $(SHIM_SRC:%.c=$(BUILD)/pic/%.o)
CLI_OBJ        := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_BIN   := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
ITEST_BIN  := $(ITEST_SRC:tests/integration/%.c=$(BUILD)/tests/%)
PROG_BIN   := $(foreach p,$(PROG_SRC),$(BUILD)/progs/$(basename $(notdir $(p))))
BENCH_BIN  := $(BENCH_SRC:bench/%.c=$(BUILD)/bench/%)

LIB := $(BUILD)/libclosepolicy.so
CMD := $(BUILD)/closepolicy
DEPS_OK := $(BUILD)/.deps-ok

.PHONY: all check unit integration real stress demo bench install uninstall clean deps deb check-docs \
	check-install check-deb
all: $(LIB) $(CMD)

# Missing libraries are named with their Debian package (and installed when we can).
$(DEPS_OK): mk/deps.sh
	@CC="$(CC)" sh mk/deps.sh
	@mkdir -p $(@D) && touch $@
deps: $(DEPS_OK)

$(BUILD)/obj/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(YAML_CFLAGS) -MMD -MP -c $< -o $@
$(BUILD)/pic/%.o: %.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(YAML_CFLAGS) -fPIC -fvisibility=hidden -MMD -MP -c $< -o $@

# libyaml is not linked to the object: shim/yamldl.c opens it when a policy is read, from the
# directory pkg-config names first (no search of the loader's cache), then by its name.
YAML_LIBDIR := $(shell $(PKG_CONFIG) --variable=libdir yaml-0.1 2>/dev/null)
$(BUILD)/pic/shim/yamldl.o: ALL_CFLAGS += $(if $(YAML_LIBDIR),-DCP_YAML_LIBDIR='"$(YAML_LIBDIR)"')
# init.o first: its .bss (the configuration start-up writes) opens the object's .bss, on the page
# whose first byte the C runtime's exit writes in every process anyway (one page, not two).
START_OBJ := $(BUILD)/pic/shim/init.o
# The code a forked child runs (its atfork handler, close, dup2, write and sendfile, signal(),
# _exit, the exit path, the reference table, the counters) is marked CP_CHILD (hot.h) and
# gathered with the hot path, first: the kernel maps a file's pages into a process in 64 KiB
# blocks of addresses at a fault (fault-around), and a fork copies none of them, so every block
# a child touches is a page fault in every child. The object's base is only page-aligned (where
# address space randomisation puts it), so that stretch (about 18 KiB) meets one block in most
# children, two in a quarter; aligning the object to 64 KiB would cost every process three
# system calls at load. What a child does not run (logging, the policy and its cache, exec
# hand-over, accept/connect tracking, the reload thread) is linked last.
COLD_OBJ := $(addprefix $(BUILD)/pic/shim/,log.o events.o quiet.o sigpipe.o track.o \
	inherit.o reload.o polcache.o rundir.o yamldl.o)
$(LIB): $(SHIM_OBJ) $(POLICY_PIC_OBJ)
	$(CC) $(ALL_CFLAGS) -shared -Wl,--sort-section=name -Wl,-z,noseparate-code -Wl,-z,now $(LIB_DEFS) -o $@ \
		$(START_OBJ) $(filter-out $(START_OBJ) $(COLD_OBJ) $(POLICY_PIC_OBJ),$^) $(COLD_OBJ) $(POLICY_PIC_OBJ) -ldl -lpthread
# the command finds the counters files where the shim makes them (shim/rundir.c)
$(CMD): $(CLI_OBJ) $(POLICY_OBJ) $(BUILD)/obj/shim/rundir.o
	$(CC) $(ALL_CFLAGS) -o $@ $^ $(YAML_LIBS)

$(BUILD)/tests/test_%: tests/unit/test_%.c $(POLICY_OBJ) | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -MMD -MP -o $@ $< $(POLICY_OBJ) $(CMOCKA_LIBS) $(YAML_LIBS)
# the loader's reads are wrapped: the test changes the file between them
$(BUILD)/tests/test_load_changing: tests/unit/test_load_changing.c $(POLICY_OBJ) | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -Wl,--wrap=pread -MMD -MP -o $@ $< $(POLICY_OBJ) $(CMOCKA_LIBS) $(YAML_LIBS)
# the reference table on its own (the shim's descriptor bookkeeping stubbed in the test)
$(BUILD)/tests/test_shtable: tests/unit/test_shtable.c shim/shtable.c shim/shtable.h | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -o $@ tests/unit/test_shtable.c shim/shtable.c $(CMOCKA_LIBS)
# the descriptor table on its own
$(BUILD)/tests/test_fdtable: tests/unit/test_fdtable.c shim/fdtable.c shim/fdtable.h | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -o $@ tests/unit/test_fdtable.c shim/fdtable.c $(CMOCKA_LIBS)
$(BUILD)/tests/itest_%: tests/integration/itest_%.c tests/integration/harness.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -MMD -MP -o $@ $(filter %.c,$^) $(CMOCKA_LIBS)
# the live-view tests share their JSON and Prometheus readers
$(BUILD)/tests/itest_stat $(BUILD)/tests/itest_reload $(BUILD)/tests/itest_quiet: $(BUILD)/tests/itest_%: tests/integration/itest_%.c tests/integration/harness.c tests/integration/stat_helpers.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) $(CMOCKA_CFLAGS) -MMD -MP -o $@ $(filter %.c,$^) $(CMOCKA_LIBS)
$(BUILD)/progs/%: tests/progs/%.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -o $@ $< -lpthread
$(BUILD)/progs/static_hello: tests/progs/static_hello.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -static -o $@ $<
# step_server exports its pthread_create, which stands in for the C library's (itest_nothread).
$(BUILD)/progs/step_server: tests/progs/step_server.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -rdynamic -MMD -MP -o $@ $< -lpthread
# a real libuv program: libuv closes through syscall(SYS_close)
UV_CFLAGS := $(shell $(PKG_CONFIG) --cflags libuv 2>/dev/null)
UV_LIBS   := $(or $(shell $(PKG_CONFIG) --libs libuv 2>/dev/null),-luv)
$(BUILD)/progs/uv_server: tests/progs/uv_server.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $(UV_CFLAGS) -MMD -MP -o $@ $< $(UV_LIBS)
$(BUILD)/progs/%: demo/%.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -MMD -MP -o $@ $< -lpthread
$(BUILD)/bench/%: bench/%.c bench/common.c $(POLICY_OBJ) | $(DEPS_OK)
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -O2 -MMD -MP -o $@ $< bench/common.c $(POLICY_OBJ) $(YAML_LIBS) -lpthread

unit: $(UNIT_BIN) $(CMD)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; BUILD=$(BUILD) $$t; done

# Under ThreadSanitizer only programs built with it can load the instrumented object, so the
# threaded tests run (drainer, concurrent close/accept, epoll, exit, fork under load, stress,
# SIGPIPE handlers chained in threads). Left out, each for a reason: tests that run system
# programs under the shim (run, exec_fds, run_warnings, sigpipe_system), and tests whose
# step_server stands in for pthread_create, which the TSan runtime must see for every thread
# (ownfd, nothread). itest_quiet runs /bin/sh under the shim (the relative log path test, which
# does too, lives in itest_run for that reason). itest_signested: the runtime stands between the
# program and sigaction() (it installs its own handler, with its own mask, and runs the program's
# later, outside system calls), so even the bare program's changes do not read back as it made them.
TSAN_SKIP := itest_run itest_exec_fds itest_run_warnings itest_sigpipe_system itest_ownfd \
	     itest_nothread itest_quiet itest_signested
# Page faults and system calls counted against the bare program (itest_forkcost, itest_syscalls,
# itest_startcalls, itest_sigcalls)
# are the plain build's: a sanitizer's runtime adds its own (shadow memory, interceptors, its
# threads' calls).
PLAIN_ONLY := itest_forkcost itest_syscalls itest_startcalls itest_sigcalls
ifeq ($(SAN),thread)
ITEST_RUN := $(filter-out $(addprefix $(BUILD)/tests/,$(TSAN_SKIP) $(PLAIN_ONLY)),$(ITEST_BIN))
else ifeq ($(SAN),1)
ITEST_RUN := $(filter-out $(addprefix $(BUILD)/tests/,$(PLAIN_ONLY)),$(ITEST_BIN))
else
ITEST_RUN := $(ITEST_BIN)
endif

integration: $(LIB) $(CMD) $(ITEST_BIN) $(PROG_BIN)
	@BUILD=$(BUILD) SAN=$(SAN) sh tests/integration/run.sh $(ITEST_RUN)

# make check: the plain build's unit and integration tests, the manual pages, the installed
# layout and the Debian package, and the demo (which fails when an outcome under a policy is
# wrong), then the same suites under AddressSanitizer + UBSan, then
# the threaded integration tests under ThreadSanitizer, then a short fuzzing run.
check: all unit integration $(PROG_BIN)
ifeq ($(SAN),)
	@$(MAKE) --no-print-directory check-docs check-install check-deb
	@BUILD=$(BUILD) bash demo/demo.sh > $(BUILD)/demo.out 2>&1 || { cat $(BUILD)/demo.out; echo "make check: the demo's outcomes are wrong"; exit 1; }
	@sed -n '/^Summary/,$$p' $(BUILD)/demo.out
	@BUILD=$(BUILD) bash tests/real/run.sh
	@$(MAKE) --no-print-directory SAN=1 unit integration
	@$(MAKE) --no-print-directory SAN=thread integration
	@$(MAKE) --no-print-directory fuzz FUZZ_SECONDS=$(CHECK_FUZZ_SECONDS) > $(BUILD)/fuzz.out 2>&1 || { tail -n 40 $(BUILD)/fuzz.out; echo "make check: the fuzzer found a problem"; exit 1; }
	@grep -E "^Done|stat::number_of_executed_units" $(BUILD)/fuzz.out
endif
	@echo "make check: all tests passed ($(BUILD)$(if $(SAN),,, build-san, build-tsan))"

# Real programs (nginx, busybox httpd, socat, python3 http.server, curl) under a graceful policy.
real: $(LIB)
	@BUILD=$(BUILD) bash tests/real/run.sh

# The stress test at full size (make check runs it with 3000 connections).
STRESS_CONNS ?= 30000
stress: $(LIB) $(BUILD)/tests/itest_stress $(BUILD)/progs/stress_server
	@BUILD=$(BUILD) CP_STRESS_CONNS=$(STRESS_CONNS) $(BUILD)/tests/itest_stress

demo: all $(PROG_BIN)
	@BUILD=$(BUILD) bash demo/demo.sh

# the anchor some benchmarks compare with: an object that does nothing, preloaded as the shim is
ANCHOR := $(BUILD)/bench-anchor/empty.so
$(ANCHOR): bench/anchor/empty.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -Wl,-z,noseparate-code -Wl,-z,now -o $@ $<

# and the floor under bench_httpd: the least an object can do for a forking server's closes
FLOOR := $(BUILD)/bench-anchor/floor.so
$(FLOOR): bench/anchor/floor.c
	@mkdir -p $(@D)
	$(CC) $(ALL_CFLAGS) -fPIC -shared -Wl,-z,noseparate-code -Wl,-z,now -o $@ $< -ldl

bench: all $(BENCH_BIN) $(PROG_BIN) $(ANCHOR) $(FLOOR)
	@BUILD=$(BUILD) sh bench/run.sh

# ---- the installed layout (closepolicy(1), FILES) and the Debian package ----
# make install PREFIX=/usr/local DESTDIR=: the command in bin/, the object in lib/closepolicy/
# (where `closepolicy run` looks for it first), the pages in share/man/, the examples and the
# README in share/doc/closepolicy/. make uninstall removes exactly those files, and the two
# directories of closepolicy's own when they are left empty.
MAN_PAGES  := man/closepolicy.1 man/closepolicy.yaml.5 man/libclosepolicy.7
DOC_FILES  := README.md
EXAMPLE_FILES := $(wildcard examples/*.yaml) examples/systemd/closepolicy.conf
I_BIN  := $(DESTDIR)$(PREFIX)/bin
I_LIB  := $(DESTDIR)$(PREFIX)/lib/closepolicy
I_MAN  := $(DESTDIR)$(PREFIX)/share/man
I_DOC  := $(DESTDIR)$(PREFIX)/share/doc/closepolicy
INSTALLED := $(I_BIN)/closepolicy $(I_LIB)/libclosepolicy.so \
	$(foreach m,$(MAN_PAGES),$(I_MAN)/man$(subst .,,$(suffix $(m)))/$(notdir $(m))) \
	$(addprefix $(I_DOC)/,$(DOC_FILES)) $(addprefix $(I_DOC)/,$(EXAMPLE_FILES))

install: all
	install -d $(I_BIN) $(I_LIB) $(I_MAN)/man1 $(I_MAN)/man5 $(I_MAN)/man7 $(I_DOC)/examples/systemd
	install -m 0755 $(CMD) $(I_BIN)/closepolicy
	install -m 0644 $(LIB) $(I_LIB)/libclosepolicy.so
	$(foreach m,$(MAN_PAGES),install -m 0644 $(m) $(I_MAN)/man$(subst .,,$(suffix $(m)))/;)
	install -m 0644 $(DOC_FILES) $(I_DOC)/
	install -m 0644 $(wildcard examples/*.yaml) $(I_DOC)/examples/
	install -m 0644 examples/systemd/closepolicy.conf $(I_DOC)/examples/systemd/
uninstall:
	rm -f $(INSTALLED)
	@for d in $(I_DOC)/examples/systemd $(I_DOC)/examples $(I_DOC) $(I_LIB); do \
		[ ! -d "$$d" ] || rmdir --ignore-fail-on-non-empty "$$d"; done

# closepolicy_VERSION_ARCH.deb from a staged `make install PREFIX=/usr` (mk/deb.sh says why).
deb: all
	@MAKE="$(MAKE)" sh mk/deb.sh $(VERSION) $(BUILD)

# The pages render without a warning and document every key, event, field and variable of the
# source (tests/docs/check_pages.sh; its selftest proves it fails when one is missing).
check-docs:
	@bash tests/docs/check_pages.sh
	@bash tests/docs/check_pages.sh --selftest
# make install into a staging DESTDIR, a program run under the staged command, make uninstall.
check-install: all $(PROG_BIN)
	@MAKE="$(MAKE)" BUILD=$(BUILD) bash tests/install/check_install.sh
# make deb, lintian, then the package installed (as root) and a program run under
# /usr/bin/closepolicy and the systemd drop-in's environment; then the package removed.
check-deb: all $(PROG_BIN)
	@MAKE="$(MAKE)" BUILD=$(BUILD) VERSION=$(VERSION) bash tests/install/check_deb.sh

clean:
	rm -rf build build-san build-tsan build-fuzz closepolicy_*.deb

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)

# libFuzzer on the policy loader: make fuzz FUZZ_SECONDS=600 (make check runs a short one)
FUZZ_SECONDS ?= 60
CHECK_FUZZ_SECONDS ?= 20
FUZZ_CC ?= clang
build-fuzz/fuzz_policy: tests/fuzz/fuzz_policy.c $(POLICY_SRC) | $(DEPS_OK)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -g -O1 -D_GNU_SOURCE -I. $(YAML_CFLAGS) -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o $@ $^ $(YAML_LIBS)
# the counters-file reader of stat and top, against hostile files (half the time of a run; so
# does the cache reader below)
build-fuzz/fuzz_counters: tests/fuzz/fuzz_counters.c cli/ctrfile.c cli/stat.c shim/rundir.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -g -O1 -D_GNU_SOURCE -I. -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o $@ $^
# the policy cache's reader (shim/polcache.c, policy/pack.c), against hostile cache files
build-fuzz/fuzz_cache: tests/fuzz/fuzz_cache.c $(POLICY_SRC) shim/polcache.c shim/rundir.c | $(DEPS_OK)
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=gnu11 -g -O1 -D_GNU_SOURCE -I. $(YAML_CFLAGS) -fsanitize=fuzzer,address,undefined \
		-fno-sanitize-recover=undefined -o $@ $^ $(YAML_LIBS)
.PHONY: fuzz
fuzz: build-fuzz/fuzz_policy build-fuzz/fuzz_counters build-fuzz/fuzz_cache
	@mkdir -p build-fuzz/corpus build-fuzz/corpus-counters
	build-fuzz/fuzz_policy -max_total_time=$(FUZZ_SECONDS) -timeout=5 -rss_limit_mb=2048 -artifact_prefix=build-fuzz/ \
		-dict=tests/fuzz/policy.dict -print_final_stats=1 build-fuzz/corpus tests/fuzz/corpus
	build-fuzz/fuzz_counters -max_total_time=$$(( ($(FUZZ_SECONDS) + 1) / 2 )) -timeout=5 -rss_limit_mb=2048 \
		-artifact_prefix=build-fuzz/counters- -print_final_stats=1 build-fuzz/corpus-counters
	@mkdir -p build-fuzz/corpus-cache
	build-fuzz/fuzz_cache -max_total_time=$$(( ($(FUZZ_SECONDS) + 1) / 2 )) -timeout=5 -rss_limit_mb=2048 \
		-artifact_prefix=build-fuzz/cache- -print_final_stats=1 build-fuzz/corpus-cache tests/fuzz/corpus-cache
