# wordcount-server build.
#   make            install missing Debian packages, build everything
#   make run        ... and start the server on 127.0.0.1:8080
#   make test       ... and run every test (also the ASan+UBSan build)
#   make bench-core the counting-core benchmark table
#   make fuzz       run the libFuzzer targets for FUZZ_SECONDS (30) each
#   make soak       wrk plus abusive clients for SOAK_SECONDS (600)
#   (make test also runs: test-tsan-server, test-valgrind, fault-test,
#    soak-ci (60 s) and fuzz-ci (60 s per target))
#   make install PREFIX=/usr/local
#   SANITIZER=address,undefined | thread   build into build/asan | build/tsan
#   V=1             show full command lines
.SUFFIXES:
.DELETE_ON_ERROR:
.SECONDARY:
.PHONY: all deps deps-test run test unit-test cli-test server-test alloc-failure-test test-asan test-tsan \
        test-tsan-server test-valgrind soak soak-ci fault-test fuzz-ci \
        bench-core bench fuzz install clean format

PREFIX ?= /usr/local
SYSTEMD_UNIT_DIR ?= /etc/systemd/system
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
# UNIT_ONLY (names such as test_core) runs a subset (test-tsan does).
UNIT_BINS := $(if $(UNIT_ONLY),$(UNIT_ONLY:%=$(B)/tests/%),$(UNIT_SRCS:tests/unit/%.c=$(B)/tests/%))

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
	$(Q)$(CC) $(CFLAGS_OURS) -Itests/unit -Iserver -c $< -o $@

# The JSON fast-path test also links the server's request parser and cJSON.
$(B)/tests/test_jsonfast: $(B)/tests/unit/test_jsonfast.o $(B)/server/reqparse.o $(B)/server/errors.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(shell pkg-config --libs cmocka 2>/dev/null) $(PKG_LIBS) -lm

# The access-log test links the server's log.c, errors.c and metrics.c (and cJSON).
$(B)/tests/test_log: $(B)/tests/unit/test_log.o $(B)/server/log.o $(B)/server/errors.o $(B)/server/metrics.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(shell pkg-config --libs cmocka 2>/dev/null) $(PKG_LIBS) -lm

# The CPU-count test links the server's cpus.c (and libuv).
$(B)/tests/test_cpus: $(B)/tests/unit/test_cpus.o $(B)/server/cpus.o $(LIB)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS_ALL) -o $@ $^ $(shell pkg-config --libs cmocka 2>/dev/null) $(PKG_LIBS) -lm

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
	$(Q)$(MAKE) --no-print-directory test-tsan-server
	$(Q)$(MAKE) --no-print-directory test-valgrind
	$(Q)$(MAKE) --no-print-directory fault-test
	$(Q)$(MAKE) --no-print-directory soak-ci
	$(Q)$(MAKE) --no-print-directory fuzz-ci
	@echo "make test: all suites passed"

unit-test: $(UNIT_BINS) $(CLI)
	$(Q)scripts/run-tests.sh unit $(B) $(UNIT_BINS)

