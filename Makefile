# wordcount-server build.
#   make            install missing Debian packages, build everything
#   make run        ... and start the server on 127.0.0.1:8080
#   make test       ... and run every test (also the ASan+UBSan build)
#   make bench-core the counting-core benchmark table
#   make fuzz       run the libFuzzer targets for a bounded time
#   make install PREFIX=/usr/local
#   SANITIZER=address,undefined | thread   build into build/asan | build/tsan
#   V=1             show full command lines
.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all deps deps-test run test unit-test cli-test server-test test-asan test-tsan \
        bench-core bench fuzz install clean format

PREFIX ?= /usr/local
CC ?= cc
CLANG ?= clang
SANITIZER ?=
FUZZ_SECONDS ?= 30

ifeq ($(SANITIZER),)
  B := build
  SANFLAGS :=
else ifeq ($(SANITIZER),thread)
  B := build/tsan
  SANFLAGS := -fsanitize=thread
else
  B := build/asan
  SANFLAGS := -fsanitize=$(SANITIZER) -fno-omit-frame-pointer -fno-sanitize-recover=all
endif

ifeq ($(V),1)
  Q :=
else
  Q := @
endif

PKGS := libuv libcjson libutf8proc
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
UTF8PROC_LIBS = $(shell pkg-config --libs libutf8proc 2>/dev/null)

WARN := -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes \
        -Wformat=2 -Werror
OPT ?= -O2 -g
BASE_CFLAGS := -std=c11 -D_GNU_SOURCE $(OPT) -MMD -MP -pthread $(SANFLAGS)
CFLAGS_OURS = $(BASE_CFLAGS) $(WARN) -Icore $(PKG_CFLAGS) $(CFLAGS)
LDFLAGS_ALL = -pthread $(SANFLAGS) $(LDFLAGS)

# llhttp's C sources come from Debian's node-llhttp; compiled in strict mode
# with their own, laxer flags; never copied into the repository.
LLHTTP_DIR ?= /usr/share/llhttp
LLHTTP_INC ?= /usr/share/include/llhttp
LLHTTP_SRCS := llhttp.c api.c http.c
LLHTTP_OBJS := $(LLHTTP_SRCS:%.c=$(B)/llhttp/%.o)

CORE_SRCS := $(filter-out core/cli.c,$(wildcard core/*.c))
CORE_OBJS := $(CORE_SRCS:%.c=$(B)/%.o)
LIB := $(B)/libwordcount.a
CLI := $(B)/wordcount

SERVER_SRCS := $(wildcard server/*.c)
SERVER_LIB_SRCS := $(filter-out server/main.c,$(SERVER_SRCS))
SERVER_OBJS := $(SERVER_SRCS:%.c=$(B)/%.o)
SERVER := $(if $(SERVER_SRCS),$(B)/wordcount-server)

TEST_SUPPORT_SRCS := $(wildcard tests/unit/support/*.c)
TEST_SUPPORT_OBJS := $(TEST_SUPPORT_SRCS:%.c=$(B)/%.o)
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%)

BENCH_SRCS := $(wildcard bench/*.c)
BENCH_BINS := $(BENCH_SRCS:bench/%.c=$(B)/bench/%)

all: deps $(LIB) $(CLI) $(SERVER)

deps:
	$(Q)scripts/deps.sh build
deps-test:
	$(Q)scripts/deps.sh test

$(B)/core/%.o: core/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_OURS) -c $< -o $@

$(LIB): $(CORE_OBJS)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

$(CLI): $(B)/core/cli.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(UTF8PROC_LIBS)

$(B)/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $< (third-party)")
	$(Q)$(CC) -std=gnu11 $(OPT) -pthread $(SANFLAGS) -w -DLLHTTP_STRICT_MODE=1 \
	  -I$(LLHTTP_INC) -c $< -o $@

$(B)/server/%.o: server/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_OURS) -DLLHTTP_STRICT_MODE=1 -I$(LLHTTP_INC) -Iserver -c $< -o $@

$(B)/wordcount-server: $(SERVER_OBJS) $(LLHTTP_OBJS) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(PKG_LIBS) -lm

$(B)/tests/%.o: tests/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_OURS) -Itests/unit -c $< -o $@

$(B)/tests/test_%: $(B)/tests/unit/test_%.o $(TEST_SUPPORT_OBJS:$(B)/tests/%=$(B)/tests/%) $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(shell pkg-config --libs cmocka 2>/dev/null) $(UTF8PROC_LIBS) -lm

$(B)/bench/%.o: bench/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CFLAGS_OURS) -O3 -c $< -o $@

$(B)/bench/%: $(B)/bench/%.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(UTF8PROC_LIBS) -lm

run: all
	./$(B)/wordcount-server --config config.example.json

# The whole suite: unit tests, CLI tests, server tests, then the unit and
# server tests again under ASan+UBSan in build/asan.
test: deps-test
	$(Q)$(MAKE) --no-print-directory all unit-test cli-test server-test
	$(Q)$(MAKE) --no-print-directory test-asan
	$(Q)$(MAKE) --no-print-directory test-tsan
	@echo "make test: all suites passed"

unit-test: $(UNIT_BINS) $(CLI)
	$(Q)scripts/run-tests.sh unit $(B) $(UNIT_BINS)

cli-test: $(CLI)
	$(Q)scripts/run-tests.sh cli $(B) tests/cli/*.sh

server-test: $(SERVER)
	$(Q)$(if $(SERVER),scripts/run-tests.sh server $(B) $(wildcard tests/server/test_*),true)

test-asan:
	$(Q)$(MAKE) --no-print-directory SANITIZER=address,undefined all unit-test server-test

# ThreadSanitizer over the tests whose threads share data (the parallel
# counter shares its needle set read-only).
test-tsan:
	$(Q)$(MAKE) --no-print-directory SANITIZER=thread unit-test

FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
  -Icore -Itests/unit $(shell pkg-config --cflags libutf8proc libcjson 2>/dev/null)

build/fuzz/%: fuzz/%.c $(CORE_SRCS) $(TEST_SUPPORT_SRCS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $^ $(UTF8PROC_LIBS) $(shell pkg-config --libs libcjson 2>/dev/null)

fuzz: deps-test $(FUZZ_BINS)
	$(Q)scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

bench-core: deps-test $(LIB) $(BENCH_BINS)
	$(Q)bench/bench-core.sh $(B)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	$(if $(SERVER),install -m 755 $(SERVER) $(DESTDIR)$(PREFIX)/bin/)
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 core/wordcount.h $(DESTDIR)$(PREFIX)/include/

format:
	clang-format -i core/*.[ch] $(wildcard server/*.[ch]) $(wildcard tests/unit/*.[ch] tests/unit/support/*.[ch]) $(wildcard bench/*.c fuzz/*.c)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
