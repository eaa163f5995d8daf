# rcluster — the static binary is the product.
#   make            stripped, statically linked ./rcluster (musl-gcc when present, else cc -static)
#   make test       ./test.sh (unit + integration; installs what it lacks)
#   make unit       unit tests (sds, json, RESP, HTTP, layout, parsing)
#   make asan       ASan+UBSan builds of the unit tests and of rcluster (rcluster-asan)
#   make bench      benchmarks against redis-cli and the docker CLI procedure
#   make fuzz       libFuzzer harnesses under tests/fuzz (FUZZ_SECONDS each)

WARN    := -Wall -Wextra -Werror
CSTD    := -std=gnu11
MUSLCC  := $(shell command -v musl-gcc 2>/dev/null)
STATICCC := $(if $(MUSLCC),$(MUSLCC),$(CC))
SRC     := rcluster.c vendor/sds.c
HDR     := vendor/sds.h vendor/json.h
SAN     := -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all
UNITS   := tests/unit tests/unit_sds tests/unit_json
FUZZ_SECONDS ?= 60
FUZZERS := $(patsubst tests/fuzz/%.c,%,$(wildcard tests/fuzz/fuzz_*.c))

# Size. Issue 18 wants the static binary <= 400 KB; `make` gave 436,496 bytes. rcluster
# waits on the network, not the CPU, so it is built for size (musl-gcc 12, bytes saved):
#   -z noseparate-code   code shares pages with headers and constants: no page padding  8,192
#   -fno-pie -no-pie     a fixed load address: no position-independent code             4,480
#   -Oz (-Os where the compiler predates it)  the smallest code                         2,700
#   -fno-thread-jumps    no blocks copied to spare a branch                             2,000
#   -fno-optimize-sibling-calls -fno-caller-saves  plain calls; no register shuffling
#                        around them (recursion here is bounded: JSON, RESP depth)      3,200
#   -z norelro (musl)    musl's static start-up never write-protects the RELRO part, so
#                        its page alignment was padding alone (0-4 KB)                  3,360
#   no unwind tables (C, no backtraces); each function and object in its own section and
#   the unused ones dropped (453 KB -> 383 KB when it came, with glob(3) and strftime(3) gone)
# In the code: inet_ntop, not getnameinfo and its reverse-DNS client (2,700); rc_fail and kin
# as variadic functions, one call per failure (2,000); json.h converts numbers itself, and
# strtod (6,700: --weight and --threshold use rc_parse_number too); prlimit, not setrlimit
# and musl's thread sync (2,000); ip_is_local by bind(2), not getifaddrs' netlink client
# (2,300); the affinity mask alone for the CPU count, not sysconf (1,100); readlink(2), not
# realpath(3) (1,500); and up, down, status written once for Docker and Swarm.
# 399,344 bytes then (until -z norelro the file grew and shrank in 4 KB pages).
NORELRO := -Wl,-z,norelro
SMALLEST := $(shell $(STATICCC) -Oz -x c -E /dev/null >/dev/null 2>&1 && echo -Oz || echo -Os)
SMALL   := $(SMALLEST) -fno-thread-jumps -fno-optimize-sibling-calls -fno-caller-saves -fno-asynchronous-unwind-tables -fno-unwind-tables \
           -ffunction-sections -fdata-sections -Wl,--gc-sections -fno-pie -no-pie -Wl,-z,noseparate-code \
           $(if $(MUSLCC),$(NORELRO))

rcluster: $(SRC) $(HDR) Makefile
	$(STATICCC) $(CSTD) $(WARN) $(SMALL) -static -s -o $@ $(SRC)

unit: $(UNITS)
	@for t in $(UNITS); do ./$$t || exit 1; done

tests/unit: tests/unit.c $(SRC) $(HDR)
	$(CC) $(CSTD) $(WARN) -O1 -g -o $@ tests/unit.c vendor/sds.c
tests/unit_sds: tests/unit_sds.c vendor/sds.c vendor/sds.h
	$(CC) $(CSTD) $(WARN) -O1 -g -o $@ tests/unit_sds.c vendor/sds.c
tests/unit_json: tests/unit_json.c vendor/json.h
	$(CC) $(CSTD) $(WARN) -O1 -g -o $@ tests/unit_json.c

asan: $(addsuffix -asan,$(UNITS)) rcluster-asan
tests/unit-asan: tests/unit.c $(SRC) $(HDR)
	$(CC) $(CSTD) $(WARN) $(SAN) -o $@ tests/unit.c vendor/sds.c
tests/unit_sds-asan: tests/unit_sds.c vendor/sds.c vendor/sds.h
	$(CC) $(CSTD) $(WARN) $(SAN) -o $@ tests/unit_sds.c vendor/sds.c
tests/unit_json-asan: tests/unit_json.c vendor/json.h
	$(CC) $(CSTD) $(WARN) $(SAN) -o $@ tests/unit_json.c
rcluster-asan: $(SRC) $(HDR)
	$(CC) $(CSTD) $(WARN) $(SAN) -o $@ $(SRC)
# Dynamic glibc debug build for valgrind (it cannot intercept malloc in a static binary).
rcluster-dbg: $(SRC) $(HDR)
	$(CC) $(CSTD) $(WARN) -O1 -g -o $@ $(SRC)

# New inputs go to a scratch dir; the committed corpus and regressions only seed.
FUZZ_WORK ?= /tmp/rcluster-fuzz
fuzz: $(addprefix tests/fuzz/,$(FUZZERS))
	@for f in $(FUZZERS); do mkdir -p $(FUZZ_WORK)/$$f tests/fuzz/regressions/$$f; \
	  ./tests/fuzz/$$f -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=10 \
	    -artifact_prefix=$(FUZZ_WORK)/$$f- $(FUZZ_WORK)/$$f tests/fuzz/corpus/$$f tests/fuzz/regressions/$$f || exit 1; done
tests/fuzz/fuzz_%: tests/fuzz/fuzz_%.c $(SRC) $(HDR)
	clang $(CSTD) $(WARN) -g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< vendor/sds.c

test: rcluster
	./test.sh

bench: rcluster
	./tests/bench.sh

clean:
	rm -f rcluster rcluster-asan rcluster-dbg $(UNITS) $(addsuffix -asan,$(UNITS)) $(addprefix tests/fuzz/,$(FUZZERS))

.PHONY: unit asan fuzz test bench clean