cli-test: $(CLI)
	$(Q)scripts/run-tests.sh cli $(B) tests/cli/*.sh

server-test: $(SERVER)
	$(Q)$(if $(SERVER),scripts/run-tests.sh server $(B) $(wildcard tests/server/test_*),true)

# The TSan server under concurrent load (20 client threads, 2 workers,
# mixed small and large bodies, 20 s, SIGTERM); fails on any TSan report.
test-tsan-server:
	$(Q)$(MAKE) --no-print-directory SANITIZER=thread all
	$(Q)WC_SAN_MODE=tsan scripts/run-tests.sh tsan-server build/tsan tests/stress/sanitizer_run.py

# valgrind memcheck on start, load, SIGTERM: exit 0, no error, no leak.
test-valgrind: all
	$(Q)WC_SAN_MODE=valgrind scripts/run-tests.sh valgrind build tests/stress/sanitizer_run.py

# Soak: wrk plus abusive clients; `make soak` runs SOAK_SECONDS (10 min),
# `make soak-ci` (in `make test`) 60 s.
SOAK_SECONDS ?= 600
soak: deps-test all
	$(Q)WC_SOAK_SECONDS=$(SOAK_SECONDS) scripts/run-tests.sh soak build tests/soak/soak.py
soak-ci: all
	$(Q)WC_SOAK_SECONDS=60 scripts/run-tests.sh soak build tests/soak/soak.py

# Faults: fd exhaustion, a saturated worker pool, allocation failures.
fault-test: all alloc-failure-test
	$(Q)scripts/run-tests.sh faults build $(wildcard tests/faults/test_*.py)

# The server linked with an allocation-failure injector (tests/faults/
# failmalloc.c wraps malloc, calloc and realloc of our own code); `make
# test-asan` runs it too, under ASan and UBSan.
alloc-failure-test: $(B)/fault/wordcount-server
	$(Q)scripts/run-tests.sh alloc-failure $(B)/fault tests/faults/alloc_failure.py

$(B)/fault/failmalloc.o: tests/faults/failmalloc.c
	@mkdir -p $(@D)
	$(Q)$(CC) -std=c11 $(OPT) -pthread $(SANFLAGS) -Wall -Wextra -Werror -c $< -o $@

$(B)/fault/wordcount-server: $(SERVER_OBJS) $(LLHTTP_OBJS) $(B)/fault/failmalloc.o $(LIB)
	@$(if $(Q),echo "  LD      $@ (allocation failures)")
	$(Q)$(CC) $(LDFLAGS_ALL) -Wl,--wrap=malloc,--wrap=calloc,--wrap=realloc -o $@ $^ $(PKG_LIBS) -lm

test-asan:
	$(Q)$(MAKE) --no-print-directory SANITIZER=address,undefined all unit-test cli-test server-test alloc-failure-test

# ThreadSanitizer over the tests whose threads share data (the parallel
# counter shares its needle set read-only): test_core and test_diff run
# wc_count_parallel; the other unit tests have one thread (test_jsonfast
# took 131 s of CI under TSan for nothing).
test-tsan:
	$(Q)$(MAKE) --no-print-directory SANITIZER=thread UNIT_ONLY="test_core test_diff" unit-test

FUZZ_SRCS := $(wildcard fuzz/fuzz_*.c)
FUZZ_BINS := $(FUZZ_SRCS:fuzz/%.c=build/fuzz/%)
FUZZ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fsanitize=fuzzer,address,undefined \
  -fno-sanitize-recover=undefined \
  -Icore -Itests/unit $(shell pkg-config --cflags libutf8proc libcjson 2>/dev/null)

build/fuzz/%: fuzz/%.c $(CORE_SRCS) $(TEST_SUPPORT_SRCS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CLANG) $(FUZZ_CFLAGS) -o $@ $^ $(UTF8PROC_LIBS) $(shell pkg-config --libs libcjson 2>/dev/null)

# Server fuzz targets (every fuzz_*.c but fuzz_core) link the server's files
# (all but main.c) and llhttp in strict mode, each compiled once into
# build/fuzz/obj with coverage instrumentation; the fuzz file itself gets our
# warnings. Undefined behaviour in our code ends a fuzz run like a crash
# (-fno-sanitize-recover); in llhttp's it is reported and the run goes on. FUZZ_CI_SECONDS is the per-target time of `make fuzz-ci`.
FUZZ_CI_SECONDS ?= 60
FUZZ_SERVER_BINS := $(if $(SERVER_SRCS),$(filter-out build/fuzz/fuzz_core,$(FUZZ_BINS)))
FUZZ_OBJ_CFLAGS = -std=c11 -D_GNU_SOURCE -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer-no-link,address,undefined -fno-sanitize-recover=undefined \
  -DLLHTTP_STRICT_MODE=1 \
  -Icore -Iserver -Itests/unit -I$(LLHTTP_INC) $(PKG_CFLAGS)
FUZZ_SERVER_OBJS := $(patsubst %.c,build/fuzz/obj/%.o,$(CORE_SRCS) $(SERVER_LIB_SRCS)) \
  $(LLHTTP_SRCS:%.c=build/fuzz/obj/llhttp/%.o)

build/fuzz/obj/llhttp/%.o: $(LLHTTP_DIR)/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $< (fuzz, third-party)")
	$(Q)$(CLANG) $(FUZZ_OBJ_CFLAGS) -fsanitize-recover=undefined -w -MMD -MP -c $< -o $@

build/fuzz/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $< (fuzz)")
	$(Q)$(CLANG) $(FUZZ_OBJ_CFLAGS) -MMD -MP -c $< -o $@

$(FUZZ_SERVER_BINS): build/fuzz/%: fuzz/%.c $(FUZZ_SERVER_OBJS)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZ    $@")
	$(Q)$(CLANG) $(subst fuzzer-no-link,fuzzer,$(FUZZ_OBJ_CFLAGS)) $(WARN) -Itests \
	  -o $@ $^ $(PKG_LIBS) -lm

fuzz: deps-test $(FUZZ_BINS)
	$(Q)scripts/run-fuzz.sh $(FUZZ_SECONDS) $(FUZZ_BINS)

# CI: every target (at most four) for FUZZ_CI_SECONDS each.
fuzz-ci: $(FUZZ_BINS)
	$(Q)scripts/run-fuzz.sh $(FUZZ_CI_SECONDS) $(FUZZ_BINS)

bench-core: deps-test $(LIB) $(BENCH_BINS)
	$(Q)bench/bench-core.sh $(B)

bench: all
	$(Q)bench/http/run.sh $(B) $(if $(QUICK),--quick)

install: all
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include
	install -m 755 $(CLI) $(DESTDIR)$(PREFIX)/bin/
	$(if $(SERVER),install -m 755 $(SERVER) $(DESTDIR)$(PREFIX)/bin/)
	install -m 644 $(LIB) $(DESTDIR)$(PREFIX)/lib/
	install -m 644 core/wordcount.h $(DESTDIR)$(PREFIX)/include/
	install -d $(DESTDIR)$(SYSTEMD_UNIT_DIR) $(DESTDIR)/etc/wordcount
	sed 's|/usr/local/bin/|$(PREFIX)/bin/|' scripts/wordcount-server.service \
	  >$(DESTDIR)$(SYSTEMD_UNIT_DIR)/wordcount-server.service
	chmod 644 $(DESTDIR)$(SYSTEMD_UNIT_DIR)/wordcount-server.service
	[ -e $(DESTDIR)/etc/wordcount/config.json ] || \
	  install -m 644 config.example.json $(DESTDIR)/etc/wordcount/config.json

format:
	clang-format -i core/*.[ch] $(wildcard server/*.[ch]) $(wildcard tests/unit/*.[ch] tests/unit/support/*.[ch]) $(wildcard bench/*.c fuzz/*.c)

clean:
	rm -rf build

-include $(shell find build -name '*.d' 2>/dev/null)
