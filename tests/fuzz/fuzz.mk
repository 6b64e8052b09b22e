# tests/fuzz/fuzz.mk - builds the libFuzzer harnesses (tests/fuzz/fuzz_*.c)
# against the project's sources, with clang, into $(FZ) (build-fuzz/).
# Run from the repository root; tests/fuzz/run.sh calls it.
FZ ?= build-fuzz
FUZZ_CC ?= clang
PKGS := lua5.4 sqlite3 jansson yajl libuv libcurl libpq libsodium openssl
SAN := -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer
# the command line (runtime/cli) is left out: no harness calls it, and its
# files need main.c's rg_cli_help
RT_DIRS := runtime/core runtime/store runtime/engine runtime/present runtime/service bindings
CFLAGS_FZ := -std=c11 -D_GNU_SOURCE -O1 -g $(SAN) -Iruntime -I. $(shell pkg-config --cflags $(PKGS))
LIBS := $(shell pkg-config --libs $(PKGS)) -lhttp_parser -lm
SRC := $(wildcard $(addsuffix /*.c,$(RT_DIRS)))
WWW := $(sort $(wildcard runtime/service/www/*))
OBJ := $(patsubst %.c,$(FZ)/obj/%.o,$(SRC)) $(FZ)/obj/$(FZ)/gen/www.o
HDR := $(wildcard $(addsuffix /*.h,$(RT_DIRS)))
HARNESSES := $(patsubst tests/fuzz/%.c,$(FZ)/%,$(wildcard tests/fuzz/fuzz_*.c))

all: $(HARNESSES)

# the worklist's files, compiled in as in the Makefile
$(FZ)/gen/www.c: $(WWW) runtime/service/www-embed.sh
	@mkdir -p $(dir $@)
	runtime/service/www-embed.sh $@ $(WWW)

$(FZ)/obj/%.o: %.c $(HDR) tests/fuzz/fuzz.mk
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(CFLAGS_FZ) -fsanitize=fuzzer-no-link -c $< -o $@

$(FZ)/fuzz_%: tests/fuzz/fuzz_%.c $(OBJ) $(HDR)
	$(FUZZ_CC) $(CFLAGS_FZ) -Wall -Wextra -fsanitize=fuzzer $< $(OBJ) -o $@ $(LIBS)

.SECONDARY: $(OBJ)
