# SPDX-License-Identifier: MIT
# patchbay build.  Targets: all (default), check, check-unit,
# check-integration, asan-check, install, clean.  Variables: CC, CFLAGS,
# BUILD (output folder), PREFIX, DESTDIR, PYTEST_ARGS.

CC ?= cc
CFLAGS ?= -O2 -g
BUILD ?= build
PREFIX ?= /usr/local
DESTDIR ?=
PYTHON ?= /usr/bin/python3
PYTEST_ARGS ?=

WARN := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
	-Wmissing-prototypes -Wpointer-arith -Wformat=2 -Wvla
ALL_CFLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -Isrc -MMD -MP \
	$(CFLAGS)
LDLIBS ?=

LIB_SRCS := $(wildcard src/*.c)
LIB_OBJS := $(LIB_SRCS:src/%.c=$(BUILD)/lib/%.o)
DAEMON_SRCS := $(wildcard src/daemon/*.c)
DAEMON_OBJS := $(DAEMON_SRCS:src/daemon/%.c=$(BUILD)/daemon/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(BUILD)/tests/%)

LIB := $(BUILD)/libpatchbay.a
BIN := $(BUILD)/patchbay

.PHONY: all check check-unit check-integration asan-check install clean \
	unit-bins format fuzz fuzz-check ci lint

all: $(BIN) $(LIB)

$(BUILD)/lib/%.o: src/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(BUILD)/daemon/%.o: src/daemon/%.c
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c $< -o $@

$(LIB): $(LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(BIN): $(DAEMON_OBJS) $(LIB)
	$(CC) $(ALL_CFLAGS) $(DAEMON_OBJS) $(LIB) $(LDLIBS) -o $@

$(BUILD)/tests/%: tests/unit/%.c $(LIB)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $< $(filter %.o,$^) \
		$(LIB) -lcmocka $(LDLIBS) -o $@

# Tests of daemon modules link those modules' objects too.
$(BUILD)/tests/test_json: $(BUILD)/daemon/json.o

unit-bins: $(UNIT_BINS)

# Each unit test binary runs in its own process with a time limit.
check-unit: $(UNIT_BINS)
	@fail=0; for t in $(UNIT_BINS); do \
		if timeout 120 $$t; then :; else echo "FAILED: $$t"; fail=1; fi; \
	done; exit $$fail

check-integration: $(BIN)
	PATCHBAY=$(abspath $(BIN)) $(PYTHON) -m pytest -v tests/integration \
		$(PYTEST_ARGS)

check: all check-unit check-integration

# Static analysis: cppcheck and clang-tidy (.clang-tidy: the checks, and why
# some are off), over src/ and src/daemon/ with the build's flags.
# Suppressions are inline (cppcheck-suppress, NOLINT(check)), each with its
# reason beside it; any finding fails.
CLANG_TIDY ?= clang-tidy
TIDY_FLAGS := -std=gnu11 $(WARN) -D_GNU_SOURCE -Iinclude -Isrc
lint:
	cppcheck --std=c11 --enable=warning,portability,performance \
		--inline-suppr -D_GNU_SOURCE -Iinclude -Isrc --quiet \
		--error-exitcode=1 src src/daemon
	@echo "clang-tidy: $(words $(LIB_SRCS) $(DAEMON_SRCS)) files"
	@printf '%s\n' $(LIB_SRCS) $(DAEMON_SRCS) | \
		xargs -P 2 -n 4 sh -c '$(CLANG_TIDY) --quiet "$$@" -- $(TIDY_FLAGS)' tidy

# What CI runs: static analysis, the suite, the suite again under
# ASan+UBSan, the fuzzers.
ci: lint check asan-check fuzz-check

# The whole suite again with AddressSanitizer + UndefinedBehaviorSanitizer.
asan-check:
	$(MAKE) BUILD=build-asan CC=clang \
		CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		check

# Fuzzing (clang's libFuzzer): one harness per parser in tests/fuzz/, the
# library built with coverage and sanitizers, checksums not enforced
# (-DPB_FUZZING).  `make fuzz` builds; `make fuzz-check` runs each harness
# for FUZZ_SECONDS on a scratch copy of its seed corpus (the repository's
# corpus stays as it is) and fails on any finding.
FUZZ_BUILD ?= build-fuzz
FUZZ_SECONDS ?= 30
FUZZ_FLAGS := -std=gnu11 -D_GNU_SOURCE -DPB_FUZZING -Iinclude -Isrc -MMD -MP -g -O1 \
	-fno-omit-frame-pointer -fsanitize=address,undefined \
	-fno-sanitize-recover=all
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:tests/fuzz/%.c=$(FUZZ_BUILD)/%)
FUZZ_LIB_OBJS := $(LIB_SRCS:src/%.c=$(FUZZ_BUILD)/lib/%.o)

$(FUZZ_BUILD)/lib/%.o: src/%.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

$(FUZZ_BUILD)/libfuzzpb.a: $(FUZZ_LIB_OBJS)
	@rm -f $@
	ar rcs $@ $^

$(FUZZ_BUILD)/daemon/%.o: src/daemon/%.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer-no-link -c $< -o $@

# FUZZ_LDFLAGS_<name>: extra link flags of one harness (fuzz_tcp replaces
# the socket calls with fakes through the linker's --wrap).
FUZZ_WRAP_tcp := socket socketpair connect bind listen accept4 getsockopt \
	setsockopt recv recvmsg recvmmsg recvfrom send sendto sendmsg shutdown \
	close epoll_ctl \
	epoll_wait arc4random
FUZZ_LDFLAGS_tcp := $(FUZZ_WRAP_tcp:%=-Wl,--wrap=%)
# fuzz_ctl keeps requests from reaching outside the process.
FUZZ_WRAP_ctl := socket socketpair bind listen connect accept4 setsockopt \
	close open openat fork unlink mkdir chmod fcntl
FUZZ_LDFLAGS_ctl := $(FUZZ_WRAP_ctl:%=-Wl,--wrap=%)

$(FUZZ_BUILD)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_BUILD)/libfuzzpb.a
	clang $(FUZZ_FLAGS) -fsanitize=fuzzer $< $(filter %.o,$^) \
		$(FUZZ_BUILD)/libfuzzpb.a $(FUZZ_LDFLAGS_$*) -o $@

# Harnesses of daemon modules link those modules' objects too (fuzz_ctl
# compiles ctl.c itself).
$(FUZZ_BUILD)/fuzz_json: $(FUZZ_BUILD)/daemon/json.o
$(FUZZ_BUILD)/fuzz_ctl: $(FUZZ_BUILD)/daemon/json.o $(FUZZ_BUILD)/daemon/sbuf.o \
	src/daemon/ctl.c

fuzz: $(FUZZ_BINS)

fuzz-check: $(FUZZ_BINS)
	@fail=0; for f in $(FUZZ_BINS); do \
		name=$${f##*/fuzz_}; work=$$(mktemp -d); \
		echo "== fuzz $$name ($(FUZZ_SECONDS) s)"; \
		if $$f -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1 \
			-artifact_prefix=$(FUZZ_BUILD)/crash-$$name- \
			$$work tests/fuzz/corpus/$$name > $(FUZZ_BUILD)/$$name.log 2>&1; \
		then tail -n 12 $(FUZZ_BUILD)/$$name.log | grep -E 'stat::number_of_executed_units|cov:' | tail -n 2; \
		else echo "FINDING in $$name:"; tail -n 40 $(FUZZ_BUILD)/$$name.log; fail=1; fi; \
		rm -rf $$work; \
	done; exit $$fail

install: $(BIN) $(LIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
		$(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/patchbay
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libpatchbay.a
	install -m 644 include/patchbay.h $(DESTDIR)$(PREFIX)/include/patchbay.h
	install -m 644 docs/patchbay.1 $(DESTDIR)$(PREFIX)/share/man/man1/patchbay.1

format:
	clang-format -i src/*.c src/*.h src/daemon/*.c include/*.h tests/unit/*.c

# Side-by-side benchmarks (bench/README.md), not part of check: needs root
# and bench/install-deps.sh.  BENCH_ARGS=--quick for a ~2-minute run.
.PHONY: bench
bench: $(BIN)
	$(PYTHON) bench/run.py --patchbay $(abspath $(BIN)) --readme --profile \
		$(BENCH_ARGS)

clean:
	rm -rf build build-*

-include $(LIB_OBJS:.o=.d) $(DAEMON_OBJS:.o=.d) $(FUZZ_LIB_OBJS:.o=.d) \
	$(DAEMON_SRCS:src/daemon/%.c=$(FUZZ_BUILD)/daemon/%.d)
