# regimen - build, test, demo.
#   make          build build/regimen
#   make test     build and run every test (unit and end-to-end)
#   make asan     the same tests under AddressSanitizer + UBSan (build-asan/)
#   make test-postgres  the store conformance suite, simulate and the service
#                 on PostgreSQL, in a throw-away cluster it starts and stops
#   make demo     simulate the bundled example clinic and print its alerts
#   make soak     the service's kill -9 crash loop, 200 cycles, several writers
# Missing Debian packages are installed by .ci/install-deps (as root) while the
# Makefile is read, so `make -j` works on a fresh machine too.

CC ?= cc
PKGS := lua5.4 sqlite3 jansson yajl libuv libcurl libpq libsodium openssl
OPT ?= -O2
WARN := -Wall -Wextra -Wshadow -Wundef -Wwrite-strings -Wredundant-decls \
        -Wdisabled-optimization -Wdouble-promotion -Wmissing-declarations \
        -Wmissing-prototypes -Wnested-externs -Wstrict-prototypes -Wold-style-definition \
        -Wformat=2 -Wno-format-nonliteral
CFLAGS_ALL = -std=c11 -D_GNU_SOURCE $(OPT) -g $(WARN) $(SAN) $(INC) \
             $(shell pkg-config --cflags $(PKGS) 2>/dev/null) $(CFLAGS)
LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhttp_parser -lm
TEST_LIBS = $(shell pkg-config --libs criterion 2>/dev/null) -lpthread

# Missing packages are installed while the Makefile is read, before any
# recipe runs: as a prerequisite, the install would run beside the compiles
# under make -j and the first build would fail. `make clean` skips it.
ifeq ($(filter clean,$(MAKECMDGOALS)),)
RG_DEPS := $(shell ./.ci/install-deps >&2 && echo ok)
ifneq ($(RG_DEPS),ok)
$(error .ci/install-deps could not install the packages regimen needs (see above))
endif
endif

