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
	unit-bins format

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
	$(CC) $(ALL_CFLAGS) -Wno-missing-prototypes $< $(LIB) -lcmocka \
		$(LDLIBS) -o $@

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

# The whole suite again with AddressSanitizer + UndefinedBehaviorSanitizer.
asan-check:
	$(MAKE) BUILD=build-asan CC=clang \
		CFLAGS="-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all" \
		check

install: $(BIN) $(LIB)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib \
		$(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share/man/man1
	install -m 755 $(BIN) $(DESTDIR)$(PREFIX)/bin/patchbay
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/libpatchbay.a
	install -m 644 include/patchbay.h $(DESTDIR)$(PREFIX)/include/patchbay.h
	install -m 644 docs/patchbay.1 $(DESTDIR)$(PREFIX)/share/man/man1/patchbay.1

format:
	clang-format -i src/*.c src/*.h src/daemon/*.c include/*.h tests/unit/*.c

clean:
	rm -rf build build-*

-include $(LIB_OBJS:.o=.d) $(DAEMON_OBJS:.o=.d)