B ?= build
# runtime/ is laid out by layer, lowest first: core/ (events, fields, time,
# the feed's JSON), store/ (the event store, ingest), bindings/ (the Lua
# module protocols use, at the top of the repository), engine/ (protocols and
# evaluation), present/ (reports drawn for people), service/ (HTTP, webhooks,
# the loop), cli/ (commands). A file includes another with its folder
# ("store/store.h"), and a layer includes only the ones below it: make test
# checks that (tests/layers.sh, docs/design.md "Layers").
RT_DIRS := runtime/core runtime/store bindings runtime/engine runtime/present runtime/service runtime/cli
INC := -Iruntime -I.
SRC := $(wildcard $(addsuffix /*.c,$(RT_DIRS)))
# the commands (runtime/cli/) are the binary's only: the tests link the layers below
LIB_SRC := $(filter-out runtime/cli/%.c,$(SRC))
# The worklist's page, script and styles (runtime/service/www/) are compiled
# in: $(B)/gen/www.c holds them as arrays (xxd -i), rg_www_files lists them
# (runtime/service/www-embed.sh).
WWW := $(sort $(wildcard runtime/service/www/*))
WWW_OBJ := $(B)/obj/$(B)/gen/www.o
OBJ := $(patsubst %.c,$(B)/obj/%.o,$(SRC)) $(WWW_OBJ)
LIB_OBJ := $(patsubst %.c,$(B)/obj/%.o,$(LIB_SRC)) $(WWW_OBJ)
TESTS := $(patsubst tests/%.c,$(B)/tests/%,$(wildcard tests/test_*.c))
HDR := $(wildcard $(addsuffix /*.h,$(RT_DIRS)))

.PHONY: all deps test unit asan demo clean install
all: $(B)/regimen

# make install [PREFIX=/usr/local] [DESTDIR=]: the binary, regimen(1), and the
# shipped protocols (with their LuaLS annotations) in share/regimen/protocols,
# where the installed binary looks for them.
PREFIX ?= /usr/local
install: $(B)/regimen
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/share/man/man1 \
	  $(DESTDIR)$(PREFIX)/share/regimen
	install -m 755 $(B)/regimen $(DESTDIR)$(PREFIX)/bin/regimen
	install -m 644 docs/regimen.1 $(DESTDIR)$(PREFIX)/share/man/man1/regimen.1
	rm -rf $(DESTDIR)$(PREFIX)/share/regimen/protocols
	cp -R protocols $(DESTDIR)$(PREFIX)/share/regimen/protocols
	chmod -R u=rwX,go=rX $(DESTDIR)$(PREFIX)/share/regimen/protocols

deps:
	@./.ci/install-deps

$(B)/obj/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) -c $< -o $@

$(B)/gen/www.c: $(WWW) runtime/service/www-embed.sh
	@mkdir -p $(dir $@)
	runtime/service/www-embed.sh $@ $(WWW)

$(B)/regimen: $(OBJ)
	$(CC) $(SAN) $(OBJ) -o $@ $(LIBS)

$(B)/tests/%: tests/%.c $(LIB_OBJ) $(wildcard tests/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS_ALL) $< $(LIB_OBJ) -o $@ $(LIBS) $(TEST_LIBS)

# Every test binary runs; the target fails if any of them failed. The default
# build also runs the benchmark's smoke run (bench/run.sh --smoke, ~15 s), so
# the benchmark cannot rot; sanitizer and helper builds (B=...) skip it.
test: $(B)/regimen $(TESTS)
	@./tests/layers.sh
	@REGIMEN_BIN=$(CURDIR)/$(B)/regimen \
	  ./tests/run-all.sh $(TESTS)
	@REGIMEN_BIN=$(CURDIR)/$(B)/regimen ./tests/contract/run.sh
	@REGIMEN_BIN=$(CURDIR)/$(B)/regimen ./tests/browser/run.sh
	@[ "$(B)" != build ] || { bench/run.sh --smoke >$(B)/bench-smoke.log 2>&1 && \
	  echo "bench-smoke: passed, every benchmark stage ran (bench/data/smoke/smoke.md)"; } || \
	  { tail -40 $(B)/bench-smoke.log; echo "bench-smoke: FAILED (log $(B)/bench-smoke.log)"; exit 1; }

# The PostgreSQL suite: the tests that need a server (test_store_conformance's
# conf_pg suite, test_pg.c; skipped by `make test`, which needs none), on one
# throw-away cluster started and stopped by tests/pg/run.sh.
PG_TESTS := $(B)/tests/test_store_conformance $(B)/tests/test_pg
.PHONY: test-postgres
test-postgres: $(B)/regimen $(PG_TESTS)
	@REGIMEN_BIN=$(CURDIR)/$(B)/regimen nice -n 10 tests/pg/run.sh $(PG_TESTS)

# A clean sanitizer build each time: object files do not record their flags.
asan:
	rm -rf build-asan
	$(MAKE) test B=build-asan OPT=-O1 \
	  SAN="-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all"

demo: all
	@echo "== regimen check examples/clinics/north"
	@$(B)/regimen check examples/clinics/north
	@echo
	@echo "== regimen simulate (clinic north, 4 patients, until 2026-05-01)"
	@$(B)/regimen simulate --events examples/clinics/north/timeline.jsonl \
	  --until 2026-05-01T00:00:00Z --clinic north=examples/clinics/north

clean:
	rm -rf build build-asan

# The benchmark (bench/run.sh): make bench [SIZE=large] writes bench/results/
# (latest.md), then issue 12's scale-out figures (scale-out.md, below);
# make bench-smoke is a short run that checks every stage works (under 30 s).
.PHONY: bench bench-smoke
bench: all
	@bench/run.sh --size $(or $(SIZE),default)
	@nice -n 10 bench/scale-out.sh

bench-smoke: all
	@bench/run.sh --smoke

# Issue 12's figures: HTTP ingest and POST -> transition latency with 1 worker
# on SQLite, 1 and 3 workers on PostgreSQL (a throw-away cluster), sweep and
# simulate on both stores; writes bench/results/scale-out.md.
.PHONY: bench-scale-out
bench-scale-out: all
	@nice -n 10 bench/scale-out.sh

# The crash loop as a soak (not in make test or CI): kill -9 of the service
# SOAK_CYCLES times (default 200) while SOAK_CLIENTS HTTP clients (default 4)
# and a concurrent `regimen ingest` write; prints events sent, acknowledged,
# stored, transitions, lost and duplicated, and fails on any loss, duplicate,
# gap or difference from simulate. Runs nice'd: the machine is shared.
.PHONY: soak
soak: $(B)/regimen $(B)/tests/test_serve
	@REGIMEN_BIN=$(CURDIR)/$(B)/regimen RG_CRASH_CYCLES=$(or $(SOAK_CYCLES),200) \
	  RG_CRASH_CLIENTS=$(or $(SOAK_CLIENTS),4) nice -n 10 $(B)/tests/test_serve --jobs 1 \
	  --filter 'serve/crash_loop_kill_9_loses_nothing_and_repeats_nothing'

# Fuzzing (tests/fuzz/, libFuzzer with clang): make fuzz [FUZZ_SECONDS=60] runs
# every harness that long, printing executions; make fuzz-smoke replays the
# regression inputs and runs each harness 10 s (non-zero on any crash).
.PHONY: fuzz fuzz-smoke
fuzz: deps
	@tests/fuzz/run.sh fuzz $(or $(FUZZ_SECONDS),60)

fuzz-smoke: deps
	@tests/fuzz/run.sh smoke
